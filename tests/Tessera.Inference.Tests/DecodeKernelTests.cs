using Tessera.Kernels.Reference;

namespace Tessera.Inference.Tests;

/// <summary>The decode step's adapters and loops: thread invariance, the chunked loop, log-sum-exp, argmax (the DecodeMatMul kernel itself: Tessera.Kernels.Tests).</summary>
public unsafe class DecodeKernelTests
{
    const double U = 1.0 / (1 << 24);

    static float[] Random(int n, int seed)
    {
        var r = new System.Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    [Theory]
    [InlineData("row-major", 6)]
    [InlineData("panels", 6)]
    [InlineData("panels", 32)]   // the prefetching regime (one contiguous range per thread)
    public void DecodeProductIsTheSameForOneAndTwoThreads(string layout, int n)
    {
        int rows = 1000, k = 512;
        var values = Random(rows * k, 1);
        IWeightMatrix w = layout == "panels" ? PanelWeights.Pack(values, rows, k) : DenseWeights.Own(values, rows, k);
        var x = Random(n * k, 2);
        var a = new float[n * rows];
        var b = new float[n * rows];
        w.MatMul(x, n, a);
        using (var single = new DecodeWorkers(1))
            single.For(1, 1, (_, _) => w.MatMul(x, n, b));   // nested: runs inline on one thread
        Assert.Equal(a, b);
    }

    [Fact]
    public void BackToBackCallsWithChangingChunkCountsNeverMixUp()
    {
        // Regression: a helper that saw the previous call's exhausted state could read the next
        // call's (larger) chunk count before it was published and claim a chunk on the stale state,
        // running the next call's body early and counting it done for the wrong call.
        using var workers = new DecodeWorkers(2);
        var hits = new int[64];
        int call = 0;
        for (int round = 0; round < 200_000; round++)
        {
            int items = round % 2 == 0 ? 4 : 64, chunks = round % 2 == 0 ? 2 : 16;
            int mine = ++call;
            Array.Clear(hits);
            workers.For(items, chunks, (s, e) =>
            {
                if (Volatile.Read(ref call) != mine) throw new InvalidOperationException($"a chunk of call {mine} ran during call {call}");
                for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]);
            });
            for (int i = 0; i < 64; i++)
                if (hits[i] != (i < items ? 1 : 0)) Assert.Fail($"round {round}: item {i} ran {hits[i]} times ({items} items in {chunks} chunks)");
        }
    }

    [Fact]
    public void ChunkedLoopVisitsEveryItemOnceAndRethrows()
    {
        using var workers = new DecodeWorkers(2);
        for (int round = 0; round < 200; round++)
        {
            int items = 1 + round % 37, chunks = 1 + round % 11;
            var hits = new int[items];
            workers.For(items, chunks, (s, e) => { for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]); });
            Assert.All(hits, h => Assert.Equal(1, h));
        }
        var error = Assert.Throws<AggregateException>(() => workers.For(10, 5, (s, _) => { if (s >= 4) throw new InvalidOperationException("boom"); }));
        Assert.IsType<InvalidOperationException>(error.InnerException);
        workers.For(3, 3, (_, _) => { });   // still usable after a failure
    }

    [Fact]
    public void FloatLogSumExpIsWithinItsDerivedBoundOfDouble()
    {
        for (int n = 1; n <= 300; n += 7)
        {
            var logits = Random(n, n);
            for (int i = 0; i < n; i++) logits[i] *= 20;
            double max = logits.Max(), sum = 0;
            foreach (float l in logits) sum += Math.Exp(l - max);
            double exact = max + Math.Log(sum);
            float got = ReferenceEngine.LogSumExp(logits);
            // Each exp is within 2u relative (VectorMath), the double sum adds ~n·2⁻⁵³, log turns a relative
            // error ε of the sum into an absolute ε, and the final float rounding adds u·|lse|.
            double bound = 2 * U + n * Math.Pow(2, -52) + U * Math.Abs(exact) + U;
            Assert.True(Math.Abs(got - exact) <= bound, $"n={n}: {got} vs {exact} (bound {bound})");
        }
    }

    [Fact]
    public void ArgMaxIsTheFirstLargestLikeTheScalarRule()
    {
        var r = new System.Random(5);
        for (int n = 1; n <= 200; n++)
            for (int trial = 0; trial < 4; trial++)
            {
                var a = new float[n];
                for (int i = 0; i < n; i++) a[i] = r.Next(6) - 3;   // many ties
                if (trial == 1) a[r.Next(n)] = float.NaN;
                if (trial == 2) Array.Fill(a, float.NegativeInfinity);
                if (trial == 3) a[r.Next(n)] = -0f;
                int want = 0;
                for (int i = 1; i < n; i++) if (a[i] > a[want]) want = i;
                Assert.Equal(want, Sampler.ArgMax(a));
            }
    }
}
