using Tessera.Kernels;
using Tessera.Kernels.Reference;

namespace Tessera.Inference.Tests;

/// <summary>The decode step's adapters: thread invariance, log-sum-exp, argmax (the DecodeMatMul kernel: Tessera.Kernels.Tests; the chunked loop: WorkerPoolChunkTests).</summary>
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
        using (var single = new WorkerPool(1))
            single.For(1, 1, (_, _) => w.MatMul(x, n, b));   // nested: runs inline on one thread
        Assert.Equal(a, b);
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
