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
    public void LogitsProcessorWithABackoffGateIsTheGatedMixture()
    {
        const int V = 5;
        var docs = Enumerable.Range(0, 12).Select(d => TinyModels.Tokens(9 + d, 40 + (ulong)d, alphabet: V)).ToArray();
        using var store = Store(docs, V);
        var stream = docs.SelectMany(d => d).ToArray();
        var rng = new Random(3);
        var gate = new InterpolationGate(2, Enumerable.Range(0, 2 * InterpolationGate.FeatureCount).Select(_ => rng.NextDouble() * 2 - 1).ToArray());
        // Brute-force next-token counts after a context, inside 37-token shards.
        double[] Next(int[] ctx, out double total)
        {
            var n = new double[V];
            total = 0;
            for (int s = 0; s < stream.Length; s += 37)
            {
                int end = Math.Min(stream.Length, s + 37);
                for (int p = s; p + ctx.Length < end; p++)
                    if (stream.AsSpan(p, ctx.Length).SequenceEqual(ctx)) { n[stream[p + ctx.Length]]++; total++; }
            }
            return n;
        }
        for (int q = 0; q < 30; q++)
        {
            var history = TinyModels.Tokens(1 + q % 7, 700 + (ulong)q, alphabet: V);
            var logits = TinyModels.Tokens(V, 500 + (ulong)q, alphabet: 50).Select(x => x / 10f).ToArray();
            var got = (float[])logits.Clone();
            new NGramLogitsProcessor(store, 0, gate).Process(history, got);
            int k = history.Length;
            double total;
            double[] longest;
            while (true) { longest = Next(history[^k..], out total); if (total > 0 || k == 0) break; k--; }
            double backTotal = 0;
            var back = k > 0 ? Next(history[^(k - 1)..], out backTotal) : new double[V];
            int distinct = longest.Count(c => c > 0);
            var w = Weights(gate, new NGramEvidence(new InfinityProbability(k, (long)total, 0), default, distinct, (long)longest.Max()));
            double max = logits.Max(), z = logits.Sum(x => Math.Exp(x - max));
            for (int i = 0; i < V; i++)
            {
                double want = Math.Log(w[0] * Math.Exp(logits[i] - max) / z + w[1] * longest[i] / total + (backTotal > 0 ? w[2] * back[i] / backTotal : 0));
                Assert.Equal(want, got[i], 1e-5 * Math.Max(1, Math.Abs(want)));
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
    public void FittedLambdaIsAMinimumAndTheGatesBeatItWhereMatchLengthAndBackoffMatter()
    {
        // Synthetic positions: long, peaked suffixes → the ∞-gram is right (p = 1 when it is, 90% of the
        // time); short, spread ones → it is wrong (p = 0) but the one-shorter backoff gives the target 0.2.
        var rng = new Random(5);
        int T = 4000;
        var ev = new NGramEvidence[T + 1];
        var lm = new double[T];
        ev[0] = new NGramEvidence(new InfinityProbability(0, 10, 1), default, 3, 5);
        for (int t = 1; t <= T; t++)
        {
            bool longMatch = rng.NextDouble() < 0.4;
            ev[t] = longMatch
                ? new NGramEvidence(new InfinityProbability(20, 5, rng.NextDouble() < 0.9 ? 5 : 0), new InfinityProbability(19, 5, 0), 1, 5)
                : new NGramEvidence(new InfinityProbability(2, 500, 0), new InfinityProbability(1, 2000, 400), 50, 30);
            lm[t - 1] = Math.Log(0.05 + 0.1 * rng.NextDouble());
        }
        var ng = Array.ConvertAll(ev, e => e.Longest);
        double lambda = NGramInterpolation.FitLambda(lm, ng);
        double best = NGramInterpolation.Nats(lm, ng, _ => lambda);
        Assert.InRange(lambda, 0.01, 0.99);
        Assert.True(best <= NGramInterpolation.Nats(lm, ng, _ => lambda + 0.01) && best <= NGramInterpolation.Nats(lm, ng, _ => lambda - 0.01));
        Assert.True(best < NGramInterpolation.Nats(lm, ng, _ => 0));

        var gate = NGramInterpolation.FitGate(lm, ev, components: 1);
        double gated = NGramInterpolation.Nats(lm, ev, gate);
        Assert.True(gated < best * 0.95, $"gate {gated:F1} nats vs fixed λ {best:F1}");
        Assert.True(Weights(gate, ev.Skip(1).First(e => e.Longest.SuffixLength == 20))[1] > 0.5);
        Assert.True(Weights(gate, ev.Skip(1).First(e => e.Longest.SuffixLength == 2))[1] < 0.1);
        // Nats equals the mixture formula written out from the weights (a scalar twin of Mix/Probability).
        double twin = 0;
        for (int t = 1; t <= T; t++) { var w = Weights(gate, ev[t]); twin -= Math.Log(w[0] * Math.Exp(lm[t - 1]) + w[1] * ev[t].Longest.Probability); }
        Assert.Equal(twin, gated, 1e-9 * twin);

        var backoff = NGramInterpolation.FitGate(lm, ev, components: 2);
        double withBackoff = NGramInterpolation.Nats(lm, ev, backoff);
        Assert.True(withBackoff < gated * 0.95, $"backoff gate {withBackoff:F1} nats vs gate {gated:F1}");
        Assert.True(Weights(backoff, ev.Skip(1).First(e => e.Longest.SuffixLength == 2))[2] > 0.1);
        twin = 0;
        for (int t = 1; t <= T; t++)
        {
            var w = Weights(backoff, ev[t]);
            twin -= Math.Log(w[0] * Math.Exp(lm[t - 1]) + w[1] * ev[t].Longest.Probability + w[2] * ev[t].Backoff.Probability);
        }
        Assert.Equal(twin, withBackoff, 1e-9 * twin);

        // The gate never looks at the target: changing the target counts leaves the weights alone.
        var probe = ev[1];
        var moved = probe with { Longest = probe.Longest with { TargetCount = 0 }, Backoff = probe.Backoff with { TargetCount = 1 } };
        Assert.Equal(Weights(backoff, probe), Weights(backoff, moved));

        var report = NGramInterpolation.Report("fit", lm, ev, "eval", lm, ev, 10_000);
        Assert.Equal(-lm.Sum() / (Math.Log(2) * 10_000), report.LmBitsPerByte, 1e-12);
        Assert.Equal(T, report.SuffixLengths.Sum(b => b.Positions));
        Assert.True(report.BackoffGateBitsPerByte < report.GateBitsPerByte && report.GateBitsPerByte < report.FixedBitsPerByte);
    }

    /// <summary>
    /// The gate's mixture weights computed independently from its documented definition: features
    /// (suffix-length one-hot, log(1 + context)/10, single continuation, log(1 + distinct)/5, top
    /// share), logits w_c·f with the LM's pinned at 0, softmax.
    /// </summary>
    static double[] Weights(InterpolationGate gate, NGramEvidence e)
    {
        int[] edges = [0, 1, 2, 3, 4, 5, 8, 16, 32, 64];
        var f = new double[edges.Length + 4];
        int bucket = edges.Count(x => e.Longest.SuffixLength >= x) - 1;
        f[bucket] = 1;
        long c = e.Longest.ContextCount;
        f[10] = Math.Log(1 + c) / 10;
        f[11] = e.Distinct == 1 ? 1 : 0;
        f[12] = Math.Log(1 + e.Distinct) / 5;
        f[13] = c > 0 ? (double)e.TopCount / c : 0;
        var z = new double[gate.Components + 1];
        for (int k = 0; k < gate.Components; k++)
            for (int j = 0; j < f.Length; j++) z[k + 1] += gate.Weights[k * f.Length + j] * f[j];
        double max = z.Max(), sum = z.Sum(x => Math.Exp(x - max));
        return z.Select(x => Math.Exp(x - max) / sum).ToArray();
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
