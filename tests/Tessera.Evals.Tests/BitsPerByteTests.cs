using Tessera.Data;
using Tessera.Tensors;

namespace Tessera.Evals.Tests;

public sealed class BitsPerByteTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "tessera-bpb-" + Guid.NewGuid().ToString("N"));

    public void Dispose() { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }

    TokenShard Shard(int tokens, ulong seed)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, $"s{tokens}-{seed}.bin");
        TokenShard.Write(path, [TinyModels.Tokens(tokens, seed)], TinyModels.Bytes.VocabSize);
        return TokenShard.Open(path);
    }

    [Theory]
    [InlineData(2, 32, null)]
    [InlineData(33, 32, null)]
    [InlineData(100, 32, 16)]
    [InlineData(100, 32, 1)]
    [InlineData(257, 16, 5)]
    [InlineData(257, 32, 32)]
    public void EveryTargetIsScoredExactlyOnce(int tokens, int window, int? stride)
    {
        // Under the uniform model every target costs ln V, so the total counts scored targets.
        using var m = TinyModels.Uniform(context: 32);
        using var shard = Shard(tokens, 5);
        var r = BitsPerByte.Evaluate(m, shard, "val", splitBytes: 1000, TinyModels.Bytes, window: window, stride: stride, batchTokens: 96);
        Assert.Equal(tokens - 1, r.TokensScored);
        Assert.True(r.Complete);
        double expected = (tokens - 1) * Math.Log(m.Config.VocabSize);
        Assert.InRange(r.Nats, expected * (1 - 1e-5), expected * (1 + 1e-5));
        Assert.Equal(1000, r.Bytes);
    }

    [Fact]
    public void CappedRunScoresThePrefixAndCountsItsBytes()
    {
        using var m = TinyModels.Uniform(context: 32);
        using var shard = Shard(300, 6);
        var r = BitsPerByte.Evaluate(m, shard, "val", splitBytes: 0, TinyModels.Bytes, maxTokens: 77, batchTokens: 64);
        Assert.Equal(77, r.TokensScored);
        Assert.False(r.Complete);
        Assert.Equal(77, r.Bytes);   // byte tokens: one byte each, no BOS in this shard
        Assert.InRange(r.Fraction, 77.0 / 299 - 1e-12, 77.0 / 299 + 1e-12);
    }

    [Theory]
    [InlineData(5000, 16, 1000)]
    [InlineData(3001, 8, 129)]
    [InlineData(20000, 32, 19998)]
    public void CapIsSpreadOverSegmentsEachTargetOnce(int tokens, int window, long cap)
    {
        using var m = TinyModels.Uniform(context: 32);
        using var shard = Shard(tokens, 9);
        var r = BitsPerByte.Evaluate(m, shard, "train", splitBytes: 0, TinyModels.Bytes, maxTokens: cap, window: window, batchTokens: 128);
        Assert.Equal(cap, r.TokensScored);
        Assert.Equal(cap, r.Bytes);   // one byte per scored target
        double expected = cap * Math.Log(m.Config.VocabSize);
        Assert.InRange(r.Nats, expected * (1 - 1e-5), expected * (1 + 1e-5));
    }

    [Theory]
    [InlineData(19999, 19998, 32)]
    [InlineData(19999, 1000, 32)]
    [InlineData(1_000_000, 262_144, 256)]
    [InlineData(100, 100, 8)]
    [InlineData(100, 1, 8)]
    public void SegmentsAreDisjointInRangeAndSumToTheCap(long targets, long goal, int window)
    {
        var segs = BitsPerByte.Segments(targets, goal, window);
        long sum = 0, end = 0;
        foreach (var (lo, len) in segs)
        {
            Assert.True(lo >= end, $"segment at {lo} overlaps the previous one ending at {end}");
            Assert.True(len >= 1);
            end = lo + len;
            sum += len;
        }
        Assert.True(end <= targets);
        Assert.Equal(goal, sum);
    }

    [Fact]
    public void StrideOneMatchesPerTargetForwardWithItsWindow()
    {
        // Stride 1: target t is predicted from the W tokens before it (or from the first window when t ≤ W).
        const int W = 12, N = 40;
        using var m = TinyModels.Random(context: 16, seed: 11);
        using var shard = Shard(N, 8);
        var r = BitsPerByte.Evaluate(m, shard, "val", 1, TinyModels.Bytes, window: W, stride: 1, batchTokens: 48);
        var tokens = new int[N];
        shard.Read(0, tokens);
        double nats = 0;
        int V = m.Config.VocabSize;
        for (int t = 1; t < N; t++)
        {
            int s = Math.Max(0, t - W);
            using var g = new Graph(recordGradients: false);
            var logits = m.Forward(g, tokens.AsSpan(s, W), 1, W).Logits.ToArray();
            int p = t - s - 1;
            double max = double.NegativeInfinity, z = 0;
            for (int v = 0; v < V; v++) max = Math.Max(max, logits[p * V + v]);
            for (int v = 0; v < V; v++) z += Math.Exp(logits[p * V + v] - max);
            nats -= logits[p * V + tokens[t]] - max - Math.Log(z);
        }
        // fp32 rounding of the forward in a different batch shape: γ over hidden·layers·8 per target, relative.
        double bound = (N - 1) * m.Config.HiddenDim * m.Config.Layers * 8 / (double)(1 << 24) * (1 + nats / (N - 1));
        Assert.InRange(r.Nats, nats - bound, nats + bound);
    }

    [Fact]
    public void FullSplitBytesFromMetaEqualDecodedText()
    {
        var docs = new List<CorpusDocument>();
        for (int i = 0; i < 60; i++) docs.Add(new CorpusDocument($"doc{i}", $"Document {i}: naïve café — {new string('x', i % 13)} end."));
        var prepared = ShardBuilder.Prepare(docs, TinyModels.Bytes, "bytes", new DocumentSplit(0.2, 0.1), Path.Combine(dir, "prep"));
        using var shard = TokenShard.Open(prepared.ShardPath(Split.Validation));
        Assert.Equal(prepared.Validation.Bytes, BitsPerByte.DecodedBytes(shard, 1, shard.TokenCount - 1, TinyModels.Bytes));
    }
}
