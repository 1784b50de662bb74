using System.Diagnostics;
using System.Text.Json;

namespace Tessera.Bench;

/// <summary>
/// One model and batch shape for the PyTorch side of <c>tessera bench train</c>, in the terms of
/// reference/model_reference.py (Llama/Mixtral layout, head dim = dim / heads).
/// </summary>
public sealed record TrainTorchConfig(string Name, int Vocab, int Dim, int Layers, int Heads, int KvHeads, int Hidden,
    int Experts, int TopK, bool Tied, int Batch, int Seq);

/// <summary>PyTorch's mean time of one training step of one config, with its own parameter counts.</summary>
public sealed record TorchTrainTiming(string Name, long Parameters, long ActiveParameters, double MsPerStep, double TokensPerSecond);

/// <summary>What reference/bench_train.py reported, or why there is nothing (<see cref="Note"/>).</summary>
public sealed record TorchTrainResult(string? Version, IReadOnlyList<TorchTrainTiming> Timings, string? Note)
{
    /// <summary>The timing of config <paramref name="name"/>, if torch ran it.</summary>
    public TorchTrainTiming? Find(string name)
    {
        foreach (var t in Timings)
            if (t.Name == name) return t;
        return null;
    }
}

/// <summary>
/// Runs reference/bench_train.py under /usr/bin/python3 with the environment that makes torch 1.13
/// CPU fast here (OMP_WAIT_POLICY=passive, tcmalloc preloaded when installed), so the comparison
/// is against torch at its best on this machine, and parses the JSON line it prints per config.
/// </summary>
public static class TrainTorchReference
{
    const string Python = "/usr/bin/python3";
    const string Tcmalloc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";
    const string Script = "reference/bench_train.py";

    /// <summary>
    /// Times <paramref name="steps"/> steps after <paramref name="warmup"/> of every config in one
    /// python process with torch.set_num_threads(<paramref name="threads"/>). Never throws for a
    /// missing python/torch/script: the result's note says why the comparison was skipped.
    /// </summary>
    public static TorchTrainResult Run(IReadOnlyList<TrainTorchConfig> configs, int threads, int steps, int warmup, Action<string>? progress = null)
    {
        if (!File.Exists(Python)) return Skipped($"{Python} not found");
        var (rc, _, err) = Exec(["-c", "import torch"], TimeSpan.FromSeconds(60), null);
        if (rc != 0) return Skipped($"`{Python} -c \"import torch\"` failed: {LastLine(err)}");
        string? script = FindScript();
        if (script is null) return Skipped($"{Script} not found above {Environment.CurrentDirectory} or {AppContext.BaseDirectory}");

        var list = new List<object>();
        foreach (var c in configs)
            list.Add(new
            {
                name = c.Name, vocab = c.Vocab, dim = c.Dim, layers = c.Layers, heads = c.Heads, kv_heads = c.KvHeads, hidden = c.Hidden,
                experts = c.Experts, top_k = c.TopK, tied = c.Tied, batch = c.Batch, seq = c.Seq,
            });
        var timings = new List<TorchTrainTiming>();
        string? version = null;
        var (code, _, stderr) = Exec([script, "--configs", JsonSerializer.Serialize(list), "--threads", $"{threads}", "--steps", $"{steps}", "--warmup", $"{warmup}"],
            TimeSpan.FromMinutes(10), line =>
            {
                if (!line.StartsWith('{')) return;
                using var doc = JsonDocument.Parse(line);
                var r = doc.RootElement;
                version = r.GetProperty("torch").GetString();
                var t = new TorchTrainTiming(r.GetProperty("name").GetString()!, r.GetProperty("params").GetInt64(),
                    r.GetProperty("active").GetInt64(), r.GetProperty("ms_per_step").GetDouble(), r.GetProperty("tokens_per_s").GetDouble());
                lock (timings) timings.Add(t);
                progress?.Invoke($"torch {t.Name}: {t.MsPerStep:F1} ms/step");
            });
        if (code != 0) return new TorchTrainResult(version, timings, $"PyTorch comparison incomplete: {Script} exited with {code}: {LastLine(stderr)}");
        return new TorchTrainResult(version, timings, null);
    }

    static TorchTrainResult Skipped(string why) => new(null, [], $"PyTorch comparison skipped: {why}");

    static string LastLine(string s)
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

    /// <summary>Runs python; <paramref name="onLine"/> sees each stdout line as it arrives (progress per config).</summary>
    static (int Code, string Stdout, string Stderr) Exec(IEnumerable<string> args, TimeSpan timeout, Action<string>? onLine)
    {
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_WAIT_POLICY"] = "passive";
        if (File.Exists(Tcmalloc)) psi.Environment["LD_PRELOAD"] = Tcmalloc;
        using var p = new Process { StartInfo = psi };
        var stdout = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stdout) stdout.AppendLine(e.Data);
            onLine?.Invoke(e.Data.Trim());
        };
        if (!p.Start()) throw new InvalidOperationException($"could not start {Python}");
        p.BeginOutputReadLine();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            return (-1, "", $"timed out after {timeout.TotalSeconds:F0} s");
        }
        p.WaitForExit(); // drains the asynchronous stdout reader
        return (p.ExitCode, stdout.ToString(), stderr.Result);
    }
}
