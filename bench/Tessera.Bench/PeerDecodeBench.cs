using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Tessera.Inference;
using Tessera.Kernels;
using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Text;

namespace Tessera.Bench;

/// <summary>One storage type of the peer comparison: batch-1 decode of the same GGUF file in Tessera and llama.cpp.</summary>
public sealed record PeerDecodeRow(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("file_mb")] double FileMegabytes,
    [property: JsonPropertyName("tessera_tok_s")] double TesseraTokensPerSecond,
    [property: JsonPropertyName("llama_cpp_tok_s")] double LlamaCppTokensPerSecond,
    [property: JsonPropertyName("ratio")] double Ratio,
    [property: JsonPropertyName("parallel")] IReadOnlyList<PeerParallelRow> Parallel,
    [property: JsonPropertyName("bandwidth_gbps")] double BandwidthGBps = 0,
    [property: JsonPropertyName("roofline_tok_s")] double RooflineTokensPerSecond = 0);

/// <summary>Aggregate decode throughput with N concurrent sequences (decode-only window), both engines.</summary>
public sealed record PeerParallelRow(
    [property: JsonPropertyName("sequences")] int Sequences,
    [property: JsonPropertyName("tessera_tok_s")] double TesseraTokensPerSecond,
    [property: JsonPropertyName("tessera_vs_batch1")] double TesseraVersusBatch1,
    [property: JsonPropertyName("llama_cpp_tok_s")] double LlamaCppTokensPerSecond,
    [property: JsonPropertyName("ratio")] double Ratio);

/// <summary>The whole comparison.</summary>
public sealed record PeerDecodeReport(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("parameters")] long Parameters,
    [property: JsonPropertyName("threads")] int Threads,
    [property: JsonPropertyName("decode_tokens")] int DecodeTokens,
    [property: JsonPropertyName("rounds")] int Rounds,
    [property: JsonPropertyName("peer")] string Peer,
    [property: JsonPropertyName("rows")] IReadOnlyList<PeerDecodeRow> Rows);

/// <summary>
/// <c>tessera bench decode --peer llama.cpp</c>: the same GGUF file decoded by Tessera
/// (<see cref="GgufWeights"/>, quantized tensors run as stored) and by llama.cpp (npm
/// node-llama-cpp 3.22.1 running bench/peers/llama-decode.mjs), in the same run, with the same
/// thread count. For each type (F32, Q8_0, Q4_0, Q4_K, written by Tessera's GGUF writer) the rounds
/// interleave the two engines and the best rate of each counts, so a burst of load from other
/// processes cannot favour one side. Then aggregate greedy throughput at N concurrent sequences:
/// Tessera's continuous batching and llama.cpp's parallel sequences of one context
/// (bench/peers/llama-parallel.mjs), both decode-only windows.
/// </summary>
public static class PeerDecodeBench
{
    /// <summary>The llama.cpp peer folder ($TESSERA_PEERS/llama-cpp, default ~/.cache/tessera-peers/llama-cpp), or null when not installed.</summary>
    public static string? LlamaCppFolder()
    {
        var root = Environment.GetEnvironmentVariable("TESSERA_PEERS");
        if (string.IsNullOrEmpty(root)) root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "tessera-peers");
        var dir = Path.Combine(root, "llama-cpp");
        return Directory.Exists(Path.Combine(dir, "node_modules", "node-llama-cpp")) && File.Exists(Path.Combine(dir, "llama-decode.mjs"))
            && File.Exists(Path.Combine(dir, "llama-parallel.mjs")) ? dir : null;
    }

    /// <summary>The storage types compared, as Tessera writes them.</summary>
    public static readonly GgufWeightType[] Types = [GgufWeightType.F32, GgufWeightType.Q8_0, GgufWeightType.Q4_0, GgufWeightType.Q4_K];

    /// <summary>
    /// Writes <paramref name="model"/> once per type into <paramref name="workDir"/>, then measures both engines.
    /// <paramref name="types"/> defaults to <see cref="Types"/>; <paramref name="sequences"/> are the concurrency levels.
    /// </summary>
    public static PeerDecodeReport Run(string name, Transformer model, string workDir, int decodeTokens, int rounds, int[] sequences,
        IReadOnlyList<GgufWeightType>? types = null, Action<string>? progress = null)
    {
        var peer = LlamaCppFolder() ?? throw new InvalidOperationException(
            "llama.cpp peer not installed: run bench/peers/install-llama-cpp.sh (it installs npm node-llama-cpp 3.22.1 into $TESSERA_PEERS/llama-cpp, default ~/.cache/tessera-peers/llama-cpp).");
        int threads = WorkerPool.Shared.ThreadCount;
        var c = model.Config;
        var rows = new List<PeerDecodeRow>();
        Directory.CreateDirectory(workDir);
        foreach (var type in types ?? Types)
        {
            string path = Path.Combine(workDir, $"peer-{type}.gguf".ToLowerInvariant());
            progress?.Invoke($"{type}: writing {Path.GetFileName(path)}");
            GgufModel.Save(model, path, new GgufExportOptions { Type = type, Tokenizer = new ByteTokenizer() });
            var weights = GgufWeights.Load(path);
            // The memory roofline of this file (every tensor read once per token, the embedding table only where it is
            // also the head) at the higher of two bandwidth readings, before and after its rounds: this host's read
            // bandwidth moves between two phases (about 45 and 80 GB/s) within seconds, and the faster one bounds both.
            double bandwidth = MemoryBandwidth.MeasureGBps(WorkerPool.Shared);
            var prompt = DecodeBench.Prompt(16, Math.Min(c.VocabSize, 256), 2);
            using var dec = new SequenceDecoder(weights);
            Batch1(dec, prompt, 4);   // warm-up (JIT)
            double ours = 0, theirs = 0;
            for (int r = 0; r < rounds; r++)
            {
                progress?.Invoke($"{type}: round {r + 1}/{rounds}: Tessera batch-1, {decodeTokens} tokens");
                ours = Math.Max(ours, Batch1(dec, prompt, decodeTokens));
                progress?.Invoke($"{type}: round {r + 1}/{rounds}: llama.cpp batch-1 (best of its 3 runs)");
                using var doc = JsonDocument.Parse(LastLine(Node(peer, "llama-decode.mjs", path, decodeTokens.ToString(), threads.ToString(), "Once upon a time, there was a little girl who")));
                theirs = Math.Max(theirs, doc.RootElement.GetProperty("decode_tok_s").GetDouble());
            }
            progress?.Invoke($"{type}: batch-1: Tessera {ours:F1} tok/s, llama.cpp {theirs:F1} tok/s, ratio {ours / theirs:F2}");
            var parallel = new List<PeerParallelRow>();
            foreach (int n in sequences)
            {
                double oursN = 0, theirsN = 0;
                for (int r = 0; r < rounds; r++)
                {
                    progress?.Invoke($"{type}: round {r + 1}/{rounds}: {n} concurrent sequences, Tessera then llama.cpp");
                    oursN = Math.Max(oursN, Aggregate(weights, n, c.VocabSize));
                    using var doc = JsonDocument.Parse(LastLine(Node(peer, "llama-parallel.mjs", path, n.ToString(), "32", threads.ToString(), "1")));
                    theirsN = Math.Max(theirsN, doc.RootElement.GetProperty("aggregate_tok_s").GetDouble());
                }
                parallel.Add(new PeerParallelRow(n, oursN, oursN / ours, theirsN, theirsN > 0 ? oursN / theirsN : double.NaN));
                progress?.Invoke($"{type}: {n} sequences: Tessera {oursN:F1} tok/s ({oursN / ours:F1}× its batch-1), llama.cpp {theirsN:F1} tok/s");
            }
            bandwidth = Math.Max(bandwidth, MemoryBandwidth.MeasureGBps(WorkerPool.Shared));
            rows.Add(new PeerDecodeRow(type.ToString(), new FileInfo(path).Length / 1e6, ours, theirs, ours / theirs, parallel,
                bandwidth, bandwidth * 1e9 / BytesPerToken(path)));
            File.Delete(path);
        }
        return new PeerDecodeReport(name, c.ParameterCount, threads, decodeTokens, rounds, "llama.cpp prebuilt in node-llama-cpp 3.22.1 (CPU backend picked at run time)", rows);
    }

    /// <summary>Bytes a decoded token reads from a GGUF's tensors: all of them, less the embedding table when a separate head exists.</summary>
    static long BytesPerToken(string path)
    {
        using var r = GgufReader.Open(path);
        bool separateHead = r.Contains("output.weight");
        return r.Tensors.Where(t => !(separateHead && t.Name == "token_embd.weight")).Sum(t => t.Bytes);
    }

    static double Batch1(SequenceDecoder dec, int[] prompt, int tokens)
    {
        dec.Reset();
        dec.Feed(prompt);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < tokens; i++) dec.Feed([Sampler.ArgMax(dec.Logits(0))]);
        return tokens / sw.Elapsed.TotalSeconds;
    }

    /// <summary>Tessera's continuous batching, <paramref name="n"/> sequences × 32 greedy tokens, decode-only window (as <see cref="DecodeBench"/>).</summary>
    static double Aggregate(InferenceWeights weights, int n, int vocab)
    {
        using var engine = new BatchingEngine(weights, new BatchingOptions { MaxSequences = n });
        var requests = Enumerable.Range(0, n).Select(i => new GenerationRequest(DecodeBench.Prompt(16, Math.Min(vocab, 256), 10 + i), 32, SamplingOptions.Greedy)).ToArray();
        DecodeBench.Drain(engine, requests.Take(1).ToArray());
        var (tokens, seconds) = DecodeBench.Drain(engine, requests);
        return tokens / seconds;
    }

    static string LastLine(string text) => text.TrimEnd().Split('\n')[^1];

    /// <summary>Runs a peer script (bounded: 10 minutes), returns stdout; throws with stderr on failure.</summary>
    static string Node(string folder, params string[] args)
    {
        var psi = new ProcessStartInfo("node") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start node (is Node.js on PATH?)");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(600_000)) { p.Kill(entireProcessTree: true); throw new TimeoutException($"llama.cpp peer: node {string.Join(' ', args)} ran past 10 minutes."); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"llama.cpp peer: node {args[0]} exited {p.ExitCode}: {stderr.Result.Trim()}");
        return stdout.Result;
    }
}
