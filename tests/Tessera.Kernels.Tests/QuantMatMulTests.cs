using System.Buffers.Binary;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Quantized matmuls: every SIMD width (AVX-512BW, AVX2, scalar fallback) against the scalar twin
/// over all block counts 0..8 (cols 0..256), odd row counts and several activation rows, and the
/// whole product against fp32 math on the dequantized weights. Integer dot products are exact, so
/// fast and twin differ only in fp32 summation order: the bound is γ over the magnitudes actually
/// summed (for Q4_0 and ternary that includes the unsigned codes and the block-sum correction).
/// </summary>
public class QuantMatMulTests
{
    static readonly int[] Widths = [512, 256, 0];
    static readonly int[] RowCounts = [1, 3, 7, 17];
    static readonly int[] Ns = [1, 2, 5];

    [Fact]
    public void ActivationQuantizer_MatchesTwinBitForBit()
    {
        var rng = new TestRandom(21);
        for (int n = 0; n <= 256; n += 32)
        {
            var x = QuantFormatTests.Data(rng, n);
            if (n >= 64) x[40] = 0.5f * x[41];   // exercise ties of the scaled values now and then
            var (q1, s1, m1) = (new sbyte[n], new float[n / 32], new int[n / 32]);
            var (q2, s2, m2) = (new sbyte[n], new float[n / 32], new int[n / 32]);
            QuantActivations.Quantize(x, q1, s1, m1);
            ScalarQuant.QuantizeActivations(x, q2, s2, m2);
            Assert.Equal(q2, q1);
            Assert.Equal(s2, s1);
            Assert.Equal(m2, m1);
        }
    }

    [Fact]
    public void Q8_0_FastMatchesTwin() => Sweep(31, (w, rows, cols) =>
    {
        var m = Q8_0Matrix.FromFloat(w, rows, cols);
        return ((object)m, (x, n, y) => ScalarQuant.MatMulQ8_0(m.Blocks, rows, cols, x, n, y),
            (x, n) => Magnitudes(m.Blocks, 34, rows, cols, x, n, (blk, j) => Math.Abs((sbyte)blk[2 + j]), 0));
    });

    [Fact]
    public void Q4_0_FastMatchesTwin() => Sweep(32, (w, rows, cols) =>
    {
        var m = Q4_0Matrix.FromFloat(w, rows, cols);
        return ((object)m, (x, n, y) => ScalarQuant.MatMulQ4_0(m.Blocks, rows, cols, x, n, y),
            (x, n) => Magnitudes(m.Blocks, 18, rows, cols, x, n, (blk, j) => j < 16 ? blk[2 + j] & 15 : blk[2 + j - 16] >> 4, 8));
    });

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(128)]
    public void Ternary_FastMatchesTwin(int group) => Sweep(33 + (ulong)group, (w, rows, cols) =>
    {
        var m = TernaryMatrix.FromFloat(w, rows, cols, group);
        var scales = Array.ConvertAll(m.ScaleBits.ToArray(), QuantFormat.FromHalf);
        return ((object)m, (x, n, y) => ScalarQuant.MatMulTernary(m.Packed, scales, group, rows, cols, x, n, y),
            (x, n) => TernaryMagnitudes(m, scales, x, n));
    });

    [Fact]
    public void Ternary_PerTensor_HasOneScale_AndMatchesTwin()
    {
        var rng = new TestRandom(40);
        var w = rng.Array(7 * 96);
        var m = TernaryMatrix.FromFloatPerTensor(w, 7, 96);
        Assert.Equal(1, m.ScaleBits.Length);
        var scales = Array.ConvertAll(m.ScaleBits.ToArray(), QuantFormat.FromHalf);
        var x = rng.Array(3 * 96);
        var (fast, twin) = (new float[21], new float[21]);
        m.MatMul(x, 3, fast);
        ScalarQuant.MatMulTernary(m.Packed, scales, m.GroupSize, 7, 96, x, 3, twin);
        var bounds = TernaryMagnitudes(m, scales, x, 3);
        for (int i = 0; i < 21; i++) Tolerance.Within(twin[i], fast[i], Tolerance.Dot(96 + 4, bounds[i]), "per-tensor", i);
    }

    [Fact]
    public void LargeMatrix_RunsRowParallel_AndMatchesTwin()
    {
        // rows·cols·n ≥ RowParallel's threshold, so the rows are split across the pool.
        var rng = new TestRandom(50);
        int rows = 261, cols = 256, n = 2;
        var w = rng.Array(rows * cols);
        var x = rng.Array(n * cols);
        var m = Q4_0Matrix.FromFloat(w, rows, cols);
        var (fast, twin) = (new float[n * rows], new float[n * rows]);
        m.MatMul(x, n, fast);
        ScalarQuant.MatMulQ4_0(m.Blocks, rows, cols, x, n, twin);
        var bounds = Magnitudes(m.Blocks, 18, rows, cols, x, n, (blk, j) => j < 16 ? blk[2 + j] & 15 : blk[2 + j - 16] >> 4, 8);
        for (int i = 0; i < fast.Length; i++) Tolerance.Within(twin[i], fast[i], Tolerance.Dot(cols + 4, bounds[i]), "large Q4_0", i);
    }

    [Fact]
    public void QuantizedProduct_IsCloseToFp32OnDequantizedWeights()
    {
        // With exact weights Ŵ, the only other error is the int8 activation rounding: |x − x̂| ≤ d_x/2 per element.
        var rng = new TestRandom(60);
        int rows = 9, cols = 160, n = 3;
        var w = rng.Array(rows * cols);
        var x = QuantFormatTests.Data(rng, n * cols);
        var q8 = Q8_0Matrix.FromFloat(w, rows, cols);
        var q4 = Q4_0Matrix.FromFloat(w, rows, cols);
        var t = TernaryMatrix.FromFloat(w, rows, cols, 64);
        var mats = new (string, object, float[])[] { ("Q8_0", q8, q8.Dequantize()), ("Q4_0", q4, q4.Dequantize()), ("ternary", t, t.Dequantize()) };
        var xs = new float[n * cols / 32];
        ScalarQuant.QuantizeActivations(x, new sbyte[n * cols], xs, new int[n * cols / 32]);
        foreach (var (name, matmul, wHat) in mats)
        {
            var y = new float[n * rows];
            RunWidth(matmul, x, n, y, -1);
            for (int i = 0; i < n; i++)
                for (int r = 0; r < rows; r++)
                {
                    double exact = 0, actErr = 0, mag = 0;
                    for (int k = 0; k < cols; k++)
                    {
                        double wk = wHat[r * cols + k];
                        exact += wk * x[i * cols + k];
                        actErr += Math.Abs(wk) * xs[(i * cols + k) / 32] * (0.5 + 254 * Tolerance.U);
                        mag += Math.Abs(wk) * (Math.Abs(x[i * cols + k]) + xs[(i * cols + k) / 32]);
                    }
                    Tolerance.Within(exact, y[i * rows + r], actErr + Tolerance.Dot(8 * cols, mag), name, i * rows + r);
                }
        }
    }

    delegate void MatMulFn(float[] x, int n, float[] y);

    /// <summary>Runs every width × shape; <paramref name="make"/> gives the fast matmul (by width), the twin and per-output bounds.</summary>
    static void Sweep(ulong seed, Func<float[], int, int, (object Matrix, MatMulFn Twin, Func<float[], int, double[]> Mags)> make)
    {
        var rng = new TestRandom(seed);
        for (int cols = 0; cols <= 256; cols += 32)
            foreach (int rows in RowCounts)
            {
                var w = QuantFormatTests.Data(rng, rows * cols);
                var (matrix, twin, mags) = make(w, rows, cols);
                foreach (int n in Ns)
                {
                    var x = rng.Array(n * cols, -3f, 3f);
                    var expected = new float[n * rows];
                    twin(x, n, expected);
                    var bounds = mags(x, n);
                    var got = new float[n * rows];
                    RunWidth(matrix, x, n, got, -1);
                    for (int i = 0; i < got.Length; i++)
                        Tolerance.Within(expected[i], got[i], Tolerance.Dot(cols + 4, bounds[i]), $"auto cols={cols} rows={rows} n={n}", i);
                    foreach (int width in Widths)
                    {
                        Array.Clear(got);
                        RunWidth(matrix, x, n, got, width);
                        for (int i = 0; i < got.Length; i++)
                            Tolerance.Within(expected[i], got[i], Tolerance.Dot(cols + 4, bounds[i]), $"width={width} cols={cols} rows={rows} n={n}", i);
                    }
                }
            }
    }

    /// <summary>width −1 = the public entry point (best width); else that width.</summary>
    static void RunWidth(object matrix, float[] x, int n, float[] y, int width)
    {
        switch (matrix)
        {
            case Q8_0Matrix m: if (width < 0) m.MatMul(x, n, y); else m.MatMul(x, n, y, width); break;
            case Q4_0Matrix m: if (width < 0) m.MatMul(x, n, y); else m.MatMul(x, n, y, width); break;
            case TernaryMatrix m: if (width < 0) m.MatMul(x, n, y); else m.MatMul(x, n, y, width); break;
            default: throw new InvalidOperationException("unknown matrix");
        }
    }

    /// <summary>
    /// Per output: Σ_blocks |d_w·d_x|·(Σ_j code_j·|q_x,j| + offset·|Σ_j q_x,j|), the magnitude of every term
    /// the fast path adds (its code is the unsigned form, corrected by offset × the block's code sum).
    /// </summary>
    static double[] Magnitudes(ReadOnlySpan<byte> blocks, int blockBytes, int rows, int cols, float[] x, int n, Func<byte[], int, int> code, int offset)
    {
        int nb = cols / 32;
        var (q, xs, sums) = (new sbyte[n * cols], new float[n * nb], new int[n * nb]);
        ScalarQuant.QuantizeActivations(x, q, xs, sums);
        var result = new double[n * rows];
        var blk = new byte[blockBytes];
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++)
            {
                double m = 0;
                for (int b = 0; b < nb; b++)
                {
                    blocks.Slice((r * nb + b) * blockBytes, blockBytes).CopyTo(blk);
                    double d = Math.Abs(QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(blk)) * xs[i * nb + b]);
                    double s = 0;
                    for (int j = 0; j < 32; j++) s += code(blk, j) * Math.Abs(q[(i * nb + b) * 32 + j]);
                    m += d * (s + offset * Math.Abs(sums[i * nb + b]));
                }
                result[i * rows + r] = m;
            }
        return result;
    }

    static double[] TernaryMagnitudes(TernaryMatrix m, float[] scales, float[] x, int n)
    {
        int rows = m.Rows, cols = m.Cols, nb = cols / 32;
        var (q, xs, sums) = (new sbyte[n * cols], new float[n * nb], new int[n * nb]);
        ScalarQuant.QuantizeActivations(x, q, xs, sums);
        var result = new double[n * rows];
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++)
            {
                double mag = 0;
                for (int b = 0; b < nb; b++)
                {
                    int first = (r * nb + b) * 32;
                    double d = Math.Abs(scales[first / m.GroupSize] * xs[i * nb + b]);
                    double s = 0;
                    for (int j = 0; j < 32; j++) s += (ScalarQuant.GetTernary(m.Packed, first + j) + 1) * Math.Abs(q[(i * nb + b) * 32 + j]);
                    mag += d * (s + Math.Abs(sums[i * nb + b]));
                }
                result[i * rows + r] = mag;
            }
        return result;
    }
}
