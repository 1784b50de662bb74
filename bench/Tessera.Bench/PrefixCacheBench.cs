using System.Diagnostics;
using Tessera.Inference;
using Tessera.Model;

namespace Tessera.Bench;

/// <summary>Time to first token with a shared system prompt, with and without the prefix cache.</summary>
/// <param name="Requests">Requests sent to each engine, one at a time.</param>
/// <param name="SystemTokens">Tokens of the shared system prompt.</param>
/// <param name="PlainTtftMs">Mean time to first token without the cache.</param>
/// <param name="CachedTtftMs">Mean time to first token with it (the first request, a miss, included).</param>
/// <param name="PlainMedianMs">Median without the cache.</param>
/// <param name="CachedMedianMs">Median with it.</param>
/// <param name="Speedup">Plain ÷ cached mean.</param>
/// <param name="SameTokens">True when every reply (greedy) was the same with and without the cache.</param>
/// <param name="RestoredTokens">Prompt positions copied from the cache instead of computed.</param>
/// <param name="PeakCacheBytes">Most bytes the cache held.</param>
/// <param name="BudgetBytes">Its budget.</param>
public sealed record PrefixCacheBenchResult(int Requests, int SystemTokens, double PlainTtftMs, double CachedTtftMs, double PlainMedianMs, double CachedMedianMs,
    double Speedup, bool SameTokens, long RestoredTokens, long PeakCacheBytes, long BudgetBytes);

/// <summary>Runs <see cref="PrefixCacheBenchResult"/>'s measurement on a random model (speed does not depend on training).</summary>
public static class PrefixCacheBench
{
    /// <summary>The default model: ≈7M parameters with a 1,280-token context.</summary>
    public static ModelConfig ModelConfig { get; } = new() { VocabSize = 8192, Dim = 256, Layers = 4, Heads = 4, KvHeads = 2, HiddenDim = 768, ContextLength = 1280 };

    /// <summary>
    /// <paramref name="requests"/> requests, each the shared <paramref name="systemTokens"/>-token
    /// system prompt and 8–23 tokens of its own, 8 greedy tokens each, sent one at a time to a
    /// plain and a cached engine, interleaved request by request.
    /// </summary>
    public static PrefixCacheBenchResult Run(int requests = 100, int systemTokens = 1000, long budgetBytes = 32L << 20, Action<string>? progress = null)
    {
        using var model = new Transformer(ModelConfig, seed: 4);
        var weights = InferenceWeights.FromTransformer(model);
        var rng = new Random(7);
        var system = Enumerable.Range(0, systemTokens).Select(_ => rng.Next(ModelConfig.VocabSize)).ToArray();
        var prompts = Enumerable.Range(0, requests).Select(i => system.Concat(Enumerable.Range(0, 8 + i % 16).Select(_ => rng.Next(ModelConfig.VocabSize))).ToArray()).ToList();
        using var plain = new BatchingEngine(weights, new BatchingOptions { MaxSequences = 1, PrefillChunk = 256 });
        using var cached = new BatchingEngine(weights, new BatchingOptions { MaxSequences = 1, PrefillChunk = 256, PrefixCacheBytes = budgetBytes });
        // Warm-up (JIT, slot allocation) on an unrelated prompt, so neither engine pays it in the figures.
        foreach (var e in new[] { plain, cached }) First(e, [1, 2, 3], out _);
        var plainMs = new List<double>(); var cachedMs = new List<double>();
        bool same = true;
        for (int i = 0; i < requests; i++)
        {
            if (i % 10 == 0) progress?.Invoke($"request {i + 1}/{requests}: time to first token, plain then cached");
            plainMs.Add(First(plain, prompts[i], out var a));
            cachedMs.Add(First(cached, prompts[i], out var b));
            same &= a.SequenceEqual(b);
        }
        var stats = cached.Prefixes!.Stats;
        double Median(List<double> x) { var s = x.Order().ToList(); return s[s.Count / 2]; }
        return new PrefixCacheBenchResult(requests, systemTokens, plainMs.Average(), cachedMs.Average(), Median(plainMs), Median(cachedMs),
            plainMs.Average() / cachedMs.Average(), same, stats.RestoredTokens, stats.PeakBytes, stats.BudgetBytes);
    }

    // Milliseconds to the first token; the whole greedy reply comes back in `ids`.
    static double First(BatchingEngine engine, int[] prompt, out List<int> ids)
    {
        ids = [];
        var sw = Stopwatch.StartNew();
        double first = double.NaN;
        foreach (var e in engine.GenerateAsync(new GenerationRequest(prompt, 8, SamplingOptions.Greedy)).ToBlockingEnumerable())
        {
            if (ids.Count == 0) first = sw.Elapsed.TotalMilliseconds;
            ids.Add(e.Id);
        }
        return first;
    }
}
