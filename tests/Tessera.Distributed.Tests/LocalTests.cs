using Tessera.Data;
using Tessera.Distributed.Worker;
using Tessera.Model;
using Tessera.Tensors;
using Tessera.Training;

namespace Tessera.Distributed.Tests;

/// <summary>The pieces that need no MPI: the backward hook, the bucket layout, the single-process world.</summary>
public class LocalTests
{
    [Fact]
    public void LeafGradientReadyFiresOncePerParameterWithItsFinalGradient()
    {
        using var model = new Transformer(DistRun.Moe, seed: 3);
        var rng = new Rng(4);
        var ids = new int[2 * 16]; var tgt = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++) { ids[i] = rng.NextInt(64); tgt[i] = rng.NextInt(64); }
        var seen = new Dictionary<Tensor, float[]>(ReferenceEqualityComparer.Instance);
        var order = new List<string>();
        using (var g = new Graph())
        {
            g.LeafGradientReady = t => { Assert.True(seen.TryAdd(t, t.Grad!.ToArray()), $"{t.Name} announced twice"); order.Add(t.Name); };
            g.Backward(model.Forward(g, ids, 2, 16, tgt).Loss!);
        }
        foreach (var p in model.Parameters.All)
        {
            Assert.True(seen.TryGetValue(p, out var atCall), $"{p.Name} was never announced");
            Assert.True(atCall.AsSpan().SequenceEqual(p.Grad!.ToArray()), $"{p.Name} changed after it was announced");
        }
        Assert.Equal(model.Parameters.Count, seen.Count);
        // Backward finishes the head first and the embedding last, so reverse registration order is the bucket order.
        Assert.Equal("lm_head.weight", order[0]);
        Assert.Equal("model.embed_tokens.weight", order[^1]);
    }

    [Fact]
    public void BucketsFollowReverseParameterOrderWithASmallerFirstBucket()
    {
        using var model = new Transformer(DistRun.Moe, seed: 3);
        var all = model.Parameters.All;
        long first = 8 << 10, cap = 32 << 10;
        var r = new GradientReducer(new LocalCommunicator(), all, cap, first);
        Assert.True(r.BucketCount > 2);
        long total = 0;
        for (int b = 0; b < r.BucketCount; b++)
        {
            long bytes = 4L * r.BucketLength(b);
            total += r.BucketLength(b);
            Assert.True(bytes <= (b == 0 ? first : cap) || r.BucketLength(b) == MaxSingle(all), $"bucket {b} holds {bytes} bytes");
        }
        Assert.Equal(model.Parameters.ElementCount, total);
        // The first bucket starts at the last parameter.
        Assert.True(4L * all[^1].Length <= Math.Max(first, 4L * all[^1].Length));
    }

    static long MaxSingle(IReadOnlyList<Tensor> all) => all.Max(t => (long)t.Length);

    [Fact]
    public void SingleProcessWorldCopies()
    {
        using var c = new LocalCommunicator();
        var x = new[] { 1f, 2f, 3f }; var y = new float[3];
        c.Allreduce<float>(x, y, ReduceOp.Average);
        Assert.Equal(x, y);
        Assert.True(c.AllreduceAsync(x, y, ReduceOp.Sum).Test());
        var e = Assert.Throws<CommunicatorException>(() => c.Broadcast<float>(x, 1));
        Assert.Contains("root 1", e.Message);
        Assert.Throws<CommunicatorException>(() => c.Allreduce<int>([1], new int[1], ReduceOp.Average));
    }

    [Fact]
    public void SlicedBatchAgreesWithThePlainBatchUpToSummationRounding()
    {
        // One step, same weights and data: the loss of B in 4 slices (mean of slice means) against
        // the plain mean over B·T tokens. Each is a sum of 128-token cross-entropies divided once;
        // reordering n float terms of magnitude ≤ |L| moves the result by at most n·ε·|L|.
        using var dir = new TempDir();
        DistRun.WriteShard(dir.File("s.bin"));
        using var shard = TokenShard.Open(dir.File("s.bin"));
        var o = DistRun.Options with { Steps = 1, GradAccumulation = 1 };
        using var plain = new Trainer(DistRun.Moe with { LoadBalanceCoef = 0, RouterZLossCoef = 0 }, o, new TrainData([shard]));
        using var sliced = new Trainer(DistRun.Moe with { LoadBalanceCoef = 0, RouterZLossCoef = 0 }, o, new TrainData([shard]), null, Parallelism.SingleProcess(4));
        double a = plain.TrainStep().Loss, b = sliced.TrainStep().Loss;
        double bound = o.BatchSize * o.SequenceLength * 1.2e-7 * Math.Abs(a);
        Assert.True(Math.Abs(a - b) <= bound, $"plain {a} vs sliced {b}, bound {bound}");
        Assert.NotEqual(0, a);
    }
}
