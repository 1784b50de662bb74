using Tessera.Data;
using Tessera.Data.NGram;
using Tessera.Inference;

namespace Tessera.Evals.Tests;

/// <summary>
/// The ∞-gram mixed with the LM: the logits processor against the mixture formula computed from
/// brute-force counts, the per-target log-probabilities against BitsPerByte's nats, the fits, the
/// end-to-end generation option, and the store as a contamination index against the hash index.
/// </summary>
public sealed class NGramInterpolationTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "tessera-ngram-mix-" + Guid.NewGuid().ToString("N"));

    public void Dispose() { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }

    NGramStore Store(IEnumerable<int[]> docs, int vocab, string name = "index")
    {
        string path = Path.Combine(dir, name);
        NGramBuilder.Build(docs, new TokenizerIdentity("test", vocab, "x"), path, new NGramBuildOptions { ShardTokens = 37 });
        return NGramStore.Open(path);
    }

    [Fact]
    public void LogitsProcessorIsTheMixtureOfSoftmaxAndInfinityGram()
    {
        const int V = 5;
        var docs = Enumerable.Range(0, 12).Select(d => TinyModels.Tokens(9 + d, 40 + (ulong)d, alphabet: V)).ToArray();
        using var store = Store(docs, V);
        var stream = docs.SelectMany(d => d).ToArray();
        foreach (double lambda in new[] { 0.0, 0.25, 0.9 })
            for (int q = 0; q < 20; q++)
            {
                var history = TinyModels.Tokens(q % 6, 900 + (ulong)q, alphabet: V);
                var logits = TinyModels.Tokens(V, 300 + (ulong)q, alphabet: 50).Select(x => x / 10f).ToArray();
                var got = (float[])logits.Clone();
                new NGramLogitsProcessor(store, lambda).Process(history, got);
                // Brute force: the longest suffix of history followed by a token, inside one 37-token shard.
                double[] pn = new double[V];
                for (int k = history.Length; k >= 0; k--)
                {
                    Array.Clear(pn);
                    double total = 0;
                    for (int s = 0; s < stream.Length; s += 37)
                    {
                        int end = Math.Min(stream.Length, s + 37);
                        for (int p = s; p + k < end; p++)
                            if (stream.AsSpan(p, k).SequenceEqual(history.AsSpan(history.Length - k))) { pn[stream[p + k]]++; total++; }
                    }
                    if (total > 0) { for (int i = 0; i < V; i++) pn[i] /= total; break; }
                }
                double max = logits.Max(), z = logits.Sum(x => Math.Exp(x - max));
                for (int i = 0; i < V; i++)
                {
                    double want = Math.Log((1 - lambda) * Math.Exp(logits[i] - max) / z + lambda * pn[i]);
                    if (lambda == 0) Assert.Equal(logits[i], got[i]);    // λ = 0 leaves the logits alone
                    else Assert.Equal(want, got[i], 1e-5 * Math.Max(1, Math.Abs(want)));
                }
            }
    }

    [Fact]
    public void GreedyGenerationWithLambdaOneFollowsTheIndex()
    {
        var bytes = TinyModels.Bytes;
        var docs = new[] { "the whale surfaced near the ship at dawn", "call me ishmael, some years ago" }.Select(t => bytes.Encode(t).ToArray()).ToArray();
        using var store = Store(docs.Select(d => d), bytes.VocabSize);
        using var model = TinyModels.Random(context: 64);
        var prompt = bytes.Encode("call me").ToArray();
        var sampling = SamplingOptions.Greedy with { LogitsProcessor = new NGramLogitsProcessor(store, 1.0) };
        var generated = new ReferenceEngine(model).Generate(prompt, 12, sampling);   // prompt + continuation
        Assert.Equal(" ishmael, so", bytes.Decode(generated.ToArray().AsSpan(prompt.Length)));
        // Without the processor the random model says something else.
        Assert.NotEqual(" ishmael, so", bytes.Decode(new ReferenceEngine(model).Generate(prompt, 12, SamplingOptions.Greedy).ToArray().AsSpan(prompt.Length)));
        Assert.Contains("needs the prompt", Assert.Throws<ArgumentException>(() => new Sampler(sampling)).Message);
    }

    [Fact]
    public void TargetLogProbsSumToTheNatsBitsPerByteReports()
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "val.bin");
        var docs = Enumerable.Range(0, 6).Select(d => TinyModels.Tokens(20 + 7 * d, 11 + (ulong)d, alphabet: 200)).ToArray();
        TokenShard.Write(path, docs, TinyModels.Bytes.VocabSize, TinyModels.Bos);
        using var shard = TokenShard.Open(path);
        using var model = TinyModels.Random(context: 16);
        var lp = BitsPerByte.TargetLogProbs(model, shard, window: 16, stride: 8);
        var r = BitsPerByte.Evaluate(model, shard, "val", 1000, TinyModels.Bytes, window: 16, stride: 8);
        Assert.Equal(shard.TokenCount - 1, lp.Length);
        Assert.All(lp, x => Assert.True(x < 0 && double.IsFinite(x)));
        Assert.Equal(r.Nats, -lp.Sum(), 1e-9 * r.Nats);
    }

    [Fact]
    public void FittedLambdaIsAMinimumAndTheGateBeatsItWhereMatchLengthMatters()
    {
        // Synthetic positions: long suffixes → the ∞-gram is right (p = 0.9), short ones → it is wrong (p = 0).
        var rng = new Random(5);
        int T = 4000;
        var ng = new InfinityProbability[T + 1];
        var lm = new double[T];
        ng[0] = new InfinityProbability(0, 10, 1);
        for (int t = 1; t <= T; t++)
        {
            bool longMatch = rng.NextDouble() < 0.4;
            ng[t] = longMatch ? new InfinityProbability(20, 5, rng.NextDouble() < 0.9 ? 5 : 0) : new InfinityProbability(2, 500, 0);
            lm[t - 1] = Math.Log(0.05 + 0.1 * rng.NextDouble());
        }
        double lambda = NGramInterpolation.FitLambda(lm, ng);
        double best = NGramInterpolation.Nats(lm, ng, _ => lambda);
        Assert.InRange(lambda, 0.01, 0.99);
        Assert.True(best <= NGramInterpolation.Nats(lm, ng, _ => lambda + 0.01) && best <= NGramInterpolation.Nats(lm, ng, _ => lambda - 0.01));
        Assert.True(best < NGramInterpolation.Nats(lm, ng, _ => 0));
        var gate = NGramInterpolation.FitGate(lm, ng);
        double gated = NGramInterpolation.Nats(lm, ng, q => gate.Lambda(q.SuffixLength, q.ContextCount));
        Assert.True(gated < best * 0.95, $"gate {gated:F1} nats vs fixed λ {best:F1}");
        Assert.True(gate.Lambda(20, 5) > 0.5 && gate.Lambda(2, 500) < 0.1);
        var report = NGramInterpolation.Report("fit", lm, ng, "eval", lm, ng, 10_000);
        Assert.Equal(-lm.Sum() / (Math.Log(2) * 10_000), report.LmBitsPerByte, 1e-12);
        Assert.Equal(T, report.SuffixLengths.Sum(b => b.Positions));
    }

    [Fact]
    public void StoreFlagsTheSameItemsAsTheHashIndex()
    {
        var docs = Enumerable.Range(0, 10).Select(d => TinyModels.Tokens(30 + d * 5, 70 + (ulong)d, alphabet: 4)).ToArray();
        using var store = Store(docs, 4);
        var hashes = NGramIndex.Build(docs, 5);
        var storeIndex = new StoreOverlapIndex(store, 5);
        var stream = docs.SelectMany(d => d).ToArray();
        int hits = 0;
        for (int q = 0; q < 200; q++)
        {
            var probe = TinyModels.Tokens(3 + q % 10, 2000 + (ulong)q, alphabet: 4);
            // The hash index never lets an n-gram span two documents; the store (no BOS in this
            // stream) sees the concatenated stream cut into 37-token shards. Each against its own brute force.
            bool inDocs = false, inShards = false;
            foreach (var d in docs) for (int i = 0; i + 5 <= d.Length && !inDocs; i++) for (int j = 0; j + 5 <= probe.Length && !inDocs; j++) inDocs = d.AsSpan(i, 5).SequenceEqual(probe.AsSpan(j, 5));
            for (int s = 0; s < stream.Length && !inShards; s += 37)
            {
                var shard = stream.AsSpan(s, Math.Min(37, stream.Length - s));
                for (int i = 0; i + 5 <= shard.Length && !inShards; i++) for (int j = 0; j + 5 <= probe.Length && !inShards; j++) inShards = shard.Slice(i, 5).SequenceEqual(probe.AsSpan(j, 5));
            }
            Assert.Equal(inDocs, hashes.Overlaps(probe));
            Assert.Equal(inShards, storeIndex.Overlaps(probe));
            if (inDocs) hits++;
        }
        Assert.True(hits > 0);
    }
}
