using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// The small kernels that other projects call once per step or per token, each against its scalar twin:
/// the double-accumulated dot product, the AdamW update, log-sum-exp over a vocabulary, and argmax.
/// </summary>
public class ReductionAndOptimizerKernelTests
{
    const double U = Tolerance.U;

    [Fact]
    public void DoubleDotMatchesItsTwinWithinTheReorderingBound()
    {
        var r = new TestRandom(60);
        for (int n = 0; n <= 256; n++)
        {
            var a = r.Array(n, -4f, 4f); var b = r.Array(n, -4f, 4f);
            double magnitude = 0;
            for (int i = 0; i < n; i++) magnitude += Math.Abs((double)a[i] * b[i]);
            double fast = DoubleSums.Dot(a, b), scalar = ScalarDoubleSums.Dot(a, b);
            // Products of floats are exact in double; only the n additions round, each by ≤ 2⁻⁵³·(partial sum ≤ Σ|aᵢbᵢ|), in either order.
            double bound = 2 * n * 1.12e-16 * magnitude;
            Assert.True(Math.Abs(fast - scalar) <= bound, $"n={n}: {fast} vs {scalar} (bound {bound})");
            Assert.Equal(fast, DoubleSums.Dot(a, b));   // deterministic
            Assert.Equal(DoubleSums.Dot(a, a), DoubleSums.SumOfSquares(a));
        }
        Assert.Throws<ArgumentException>(() => DoubleSums.Dot(new float[3], new float[4]));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AdamWUpdateEqualsItsTwinBitForBit(bool decay)
    {
        var r = new TestRandom(decay ? 71UL : 70UL);
        var k = new AdamWConstants
        {
            B1 = 0.9f, B2 = 0.95f, Eps = 1e-8f, StepSize = (float)(3e-3 / (1 - Math.Pow(0.9, 7))),
            Bc2Sqrt = (float)Math.Sqrt(1 - Math.Pow(0.95, 7)), Shrink = 1 - 3e-3f * 0.1f, OneMinusB1 = 0.1f, OneMinusB2 = 0.05f,
        };
        foreach (int n in new[] { 0, 1, 7, 8, 15, 16, 17, 31, 33, 100, 257 })
        {
            var p = r.Array(n); var g = r.Array(n, -3f, 3f); var m = r.Array(n, -0.1f, 0.1f); var v = r.Array(n, 0f, 0.01f);
            if (n > 2) { g[1] = 0; v[1] = 0; }   // a zero second moment: the ε path
            float[] p2 = (float[])p.Clone(), m2 = (float[])m.Clone(), v2 = (float[])v.Clone();
            AdamWUpdate.Update(p, g, m, v, decay, k);
            ScalarAdamWUpdate.Update(p2, g, m2, v2, decay, k);
            Assert.Equal(p2, p); Assert.Equal(m2, m); Assert.Equal(v2, v);
        }
        Assert.Throws<ArgumentException>(() => AdamWUpdate.Update(new float[4], new float[3], new float[4], new float[4], false, k));
    }

    [Fact]
    public void LogSumExpIsWithinItsDerivedBoundOfTheDoubleTwin()
    {
        var r = new TestRandom(80);
        for (int n = 1; n <= 300; n += 7)
        {
            var logits = r.Array(n, -20f, 20f);
            float got = Softmax.LogSumExp(logits);
            double exact = ScalarSoftmax.LogSumExp(logits);   // itself rounded to float once: + u·|lse|
            // Each exp is within 2u relative (VectorMath), the double sum adds ~n·2⁻⁵³, log turns a relative
            // error ε of the sum into an absolute ε, and the two final float roundings add u·|lse| each.
            double bound = 2 * U + n * Math.Pow(2, -52) + 2 * U * Math.Abs(exact) + U;
            Assert.True(Math.Abs(got - exact) <= bound, $"n={n}: {got} vs {exact} (bound {bound})");
        }
        Assert.Equal(float.PositiveInfinity, Softmax.LogSumExp([1f, float.PositiveInfinity, 2f]));
        Assert.True(float.IsNaN(Softmax.LogSumExp([1f, float.NaN])));
        Assert.Equal(ScalarSoftmax.LogSumExp([float.NegativeInfinity]), Softmax.LogSumExp([float.NegativeInfinity]));
        Assert.Throws<ArgumentException>(() => Softmax.LogSumExp([]));
    }

    [Fact]
    public void ArgMaxIsTheFirstLargestLikeItsTwin()
    {
        var r = new TestRandom(5);
        for (int n = 1; n <= 200; n++)
            for (int trial = 0; trial < 4; trial++)
            {
                var a = new float[n];
                for (int i = 0; i < n; i++) a[i] = r.Next(6) - 3;   // many ties
                if (trial == 1) a[r.Next(n)] = float.NaN;
                if (trial == 2) Array.Fill(a, float.NegativeInfinity);
                if (trial == 3) a[r.Next(n)] = -0f;
                Assert.Equal(ScalarTopK.ArgMax(a), TopK.ArgMax(a));
            }
        Assert.Throws<ArgumentException>(() => TopK.ArgMax([]));
    }
}
