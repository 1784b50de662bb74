using System.Diagnostics;
using System.Text.Json;

namespace Tessera.Cli.Tests;

/// <summary>`tessera train --data shapes` ends on SIGTERM: the loop checks the cancellation token, saves the model and the curve, and exits.</summary>
public class ShapesTrainSignalTests
{
    static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "tessera.dll");

    [Fact]
    public async Task SigtermStopsShapesTraining()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in (string[])[Dll, "train", "--data", "shapes", "--steps", "1000000", "--dim", "32", "--layers", "1", "--batch", "2", "--out", "run"]) psi.ArgumentList.Add(a);
            psi.Environment["NO_COLOR"] = "1";
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            string? line;
            while ((line = p.StandardError.ReadLine()) is not null && !line.StartsWith("shapes world:", StringComparison.Ordinal)) { }
            Assert.NotNull(line);   // training has started
            await Task.Delay(1000);
            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!) await kill.WaitForExitAsync();
            bool exited = p.WaitForExit(TimeSpan.FromSeconds(60));
            if (!exited) p.Kill(entireProcessTree: true);
            Assert.True(exited, "tessera train --data shapes was still running 60 s after SIGTERM");
            Assert.Equal(0, p.ExitCode);
            Assert.Contains("cancelled after step", await stdout);
            using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "run", "report.json")));
            Assert.InRange(report.RootElement.GetProperty("steps_run").GetInt32(), 1, 999_999);
            Assert.True(File.Exists(Path.Combine(dir, "run", "config.json")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
