using System.Text.Json;
using Tessera.Data;
using Tessera.Training.Experiments;
using Tessera.Training.Labs;

namespace Tessera.Training.Tests;

/// <summary>
/// Each lab end to end at a "tiny" scale on synthetic shards (seconds, not minutes): the pipeline
/// must produce finite numbers and its files, reuse cached runs, and refuse bad plans before
/// training anything. Scientific conclusions are not asserted at this scale.
/// </summary>
public sealed class LabPipelineTests : IDisposable
{
    const int Vocab = 61;
    readonly TempDir dir = new();
    readonly TokenShard train, val;
    readonly LabCorpus corpus;
    static readonly LabTraining Tiny = new() { BatchSize = 2, SequenceLength = 16, EvalBatches = 2, MinSteps = 5, LearningRate = 1e-2f };

    public LabPipelineTests()
    {
        train = TestData.Shard(dir.File("train.bin"), 40_000, Vocab);
        val = TestData.Shard(dir.File("val.bin"), 2_000, Vocab, seed: 9);
        corpus = new LabCorpus(train, val);
    }

    public void Dispose()
    {
        corpus.Dispose();
        train.Dispose();
        val.Dispose();
        dir.Dispose();
    }

    static void AssertFiles(string folder, params string[] svgs)
    {
        Assert.True(File.Exists(Path.Combine(folder, ExperimentReport.ResultsFile)));
        Assert.True(File.Exists(Path.Combine(folder, ExperimentReport.MarkdownFile)));
        foreach (var s in svgs)
        {
            System.Xml.Linq.XDocument.Parse(File.ReadAllText(Path.Combine(folder, s + ".svg")));
            if (Figure.PngUnavailableReason is null) Assert.True(File.Exists(Path.Combine(folder, s + ".png")), $"{s}.png is missing beside {s}.svg");
        }
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, ExperimentReport.ResultsFile)));
        Assert.True(doc.RootElement.GetProperty("runs").GetArrayLength() > 0);
        FigureTests.Keep(folder);
    }

    [Fact]
    public void ScalingLabRunsFitsPredictsAndRefitsFromItsCache()
    {
        var plan = new ScalingPlan { Budgets = [2e8, 4e8, 8e8], SizesPerBudget = 3, HeldOutBudget = 1.6e9, Training = Tiny };
        string outDir = Path.Combine(dir.Path, "scaling");
        var r = ScalingLab.Run(plan, corpus, outDir);
        Assert.Equal(9, r.Runs.Count);
        Assert.All(r.Runs.Append(r.HeldOut.Run), x => Assert.True(double.IsFinite(x.ValLoss) && x.ValLoss > 0));
        // Every run of a budget spent that budget to within one step of tokens.
        foreach (var x in r.Runs) Assert.InRange(x.Flops, 0, 1.01e9);
        Assert.True(double.IsFinite(r.HeldOut.Predicted) && double.IsFinite(r.HeldOut.RelativeError), $"held-out {r.HeldOut.Predicted} vs {r.HeldOut.Actual}; fit {r.Fit}");
        Assert.True(r.Fit.Alpha > 0 && r.Fit.Beta > 0 && double.IsFinite(r.ComputeOptimal[0].TokensPerParameter), $"fit {r.Fit}, optimal {r.ComputeOptimal[0]}");
        Assert.Equal(3, r.IsoFlopMinima.Count);
        AssertFiles(outDir, "isoflop", "optimal");
        AssertFitDrawnAsCurves(r, plan, outDir);

        // Everything is cached now: a fit-only pass trains nothing and reproduces the result.
        var again = ScalingLab.Run(plan, corpus, outDir, fitOnly: true);
        Assert.Equal(r.HeldOut.Actual, again.HeldOut.Actual);
        Assert.Equal(r.Fit, again.Fit);
    }

    /// <summary>
    /// The IsoFLOP figure draws the fitted L(N, D) of every budget as a dense curve (many more
    /// points than runs) in the colour of that budget's runs, and the curve passes through the
    /// law's value at each run's (N, D), not somewhere near the measurements.
    /// </summary>
    static void AssertFitDrawnAsCurves(ScalingLabResult r, ScalingPlan plan, string outDir)
    {
        var law = new ScalingLaw(r.Fit.E, r.Fit.A, r.Fit.Alpha, r.Fit.B, r.Fit.Beta);
        var sweep = plan.Budgets.Select((c, i) => (c, r.Runs.Skip(i * plan.SizesPerBudget).Take(plan.SizesPerBudget).ToList())).ToList();
        var (isoflop, optimal) = ScalingLab.Figures(r, sweep, law);
        var svg = System.Xml.Linq.XDocument.Parse(File.ReadAllText(Path.Combine(outDir, "isoflop.svg")));
        for (int b = 0; b <= sweep.Count; b++)                          // every budget, then the held-back one
        {
            var measured = isoflop.Series[2 * b];
            var curve = isoflop.Series[2 * b + 1];
            Assert.Equal(SeriesStyle.Markers, measured.Style);
            Assert.Equal(SeriesStyle.Curve, curve.Style);
            Assert.Equal(measured.Color, curve.Color);
            Assert.True(curve.Points.Count >= 20 * measured.Points.Count, $"budget {b}: {curve.Points.Count} curve points for {measured.Points.Count} runs");
            Assert.Equal(curve.Points.Count, FigureTests.Polylines(svg, curve.Color)[0].Length);
            var runs = b < sweep.Count ? sweep[b].Item2 : [r.HeldOut.Run];
            foreach (var run in runs)
            {
                double logN = Math.Log(run.NonEmbeddingParameters);
                int i = 1;
                while (i < curve.Points.Count - 1 && Math.Log(curve.Points[i].X) < logN) i++;
                var (x0, y0) = curve.Points[i - 1];
                var (x1, y1) = curve.Points[i];
                double drawn = y0 + (y1 - y0) * (logN - Math.Log(x0)) / (Math.Log(x1) - Math.Log(x0));
                double expected = law.Loss(run.NonEmbeddingParameters, run.Tokens * (b < sweep.Count ? sweep[b].c : r.HeldOut.Flops) / run.Flops);
                Assert.True(Math.Abs(drawn - expected) <= 1e-3 * Math.Abs(expected), $"budget {b}, {run.Name}: curve {drawn} vs law {expected}");
            }
        }
        Assert.True(optimal.LogX && optimal.LogY);
        Assert.Contains(optimal.Series, s => s.Style == SeriesStyle.Curve && s.Points.Count >= Figure.CurvePoints);
    }

    [Fact]
    public void BadPlansFailBeforeAnyTraining()
    {
        string outDir = Path.Combine(dir.Path, "bad");
        var tooSmall = new ScalingPlan { Budgets = [1e6, 2e6, 4e6], SizesPerBudget = 3, HeldOutBudget = 8e6, Training = Tiny };
        var e = Assert.Throws<ArgumentException>(() => ScalingLab.Run(tooSmall, corpus, outDir));
        Assert.Contains("too small to train", e.Message);
        Assert.False(Directory.Exists(Path.Combine(outDir, "runs")), "nothing may be trained or cached before the error");

        var ok = new ScalingPlan { Budgets = [2e8, 4e8], SizesPerBudget = 3, HeldOutBudget = 8e8, Training = Tiny };
        var missing = Assert.Throws<ArgumentException>(() => ScalingLab.Run(ok, corpus, outDir, fitOnly: true));
        Assert.Contains("6 run(s) missing", missing.Message);
        Assert.Throws<ArgumentException>(() => ScalingLab.Run(ok with { HeldOutBudget = 1e8 }, corpus, outDir));
        Assert.Throws<ArgumentException>(() => ScalingLab.Run(ok with { SizesPerBudget = 2 }, corpus, outDir));
        Assert.Throws<ArgumentException>(() => RepeatLab.Run(new RepeatPlan { Budget = 1e6, Rung = 0, Training = Tiny }, corpus, outDir));
        Assert.Throws<ArgumentException>(() => MoeLab.Run(new MoePlan { Rung = 0, Tokens = 64, Training = Tiny }, corpus, outDir));
        Assert.False(Directory.Exists(Path.Combine(outDir, "runs")));
    }

    [Fact]
    public void RepeatLabRepeatsUniqueTokensWithAndWithoutDropout()
    {
        var plan = new RepeatPlan { Budget = 6e8, Rung = 0, Epochs = [1, 4], FreshFractions = [0.25, 0.5], Training = Tiny };
        string outDir = Path.Combine(dir.Path, "repeat");
        var r = RepeatLab.Run(plan, corpus, outDir);
        Assert.Equal(2 + 2 * 2, r.Runs.Count);
        Assert.All(r.Runs, x => Assert.True(double.IsFinite(x.ValLoss)));
        Assert.Equal(2, r.Fits.Count);
        foreach (var f in r.Fits)
        {
            Assert.Equal([1.0, 4.0], f.Points.Select(p => p.Epochs));
            Assert.Equal(r.Tokens / 4, f.Points[1].UniqueTokens);
            Assert.True(double.IsFinite(f.RStar) && double.IsFinite(f.Efficiency));
        }
        Assert.Equal(0.1f, r.Fits[1].Dropout);
        AssertFiles(outDir, "epochs");
    }

    [Fact]
    public void MoeLabComparesAtEqualActiveParameters()
    {
        var plan = new MoePlan { Rung = 0, Tokens = 40 * 32, Experts = [1, 2], IncludeTopTwo = true, Training = Tiny };
        string outDir = Path.Combine(dir.Path, "moe");
        var r = MoeLab.Run(plan, corpus, outDir);
        Assert.Equal(3, r.Points.Count);
        var (dense, top1, top2) = (r.Points[0], r.Points[1], r.Points[2]);
        Assert.Equal(0, dense.DeltaVsDense);
        var denseRun = r.Runs[0];
        // Active parameters differ from the dense model only by the router (dim × experts per layer).
        Assert.Equal(dense.ActiveParameters + denseRun.Layers * denseRun.Dim * 2L, top1.ActiveParameters);
        Assert.Equal(dense.ActiveParameters + denseRun.Layers * denseRun.Dim * 2L, top2.ActiveParameters);
        Assert.True(top1.Parameters > dense.Parameters);
        Assert.All(r.Points, p => Assert.True(double.IsFinite(p.ValLoss)));
        AssertFiles(outDir, "experts");
    }

    [Fact]
    public void UniqueTokenSubsetsHaveTheExactSizeAndNest()
    {
        using var docs = MultiDocumentShard(dir.File("docs.bin"));
        using var c = new LabCorpus(docs, val);
        using var small = c.WriteSubset(dir.File("small.bin"), 300, seed: 4);
        var smallTokens = new int[300];
        small.Read(0, smallTokens);
        using var large = c.WriteSubset(dir.File("large.bin"), 1000, seed: 4);
        var largeTokens = new int[1000];
        large.Read(0, largeTokens);
        Assert.Equal(300, small.TokenCount);
        Assert.Equal(1000, large.TokenCount);
        Assert.Equal(smallTokens, largeTokens[..300]);
        // Drawn as chunks in a shuffled order, not the pool's prefix.
        var prefix = new int[300];
        docs.Read(0, prefix);
        Assert.NotEqual(prefix, smallTokens);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.WriteSubset(dir.File("x.bin"), docs.TokenCount + 1, 4));
    }

    [Fact]
    public void ValidationSampleSpreadsEvenlyOverTheSplit()
    {
        // val holds 2,000 tokens; 4 pieces of 25 tokens must start at 0, 500, 1000, 1500.
        using var sample = corpus.WriteValidationSample(dir.File("sample.bin"), 100, pieces: 4);
        Assert.Equal(100, sample.TokenCount);
        var got = new int[100];
        sample.Read(0, got);
        for (int i = 0; i < 4; i++)
        {
            var expected = new int[25];
            val.Read(i * 500, expected);
            Assert.Equal(expected, got[(i * 25)..((i + 1) * 25)]);
        }
        using var whole = corpus.WriteValidationSample(dir.File("whole.bin"), 1_000_000);
        Assert.Equal(val.TokenCount, whole.TokenCount);
        var all = new int[val.TokenCount]; var copy = new int[val.TokenCount];
        val.Read(0, all);
        whole.Read(0, copy);
        Assert.Equal(all, copy);
    }

    static TokenShard MultiDocumentShard(string path)
    {
        var docs = Enumerable.Range(0, 40).Select(d => Enumerable.Range(0, 50).Select(i => (d * 7 + i) % Vocab).ToArray()).ToList();
        TokenShard.Write(path, docs, Vocab, bosId: 0);
        return TokenShard.Open(path);
    }
}
