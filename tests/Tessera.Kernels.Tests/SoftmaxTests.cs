using FsCheck;
using FsCheck.Fluent;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Fast softmax vs <see cref="ScalarSoftmax"/>. Notation: n = cols, u = 2⁻²⁴, ε = the fast exp's
/// relative error (<see cref="VectorMath.MaxRelativeError"/>, checked in VectorMathTests); the
/// exp argument x − max is the same rounded fp32 value in both, so only ε and the fp32 sum differ.
/// </summary>
public class SoftmaxTests
{
    static readonly double Eps = VectorMath.MaxRelativeError;
    const double U = Tolerance.U;
    static readonly double Sub = Math.Pow(2, -148);   // subnormal exp results: absolute error ≤ 2⁻¹⁴⁹, doubled for the product

    static readonly int[] SweepRows = [1, 3, 7];
    static readonly (int Rows, int Cols)[] LargeShapes = [(1000, 37), (5, 4099), (64, 2053)];   // the last takes the parallel path

    /// <summary>Logit ranges: ordinary, wide, and all far from 0 so exp without max-subtraction over/underflows.</summary>
    static float[] Logits(TestRandom r, int n, int mode) => mode switch
    {
        0 => r.Array(n, -4f, 4f),
        1 => r.Array(n, -80f, 80f),
        2 => r.Array(n, 50f, 120f),
        _ => r.Array(n, -120f, -30f),
    };

    static IEnumerable<(int Rows, int Cols, int Mode)> Cases()
    {
        for (int cols = 0; cols <= 256; cols++)
            foreach (int rows in SweepRows) yield return (rows, cols, cols % 4);
        foreach (var (rows, cols) in LargeShapes)
            for (int mode = 0; mode < 4; mode++) yield return (rows, cols, mode);
    }

    [Fact]
    public void ForwardMatchesTwin()
    {
        var r = new TestRandom(1);
        foreach (var (rows, cols, mode) in Cases())
        {
            var x = Logits(r, rows * cols, mode);
            if (cols > 2) x[cols / 2] = float.NegativeInfinity;   // masked entry
            var expected = new float[x.Length]; var actual = new float[x.Length];
            ScalarSoftmax.Forward(x, expected, rows, cols);
            Softmax.Forward(x, actual, rows, cols);
            // ê = e(1+δ), |δ| ≤ ε; ŝ = Σê(1+γₙ); y = ê·fl(1/ŝ) with two roundings, twin one:
            // |Δy| ≤ (γₙ + 2ε + 3u)·y, plus subnormal exp terms.
            double rel = Tolerance.Gamma(cols) + 2 * Eps + 3 * U;
            for (int i = 0; i < x.Length; i++)
                Tolerance.Within(expected[i], actual[i], rel * Math.Abs(expected[i]) + Sub, $"softmax ({rows},{cols}) mode {mode}", i);
        }
    }

    [Fact]
    public void LogForwardMatchesTwin()
    {
        var r = new TestRandom(2);
        foreach (var (rows, cols, mode) in Cases())
        {
            var x = Logits(r, rows * cols, mode);
            var expected = new float[x.Length]; var actual = new float[x.Length];
            ScalarSoftmax.LogForward(x, expected, rows, cols);
            Softmax.LogForward(x, actual, rows, cols);
            for (int row = 0; row < rows; row++)
            {
                double lse = Lse(x.AsSpan(row * cols, cols));
                // log ŝ − log s ≤ γₙ + ε (relative error of the sum becomes absolute in the log);
                // lse is rounded to fp32 (u·|lse|), x − lse rounded (u·|y|), twin rounds y (u·|y|).
                double abs = Tolerance.Gamma(cols) + Eps + U * Math.Abs(lse) + cols * Sub;
                for (int i = row * cols; i < (row + 1) * cols; i++)
                    Tolerance.Within(expected[i], actual[i], abs + 2 * U * Math.Abs(expected[i]), $"log_softmax ({rows},{cols}) mode {mode}", i);
            }
        }
    }

    static double Lse(ReadOnlySpan<float> row)
    {
        double max = double.NegativeInfinity, s = 0;
        foreach (float v in row) max = Math.Max(max, v);
        foreach (float v in row) s += Math.Exp(v - max);
        return max + Math.Log(s);
    }

    [Fact]
    public void BackwardMatchesTwin()
    {
        var r = new TestRandom(3);
        foreach (var (rows, cols, mode) in Cases())
        {
            var y = new float[rows * cols];
            ScalarSoftmax.Forward(Logits(r, rows * cols, mode), y, rows, cols);
            var dy = r.Array(rows * cols, -2f, 2f);
            var expected = new float[y.Length]; var actual = new float[y.Length];
            ScalarSoftmax.Backward(y, dy, expected, rows, cols);
            Softmax.Backward(y, dy, actual, rows, cols);
            for (int row = 0; row < rows; row++)
            {
                int o = row * cols;
                double dot = 0, absDot = 0;
                for (int i = o; i < o + cols; i++) { dot += (double)dy[i] * y[i]; absDot += Math.Abs((double)dy[i] * y[i]); }
                // fp32 dot: γₙ·Σ|dy·y|; then (dy − dot) and ·y each round once, the twin once.
                for (int i = o; i < o + cols; i++)
                {
                    double bound = Math.Abs(y[i]) * (Tolerance.Gamma(cols) * absDot + U * Math.Abs(dy[i] - dot)) + 2 * U * Math.Abs(expected[i]) + 1e-44;
                    Tolerance.Within(expected[i], actual[i], bound, $"softmax backward ({rows},{cols})", i);
                }
            }
        }
    }

    [Fact]
    public void LogBackwardMatchesTwin()
    {
        var r = new TestRandom(4);
        foreach (var (rows, cols, mode) in Cases())
        {
            var y = new float[rows * cols];
            ScalarSoftmax.LogForward(Logits(r, rows * cols, mode), y, rows, cols);
            var dy = r.Array(rows * cols, -2f, 2f);
            var expected = new float[y.Length]; var actual = new float[y.Length];
            ScalarSoftmax.LogBackward(y, dy, expected, rows, cols);
            Softmax.LogBackward(y, dy, actual, rows, cols);
            for (int row = 0; row < rows; row++)
            {
                int o = row * cols;
                double sum = 0, abs = 0;
                for (int i = o; i < o + cols; i++) { sum += dy[i]; abs += Math.Abs(dy[i]); }
                // Σdy in fp32: γₙ·Σ|dy|; exp(y) relative ε; one fused multiply-add rounding, twin one.
                for (int i = o; i < o + cols; i++)
                {
                    double p = Math.Exp(y[i]);
                    double bound = p * (Eps * Math.Abs(sum) + Tolerance.Gamma(cols) * abs) + Sub * (1 + Math.Abs(sum)) + 2 * U * Math.Abs(expected[i]);
                    Tolerance.Within(expected[i], actual[i], bound, $"log_softmax backward ({rows},{cols})", i);
                }
            }
        }
    }

    [Fact]
    public void ParallelPathEqualsRowByRowBitwise()
    {
        // 96×1031 ≥ 64K elements runs over the pool; one row at a time runs inline. Rows are
        // computed by the same code either way, so the results must be bitwise equal.
        const int rows = 96, cols = 1031;
        var x = Logits(new TestRandom(5), rows * cols, 1);
        var whole = new float[x.Length]; var single = new float[x.Length];
        Softmax.Forward(x, whole, rows, cols);
        for (int row = 0; row < rows; row++) Softmax.Forward(x.AsSpan(row * cols, cols), single.AsSpan(row * cols, cols), 1, cols);
        Assert.Equal(single, whole);
        Softmax.LogForward(x, whole, rows, cols);
        for (int row = 0; row < rows; row++) Softmax.LogForward(x.AsSpan(row * cols, cols), single.AsSpan(row * cols, cols), 1, cols);
        Assert.Equal(single, whole);
    }

    [Fact]
    public void RowsSumToOneProperty()
    {
        var gen = Gen.Choose(1, 300).SelectMany(n => Gen.Choose(-90_000, 90_000).Select(v => v / 1000f).ArrayOf(n));
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), Prop.ForAll(gen.ToArbitrary(), (float[] x) =>
        {
            var y = new float[x.Length];
            Softmax.Forward(x, y, 1, x.Length);
            double sum = 0;
            foreach (float v in y) sum += v;
            // Each y has relative error ≤ γₙ + 2ε + 3u against the exact softmax, which sums to 1.
            double bound = Tolerance.Gamma(x.Length) + 2 * Eps + 3 * U + x.Length * Sub;
            return Math.Abs(sum - 1) <= bound && Array.TrueForAll(y, v => v >= 0 && v <= 1);
        }));
    }

    [Fact]
    public void TooShortSpansThrowNamingTheShape()
    {
        var e = Assert.Throws<ArgumentException>(() => Softmax.Forward(new float[11], new float[12], 3, 4));
        Assert.Contains("Softmax.Forward", e.Message);
        Assert.Contains("(3, 4)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Softmax.Backward(new float[12], new float[5], new float[12], 3, 4));
        Assert.Contains("dy", e.Message);
        Assert.Throws<ArgumentException>(() => Softmax.LogForward(new float[12], new float[11], 3, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => Softmax.LogBackward(new float[12], new float[12], new float[12], -1, 4));
    }
}
