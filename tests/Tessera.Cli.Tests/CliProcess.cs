using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;

namespace Tessera.Cli.Tests;

/// <summary>What one run of <c>tessera</c> printed and returned.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Stdout as JSON (for commands run with --json).</summary>
    public JsonElement Json()
    {
        Assert.True(ExitCode == 0, $"exit {ExitCode}: {Stderr}");
        return JsonDocument.Parse(Stdout).RootElement;
    }

    /// <summary>The run failed (a non-zero exit) and its stderr mentions each of <paramref name="mentioned"/>.</summary>
    public void AssertRefused(params string[] mentioned)
    {
        Assert.NotEqual(0, ExitCode);
        foreach (var m in mentioned) Assert.Contains(m, Stderr);
    }
}

/// <summary>Runs the built <c>tessera.dll</c> (copied beside the tests) as a child process, as a user would.</summary>
public static class CliProcess
{
    static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "tessera.dll");

    public static CliResult Run(string workDir, params string[] args)
    {
        Assert.True(File.Exists(Dll), $"{Dll} is missing: the test project must reference Tessera.Cli.");
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"tessera {string.Join(' ', args)} did not finish in 3 minutes.");
        }
        return new CliResult(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>A fresh temporary folder for one test.</summary>
    /// <summary>
    /// The command contract for failures: run <paramref name="args"/> in a fresh folder and expect exit
    /// code 1, one stderr line starting "error: " that mentions <paramref name="mentioned"/>, and
    /// nothing written.
    /// </summary>
    public static void AssertOneErrorLine(string[] args, string mentioned, StringComparison comparison = StringComparison.Ordinal)
    {
        string dir = TempDir();
        try
        {
            var r = Run(dir, args);
            Assert.Equal(1, r.ExitCode);
            var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1, $"expected one stderr line, got:\n{r.Stderr}");
            Assert.StartsWith("error: ", lines[0]);
            Assert.Contains(mentioned, lines[0], comparison);
            Assert.Empty(Directory.EnumerateFileSystemEntries(dir));   // nothing half-written
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "tessera-cli-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Some English prose for a tokenizer to learn from (the first 300 KB of the embedded Moby-Dick).</summary>
    public static string WriteCorpus(string dir)
    {
        using var resource = typeof(Tessera.Data.EmbeddedCorpus).Assembly.GetManifestResourceNames()
            .Where(n => n.EndsWith("moby-dick.txt.gz", StringComparison.Ordinal))
            .Select(n => typeof(Tessera.Data.EmbeddedCorpus).Assembly.GetManifestResourceStream(n)!)
            .First();
        using var gz = new GZipStream(resource, CompressionMode.Decompress);
        var buffer = new byte[300_000];
        int read = 0, n;
        while (read < buffer.Length && (n = gz.Read(buffer, read, buffer.Length - read)) > 0) read += n;
        string path = Path.Combine(dir, "corpus.txt");
        int end = Array.LastIndexOf(buffer, (byte)'\n', read - 1) + 1;   // whole lines: no UTF-8 sequence cut in half
        File.WriteAllBytes(path, buffer.AsSpan(0, end).ToArray());
        return path;
    }
}
