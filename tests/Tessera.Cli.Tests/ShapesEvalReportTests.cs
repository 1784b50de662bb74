namespace Tessera.Cli.Tests;

/// <summary>
/// `tessera eval` on a shapes-world model reads the clip travel from the run's report.json; a damaged report is
/// named in one error line, and the eval neither scores with a guessed travel nor writes into the run folder.
/// </summary>
public class ShapesEvalReportTests
{
    [Theory]
    [InlineData("{not json")]
    [InlineData("{\"options\": {\"motion_travel\": \"wide\"}}")]
    [InlineData("{\"options\": {\"motion_travel\": 48, \"presence_fraction\": \"some\"}}")]
    public void DamagedReportIsNamedAndNothingIsWritten(string damaged)
    {
        string dir = CliProcess.TempDir();
        try
        {
            var trained = CliProcess.Run(dir, "train", "--data", "shapes", "--steps", "2", "--dim", "32", "--layers", "1", "--batch", "2", "--motion-fraction", "0.5", "--out", "run");
            Assert.True(trained.ExitCode == 0, trained.Stderr);
            string report = Path.Combine(dir, "run", "report.json");
            File.WriteAllText(report, damaged);
            var before = Directory.GetFiles(Path.Combine(dir, "run")).Order().ToArray();

            var r = CliProcess.Run(dir, "eval", "--model", "run", "--quick");
            Assert.Equal(1, r.ExitCode);
            var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1, $"expected one stderr line, got:\n{r.Stderr}");
            Assert.StartsWith("error: ", lines[0]);
            Assert.Contains("report.json: not a readable training report", lines[0]);
            Assert.Equal(damaged, File.ReadAllText(report));
            Assert.Equal(before, Directory.GetFiles(Path.Combine(dir, "run")).Order().ToArray());   // no examples.svg
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
