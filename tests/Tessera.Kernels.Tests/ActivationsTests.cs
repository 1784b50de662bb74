using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Fast activations vs <see cref="ScalarActivations"/>. u = 2⁻²⁴, ε = fast exp relative error.
/// The fast kernels go through σ(z) = (1 or e)/(1 + e), e = exp(−|z|): σ and 1 − σ each carry
/// ≤ 2ε + 3u relative error (σ alone, by division: ε + 2u). For GELU the fp32 argument
/// z = x(K1 + K2x²) carries ≤ 6u·|z| (rounded constants, x², fma, ×x), which moves σ by a factor
/// (1 − σ)|δz| — the condition number of σ. Terms named T are the sums of magnitudes that meet in
/// a sum. Two absolute floors: a subnormal exp is off by ≤ 2⁻¹⁴⁹ (scaled by the factor it meets),
/// and the twin's double formulas cancel (1 + tanh, 1 − tanh², 1 − σ) with error ~2⁻⁵³ of O(1)
/// quantities, which matters only where the fp32 result is itself tiny.
/// </summary>
public class ActivationsTests
{
    static readonly double Eps = VectorMath.MaxRelativeError;
    const double U = Tolerance.U;
    static readonly double Sub = Math.Pow(2, -148);
    const double D = 1.0 / (1L << 52);   // twin (double) cancellation floor
    const double C = 0.7978845608028654;

    static double Sigma(double z) => z >= 0 ? 1 / (1 + Math.Exp(-z)) : Math.Exp(z) / (1 + Math.Exp(z));

    static float[] Inputs(TestRandom r, int n, int salt)
    {
        var x = r.Array(n, -10f, 10f);
        float[] specials = [0f, -0f, 40f, -40f, 95f, -95f, 1e4f, -1e4f, -1.2785f, 1e-30f];
        for (int i = salt % 7; i < n; i += 11) x[i] = specials[(i + salt) % specials.Length];
        return x;
    }

    static IEnumerable<int> Lengths()
    {
        for (int n = 0; n <= 256; n++) yield return n;
        yield return 4099;
        yield return 70001;   // ≥ 64K elements: chunked over the pool, chunk tails included
    }

    [Fact]
    public void SiluAndSwiGluMatchTwin()
    {
        var r = new TestRandom(41);
        foreach (int n in Lengths())
        {
            var x = Inputs(r, n, n); var up = r.Array(n, -3f, 3f);
            var e = new float[n]; var a = new float[n];
            ScalarActivations.Silu(x, e); Activations.Silu(x, a);
            // σ (ε + 2u), ×x (u), twin (u).
            for (int i = 0; i < n; i++) Tolerance.Within(e[i], a[i], (Eps + 4 * U) * Math.Abs(e[i]) + Math.Abs(x[i]) * Sub, $"silu n={n}", i);
            ScalarActivations.SwiGlu(x, up, e); Activations.SwiGlu(x, up, a);
            // one more product.
            for (int i = 0; i < n; i++) Tolerance.Within(e[i], a[i], (Eps + 5 * U) * Math.Abs(e[i]) + Math.Abs(x[i] * up[i]) * Sub, $"swiglu n={n}", i);
        }
    }

    [Fact]
    public void SiluBackwardAndSwiGluBackwardMatchTwin()
    {
        var r = new TestRandom(42);
        foreach (int n in Lengths())
        {
            var x = Inputs(r, n, n + 3); var up = r.Array(n, -3f, 3f); var dy = r.Array(n, -2f, 2f);
            var e = new float[n]; var a = new float[n];
            ScalarActivations.SiluBackward(x, dy, e); Activations.SiluBackward(x, dy, a);
            for (int i = 0; i < n; i++)
            {
                double s = Sigma(x[i]), oms = Sigma(-x[i]);
                // 1 + x·(1−σ) (one fma) then ×σ, ×dy: (4ε + 10u)·T with T = |dy|·σ·(1 + |x|(1−σ)).
                double t = Math.Abs(dy[i]) * s * (1 + Math.Abs(x[i]) * oms);
                double floor = Math.Abs(dy[i]) * (1 + Math.Abs(x[i])) * (Sub + D);
                Tolerance.Within(e[i], a[i], (4 * Eps + 10 * U) * t + floor, $"silu backward n={n}", i);
            }
            var eUp = new float[n]; var aUp = new float[n];
            ScalarActivations.SwiGluBackward(x, up, dy, e, eUp); Activations.SwiGluBackward(x, up, dy, a, aUp);
            for (int i = 0; i < n; i++)
            {
                double s = Sigma(x[i]), oms = Sigma(-x[i]);
                double t = Math.Abs(dy[i] * up[i]) * s * (1 + Math.Abs(x[i]) * oms);
                double floor = Math.Abs(dy[i] * up[i]) * (1 + Math.Abs(x[i])) * (Sub + D);
                Tolerance.Within(e[i], a[i], (4 * Eps + 11 * U) * t + floor, $"swiglu dGate n={n}", i);
                // dUp = dy·(g·σ): σ (2ε + 3u) and two products, twin one rounding.
                Tolerance.Within(eUp[i], aUp[i], (2 * Eps + 6 * U) * Math.Abs(eUp[i]) + Math.Abs(dy[i] * x[i]) * Sub, $"swiglu dUp n={n}", i);
            }
        }
    }

    [Fact]
    public void GeluMatchesTwin()
    {
        var r = new TestRandom(43);
        foreach (int n in Lengths())
        {
            var x = Inputs(r, n, n + 5);
            var e = new float[n]; var a = new float[n];
            ScalarActivations.Gelu(x, e); Activations.Gelu(x, a);
            for (int i = 0; i < n; i++)
            {
                double v = x[i], z = 2 * C * (v + 0.044715 * v * v * v);
                // σ(z) by division (ε + 2u), its argument (1 − σ)·6u|z|, ×x (u), twin (u);
                // twin floor: ½|x|·(1 + tanh) cancels in double.
                double rel = Eps + 4 * U + 6 * U * Math.Abs(z) * Sigma(-z);
                Tolerance.Within(e[i], a[i], rel * Math.Abs(e[i]) + Math.Abs(v) * (Sub + D), $"gelu n={n}", i);
            }
        }
    }

    [Fact]
    public void GeluBackwardMatchesTwin()
    {
        var r = new TestRandom(44);
        foreach (int n in Lengths())
        {
            var x = Inputs(r, n, n + 7); var dy = r.Array(n, -2f, 2f);
            var e = new float[n]; var a = new float[n];
            ScalarActivations.GeluBackward(x, dy, e); Activations.GeluBackward(x, dy, a);
            for (int i = 0; i < n; i++)
            {
                double v = x[i], z = 2 * C * (v + 0.044715 * v * v * v), dz = 2 * C * (1 + 3 * 0.044715 * v * v);
                double s = Sigma(z), oms = Sigma(-z);
                // σ, 1−σ: 2ε + 3u + 6u|z| each (argument error times the condition number ≤ |z|);
                // z′ = K1 + 3K2x² 4u; then x·(1−σ), fma, ×σ, ×dy and the twin: (4ε + 15u + 12u|z|)·T,
                // T = |dy|·σ·(1 + |x|(1−σ)z′).
                double t = Math.Abs(dy[i]) * s * (1 + Math.Abs(v) * oms * dz);
                double floor = Math.Abs(dy[i]) * (1 + Math.Abs(v) * dz) * (Sub + D);
                Tolerance.Within(e[i], a[i], (4 * Eps + 15 * U + 12 * U * Math.Abs(z)) * t + floor, $"gelu backward n={n}", i);
            }
        }
    }

    [Fact]
    public void GeGluMatchesTwin()
    {
        var r = new TestRandom(46);
        foreach (int n in Lengths())
        {
            var x = Inputs(r, n, n + 9); var up = r.Array(n, -3f, 3f);
            var e = new float[n]; var a = new float[n];
            ScalarActivations.GeGlu(x, up, e); Activations.GeGlu(x, up, a);
            for (int i = 0; i < n; i++)
            {
                double v = x[i], z = 2 * C * (v + 0.044715 * v * v * v);
                // The GELU bound (see GeluMatchesTwin) plus one more product by up.
                double rel = Eps + 5 * U + 6 * U * Math.Abs(z) * Sigma(-z);
                Tolerance.Within(e[i], a[i], rel * Math.Abs(e[i]) + Math.Abs(v * up[i]) * (Sub + D), $"geglu n={n}", i);
            }
        }
    }

    [Fact]
    public void GeGluBackwardMatchesTwin()
    {
        var r = new TestRandom(47);
        foreach (int n in Lengths())
        {
            var x = Inputs(r, n, n + 11); var up = r.Array(n, -3f, 3f); var dy = r.Array(n, -2f, 2f);
            var e = new float[n]; var a = new float[n]; var eUp = new float[n]; var aUp = new float[n];
            ScalarActivations.GeGluBackward(x, up, dy, e, eUp); Activations.GeGluBackward(x, up, dy, a, aUp);
            for (int i = 0; i < n; i++)
            {
                double v = x[i], z = 2 * C * (v + 0.044715 * v * v * v), dz = 2 * C * (1 + 3 * 0.044715 * v * v);
                double s = Sigma(z), oms = Sigma(-z);
                // dGate: the GELU-backward bound (see GeluBackwardMatchesTwin) with dy·up in place of
                // dy, one rounding more.
                double t = Math.Abs(dy[i] * up[i]) * s * (1 + Math.Abs(v) * oms * dz);
                double floor = Math.Abs(dy[i] * up[i]) * (1 + Math.Abs(v) * dz) * (Sub + D);
                Tolerance.Within(e[i], a[i], (4 * Eps + 16 * U + 12 * U * Math.Abs(z)) * t + floor, $"geglu dGate n={n}", i);
                // dUp = dy·(g·σ(z)): σ (2ε + 3u + 6u|z|(1 − σ)), two products, the twin's rounding;
                // the twin's ½v(1 + tanh) cancels in double.
                double rel = 2 * Eps + 6 * U + 6 * U * Math.Abs(z) * oms;
                Tolerance.Within(eUp[i], aUp[i], rel * Math.Abs(eUp[i]) + Math.Abs(dy[i] * v) * (Sub + D), $"geglu dUp n={n}", i);
            }
        }
    }

    [Theory]
    [InlineData(50f)]
    [InlineData(30f)]
    [InlineData(1f)]
    public void SoftCapMatchesTwin(float cap)
    {
        var r = new TestRandom(48);
        foreach (int n in Lengths())
        {
            var x = Inputs(r, n, n + 13);
            for (int i = 0; i < n; i++) x[i] *= cap / 4;   // spread over the linear, bending and saturated parts
            var e = new float[n]; var a = new float[n];
            ScalarActivations.SoftCap(x, e, cap); Activations.SoftCap(x, a, cap);
            for (int i = 0; i < n; i++)
            {
                // w = x/cap (u) moves tanh by (1 − t²)|w|u; exp (ε) moves (1 − e)/(1 + e) by (1 − t²)ε/2;
                // 1 − e, 1 + e, the division and ×cap round once each and the twin once more: 5u|t|.
                double w = (double)x[i] / cap, t = Math.Tanh(w);
                double bound = cap * ((1 - t * t) * (Math.Abs(w) * U + Eps / 2) + 5 * U * Math.Abs(t) + Sub);
                Tolerance.Within(e[i], a[i], bound, $"softcap {cap} n={n}", i);
            }
        }
    }

    [Theory]
    [InlineData(50f)]
    [InlineData(1f)]
    public void SoftCapBackwardMatchesTwin(float cap)
    {
        var r = new TestRandom(49);
        foreach (int n in Lengths())
        {
            var x = Inputs(r, n, n + 15);
            for (int i = 0; i < n; i++) x[i] *= cap / 4;
            var y = new float[n]; var dy = r.Array(n, -2f, 2f);
            ScalarActivations.SoftCap(x, y, cap);
            var e = new float[n]; var a = new float[n];
            ScalarActivations.SoftCapBackward(y, dy, e, cap); Activations.SoftCapBackward(y, dy, a, cap);
            for (int i = 0; i < n; i++)
            {
                // t = y/cap (u) moves 1 − t² by 2u·t²; the fma rounds u·(1 − t²); ×dy and the twin: 2u|dx|.
                double t = (double)y[i] / cap;
                double bound = Math.Abs(dy[i]) * (2 * U * t * t + U * Math.Abs(1 - t * t)) + 2 * U * Math.Abs(e[i]) + 1e-44;
                Tolerance.Within(e[i], a[i], bound, $"softcap backward {cap} n={n}", i);
            }
        }
    }

    [Fact]
    public void SoftCapRejectsANonPositiveCap()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Activations.SoftCap(new float[4], new float[4], 0f));
        Assert.Contains("Activations.SoftCap", e.Message);
    }

    [Fact]
    public void OutputsMayAliasInputs()
    {
        var x = new TestRandom(45).Array(1000, -5f, 5f);
        var expected = new float[x.Length];
        Activations.Gelu(x, expected);
        Activations.Gelu(x, x);
        Assert.Equal(expected, x);
    }

    [Fact]
    public void TooShortSpansThrowNamingTheOp()
    {
        var e = Assert.Throws<ArgumentException>(() => Activations.Silu(new float[10], new float[9]));
        Assert.Contains("Activations.Silu", e.Message);
        e = Assert.Throws<ArgumentException>(() => Activations.GeluBackward(new float[10], new float[9], new float[10]));
        Assert.Contains("dy", e.Message);
        e = Assert.Throws<ArgumentException>(() => Activations.SwiGluBackward(new float[10], new float[10], new float[10], new float[10], new float[3]));
        Assert.Contains("dUp", e.Message);
        Assert.Throws<ArgumentException>(() => Activations.SwiGlu(new float[10], new float[2], new float[10]));
    }
}
