using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>The vectorised double-accumulated dot product against the plain scalar loop, every length 0..256.</summary>
public class DoubleSumsTests
{
    [Fact]
    public void DotMatchesTheScalarDoubleLoopWithinTheReorderingBound()
    {
        var rng = new Rng(60);
        for (int n = 0; n <= 256; n++)
        {
            var a = new float[n]; var b = new float[n];
            rng.FillUniform(a, -4f, 4f); rng.FillUniform(b, -4f, 4f);
            double scalar = 0, magnitude = 0;
            for (int i = 0; i < n; i++) { scalar += (double)a[i] * b[i]; magnitude += Math.Abs((double)a[i] * b[i]); }
            double fast = DoubleSums.Dot(a, b);
            // Products of floats are exact in double; only the n additions round, each by ≤ ε·(partial sum ≤ Σ|aᵢbᵢ|), in either order.
            double bound = 2 * n * (double.Epsilon + 1.12e-16 * magnitude);
            Assert.True(Math.Abs(fast - scalar) <= bound, $"n={n}: {fast} vs {scalar} (bound {bound})");
            Assert.Equal(fast, DoubleSums.Dot(a, b)); // deterministic
            Assert.True(DoubleSums.SumOfSquares(a) >= 0);
        }
        Assert.Throws<ArgumentException>(() => DoubleSums.Dot(new float[3], new float[4]));
    }

    [Fact]
    public void SizeClassesCoverTheLengthWithAtMostAQuarterSlack()
    {
        int previous = 0;
        for (int n = 0; n <= 1 << 20; n += n < 4096 ? 1 : 997)
        {
            int c = BufferPool.SizeClass(n);
            Assert.True(c >= Math.Max(n, 1), $"class {c} < length {n}");
            Assert.True(c <= Math.Max(16, n + 15) || c <= n * 1.25 + 1, $"class {c} too big for length {n}");
            Assert.True(c >= previous, "classes must not shrink as lengths grow");
            previous = c;
        }
    }
}
