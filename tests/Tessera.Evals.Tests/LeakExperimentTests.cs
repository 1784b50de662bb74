namespace Tessera.Evals.Tests;

public sealed class LeakExperimentTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "tessera-leak-" + Guid.NewGuid().ToString("N"));

    public void Dispose() { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }

    [Fact]
    public void LeakedHalfIsFlaggedAndInflatedCleanHalfIsNot()
    {
        var r = LeakExperiment.Run(LeakExperimentOptions.Quick, dir);
        output.WriteLine(r.ToString());
        int half = r.Items / 2;
        // Detection: every leaked item shares a 13-gram with training; the pseudo-word clean items cannot.
        Assert.Equal(half, r.LeakedFlagged);
        Assert.Equal(0, r.CleanFlagged);
        Assert.Equal(half, r.Report.Overlapping);
        Assert.Equal((double)half / r.Items, r.Report.OverlapShare);
        // Clean items: the model never saw their word order, so it guesses. 3σ of a fair coin over the clean half.
        double sigma = 0.5 / Math.Sqrt(r.Items - half);
        Assert.InRange(r.Clean.Accuracy, 0.5 - 3 * sigma, 0.5 + 3 * sigma);
        // Leaked items: memorised, so the good order wins far beyond chance (more than 3σ above 0.5 + 3σ).
        Assert.True(r.Leaked.Accuracy > 0.5 + 6 * sigma, $"leaked accuracy {r.Leaked.Accuracy:P1}");
        Assert.True(r.Leaked.MeanScore > r.Clean.MeanScore, $"leaked log p/byte {r.Leaked.MeanScore:F3} vs clean {r.Clean.MeanScore:F3}");
        // The report (split by detection) shows the same inflation.
        Assert.Equal(r.Leaked, r.Report.Overlap);
        Assert.Equal(r.Clean, r.Report.Clean);
    }

    [Fact]
    public void SyntheticPairsAreDeterministicMinimalSwaps()
    {
        var a = LeakExperiment.SyntheticPairs(50, 3);
        Assert.Equal(a, LeakExperiment.SyntheticPairs(50, 3));
        foreach (var p in a)
        {
            var g = p.Good.TrimEnd('.').Split(' ');
            var b = p.Bad.TrimEnd('.').Split(' ');
            Assert.Equal(6, g.Length);
            int diff = 0;
            for (int i = 0; i < 6; i++) if (g[i] != b[i]) diff++;
            Assert.Equal(2, diff);
            Assert.Equal(g.Order(), b.Order());
        }
    }
}
