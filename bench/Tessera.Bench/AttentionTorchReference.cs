using System.Diagnostics;
using System.Text.Json;

namespace Tessera.Bench;

/// <summary>One PyTorch implementation's timings (milliseconds, median).</summary>
public sealed record TorchAttentionTimings(double FwdMs, double BwdMs, double FwdBwdMs);

/// <summary>What reference/bench_attention.py reported, or why there is nothing.</summary>
public sealed record TorchAttentionResult(string? Version, int Threads, TorchAttentionTimings? Naive, TorchAttentionTimings? Sdpa, string? Note);

/// <summary>
/// Runs reference/bench_attention.py under /usr/bin/python3 with the environment that makes
/// torch 1.13 CPU fast here (OMP_WAIT_POLICY=passive, tcmalloc preloaded when installed) and
/// parses the one JSON line it prints.
/// </summary>
public static class AttentionTorchReference
{
    const string Python = "/usr/bin/python3";
    const string Tcmalloc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";
    const string Script = "reference/bench_attention.py";

    public static TorchAttentionResult Run(int batch, int heads, int kvHeads, int seq, int dim, int threads)
    {
        if (!File.Exists(Python)) return Missing($"{Python} not found");
        var (rc, _, err) = Exec(["-c", "import torch"], TimeSpan.FromSeconds(60));
        if (rc != 0) return Missing($"`{Python} -c \"import torch\"` failed: {FirstLine(err)}");
        string? script = FindScript();
        if (script is null) return Missing($"{Script} not found above {Environment.CurrentDirectory} or {AppContext.BaseDirectory}");

        var (code, stdout, stderr) = Exec([script, "--batch", $"{batch}", "--heads", $"{heads}", "--kv-heads", $"{kvHeads}",
            "--seq", $"{seq}", "--dim", $"{dim}", "--threads", $"{threads}"], TimeSpan.FromMinutes(5));
        if (code != 0) return Missing($"{Script} exited with {code}: {FirstLine(stderr)}");
        string? line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault(l => l.StartsWith('{'));
        if (line is null) return Missing($"{Script} printed no JSON line");
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        return new TorchAttentionResult(root.GetProperty("torch").GetString(), root.GetProperty("threads").GetInt32(),
            Timings(root, "naive"), Timings(root, "sdpa"),
            root.GetProperty("sdpa").ValueKind == JsonValueKind.Null ? "scaled_dot_product_attention is not in this torch" : null);
    }

    static TorchAttentionTimings? Timings(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind != JsonValueKind.Object) return null;
        return new TorchAttentionTimings(e.GetProperty("fwd_ms").GetDouble(), e.GetProperty("bwd_ms").GetDouble(), e.GetProperty("fwdbwd_ms").GetDouble());
    }

    static TorchAttentionResult Missing(string why) => new(null, 0, null, null, $"PyTorch comparison skipped: {why}");

    static string FirstLine(string s)
    {
        var lines = s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no output)" : lines[^1];
    }

    static string? FindScript()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string path = Path.Combine(dir.FullName, Script);
                if (File.Exists(path)) return path;
            }
        return null;
    }

    static (int Code, string Stdout, string Stderr) Exec(IEnumerable<string> args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_WAIT_POLICY"] = "passive";
        if (File.Exists(Tcmalloc)) psi.Environment["LD_PRELOAD"] = Tcmalloc;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Python}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            return (-1, "", $"timed out after {timeout.TotalSeconds:F0} s");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
