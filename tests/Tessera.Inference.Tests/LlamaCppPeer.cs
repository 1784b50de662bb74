using System.Diagnostics;
using System.Text.Json;

namespace Tessera.Inference.Tests;

/// <summary>
/// The llama.cpp peer (npm node-llama-cpp 3.22.1 and our scripts beside it), installed by
/// bench/peers/install-llama-cpp.sh into $TESSERA_PEERS/llama-cpp (default
/// ~/.cache/tessera-peers/llama-cpp). Tests that need it use <see cref="LlamaCppFactAttribute"/> or
/// <see cref="LlamaCppTheoryAttribute"/> and are skipped, with a message saying how to install it, when absent.
/// </summary>
public static class LlamaCppPeer
{
    /// <summary>The peer folder (node_modules/node-llama-cpp and the llama-*.mjs scripts), or null.</summary>
    public static string? Folder { get; } = Find();

    /// <summary>Why tests skip when <see cref="Folder"/> is null.</summary>
    public const string SkipMessage = "llama.cpp peer not installed (run bench/peers/install-llama-cpp.sh; set TESSERA_PEERS to its parent folder): cross-check skipped.";

    static string? Find()
    {
        var root = Environment.GetEnvironmentVariable("TESSERA_PEERS");
        if (string.IsNullOrEmpty(root)) root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "tessera-peers");
        var dir = Path.Combine(root, "llama-cpp");
        bool ok = Directory.Exists(Path.Combine(dir, "node_modules", "node-llama-cpp"))
            && File.Exists(Path.Combine(dir, "llama-greedy.mjs")) && File.Exists(Path.Combine(dir, "llama-logprobs.mjs"))
            && File.Exists(Path.Combine(dir, "llama-quantize.py")) && OnPath("node");
        return ok ? dir : null;
    }

    static bool OnPath(string exe) => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
        .Any(p => p.Length > 0 && File.Exists(Path.Combine(p, exe)));

    /// <summary>Runs <paramref name="program"/> in the peer folder; returns stdout, throws with stderr on failure or after <paramref name="timeoutSeconds"/> (generous: llama.cpp's spinning threads crawl on a shared 2-vCPU machine under load).</summary>
    public static string Run(string program, IEnumerable<string> args, int timeoutSeconds = 600)
    {
        var dir = Folder ?? throw new InvalidOperationException(SkipMessage);
        var psi = new ProcessStartInfo(program) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {program}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"llama.cpp peer: {program} {string.Join(' ', args)} ran past {timeoutSeconds} s.");
        }
        if (p.ExitCode != 0) throw new InvalidOperationException($"llama.cpp peer: {program} {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Result}{stdout.Result}");
        return stdout.Result;
    }

    /// <summary>llama.cpp's greedy continuation (temperature 0) of exactly <paramref name="prompt"/> (no BOS added), <paramref name="count"/> tokens.</summary>
    public static int[] Greedy(string gguf, IReadOnlyList<int> prompt, int count)
    {
        var output = Run("node", ["llama-greedy.mjs", gguf, JsonSerializer.Serialize(prompt), count.ToString()]);
        // llama-greedy.mjs prints a diagnostics line, then the ids as a JSON array, then their text.
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith('['))
            ?? throw new InvalidOperationException($"llama-greedy.mjs printed no id list: {output}");
        return JsonSerializer.Deserialize<int[]>(line)!;
    }

    /// <summary>llama.cpp's log p(ids[t+1] | ids[..t]) for t = 0..n−2, and its argmax at each position.</summary>
    public static (double[] LogProbs, int[] ArgMax) LogProbs(string gguf, IReadOnlyList<int> ids)
    {
        var output = Run("node", ["llama-logprobs.mjs", gguf, JsonSerializer.Serialize(ids)]);
        using var doc = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        var lp = doc.RootElement.GetProperty("logprobs").EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number ? e.GetDouble() : double.NegativeInfinity).ToArray();
        var am = doc.RootElement.GetProperty("argmax").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        return (lp, am);
    }

    /// <summary>llama.cpp's own quantizer (llama_model_quantize): <paramref name="ftype"/> (llama_ftype) 15 Q4_K_M, 17 Q5_K_M, 18 Q6_K, 7 Q8_0, 2 Q4_0, 3 Q4_1, 8 Q5_0, 9 Q5_1, 25 IQ4_NL.</summary>
    public static void Quantize(string input, string output, int ftype)
    {
        var text = Run("python3", ["llama-quantize.py", input, output, ftype.ToString(), Path.Combine(Folder!, "node_modules")]);
        if (!text.Contains("rc 0") || !File.Exists(output)) throw new InvalidOperationException($"llama-quantize.py {ftype} failed: {text}");
    }
}

/// <summary>A fact that is skipped with a clear message when the llama.cpp peer is absent.</summary>
public sealed class LlamaCppFactAttribute : FactAttribute
{
    public LlamaCppFactAttribute() { if (LlamaCppPeer.Folder is null) Skip = LlamaCppPeer.SkipMessage; }
}

/// <summary>A theory that is skipped with a clear message when the llama.cpp peer is absent.</summary>
public sealed class LlamaCppTheoryAttribute : TheoryAttribute
{
    public LlamaCppTheoryAttribute() { if (LlamaCppPeer.Folder is null) Skip = LlamaCppPeer.SkipMessage; }
}
