namespace Tessera.Kernels.Tests;

/// <summary>
/// Error bounds derived from floating-point analysis rather than picked to pass.
/// u = 2⁻²⁴ is the fp32 unit roundoff. A length-n sum of products computed in fp32 in any
/// order satisfies |ŝ − s| ≤ γₙ·Σ|aᵢbᵢ| with γₙ = n·u / (1 − n·u) (Higham, Accuracy and
/// Stability of Numerical Algorithms, §3.1); the reference accumulates in double, so its own
/// error is negligible next to that.
/// </summary>
public static class Tolerance
{
    /// <summary>fp32 unit roundoff.</summary>
    public const double U = 1.0 / (1 << 24);

    /// <summary>γₙ for a reduction of length n (plus 2 for the final rounding and a fused op).</summary>
    public static double Gamma(int n)
    {
        double nu = (n + 2) * U;
        return nu / (1 - nu);
    }

    /// <summary>Bound for a dot product / GEMM entry: γₙ·Σ|aᵢbᵢ| plus a denormal floor.</summary>
    public static double Dot(int n, double absSum) => Gamma(n) * absSum + 1e-30;

    /// <summary>Bound for an elementwise result computed with a few roundings: k ulps of the magnitude.</summary>
    public static double Ulps(double magnitude, int k) => k * U * Math.Abs(magnitude) + 1e-30;

    /// <summary>Asserts |actual − expected| ≤ bound, naming the index and all three numbers on failure.</summary>
    public static void Within(double expected, double actual, double bound, string what, int index)
    {
        double err = Math.Abs(actual - expected);
        if (!(err <= bound) && !(double.IsNaN(expected) && double.IsNaN(actual)) && !(expected == actual))
            throw new Xunit.Sdk.XunitException($"{what}[{index}]: expected {expected:R}, got {actual:R}, |err| {err:E3} > bound {bound:E3}");
    }
}

/// <summary>Deterministic test data (xorshift), so failures reproduce.</summary>
public sealed class TestRandom(ulong seed)
{
    ulong state = seed * 0x9E3779B97F4A7C15UL + 1;

    public ulong NextULong()
    {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17;
        return state;
    }

    /// <summary>Uniform in [lo, hi).</summary>
    public float Uniform(float lo = -1f, float hi = 1f) => lo + (hi - lo) * (float)((NextULong() >> 40) / (double)(1UL << 24));

    public int Next(int maxExclusive) => (int)(NextULong() % (ulong)maxExclusive);

    public float[] Array(int n, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = Uniform(lo, hi);
        return a;
    }
}
