using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>Fast RMSNorm vs <see cref="ScalarRmsNorm"/>. n = dim, u = 2⁻²⁴; the twin accumulates in double.</summary>
public class RmsNormTests
{
    const double U = Tolerance.U;
    const float EpsNorm = 1e-5f;

    static IEnumerable<(int Rows, int Dim, float Scale)> Cases()
    {
        for (int dim = 0; dim <= 256; dim++)
            foreach (int rows in new[] { 1, 3, 7 }) yield return (rows, dim, dim % 2 == 0 ? 1f : 300f);
        yield return (1000, 37, 2f);
        yield return (5, 4099, 50f);
        yield return (70, 1031, 1f);   // ≥ 64K elements: parallel path
    }

    // Gemma's gain is 1 + w with w near 0; plain RMSNorm's is w near 1.
    static float[] Gain(TestRandom r, int dim, float offset) => offset == 0 ? r.Array(dim, 0.5f, 1.5f) : r.Array(dim, -0.5f, 0.5f);

    [Theory]
    [InlineData(0f)]
    [InlineData(1f)]
    public void ForwardMatchesTwin(float offset)
    {
        var r = new TestRandom(21);
        foreach (var (rows, dim, scale) in Cases())
        {
            var x = r.Array(rows * dim, -scale, scale);
            var w = Gain(r, dim, offset);
            var yE = new float[x.Length]; var yA = new float[x.Length];
            var rsE = new float[rows]; var rsA = new float[rows];
            ScalarRmsNorm.Forward(x, w, yE, rsE, rows, dim, EpsNorm, offset);
            RmsNorm.Forward(x, w, yA, rsA, rows, dim, EpsNorm, offset);
            // Σx² in fp32 has relative error γₙ; the square root halves it; rstd is rounded to fp32
            // by both sides (2u). y = (x·g)·rstd adds two more roundings (the twin rounds once), and
            // with an offset the fast side rounds g = w + offset once more.
            double g = 0.5 * Tolerance.Gamma(dim), extra = offset != 0 ? U : 0;
            for (int i = 0; i < rows; i++) Tolerance.Within(rsE[i], rsA[i], (g + 2 * U) * Math.Abs(rsE[i]), $"rstd ({rows},{dim})", i);
            for (int i = 0; i < x.Length; i++) Tolerance.Within(yE[i], yA[i], (g + 4 * U + extra) * Math.Abs(yE[i]) + 1e-44, $"y ({rows},{dim}) offset {offset}", i);
        }
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(1f)]
    public void BackwardMatchesTwinAndAccumulatesDWeight(float offset)
    {
        var r = new TestRandom(22);
        foreach (var (rows, dim, scale) in Cases())
        {
            var x = r.Array(rows * dim, -scale, scale);
            var w = Gain(r, dim, offset);
            var dy = r.Array(rows * dim, -1f, 1f);
            var y = new float[x.Length]; var rs = new float[rows];
            ScalarRmsNorm.Forward(x, w, y, rs, rows, dim, EpsNorm, offset);
            var dxE = new float[x.Length]; var dxA = new float[x.Length];
            var dw0 = r.Array(dim, -1f, 1f);   // dWeight accumulates: start from non-zero
            var dwE = (float[])dw0.Clone(); var dwA = (float[])dw0.Clone();
            ScalarRmsNorm.Backward(x, w, rs, dy, dxE, dwE, rows, dim, offset);
            RmsNorm.Backward(x, w, rs, dy, dxA, dwA, rows, dim, offset);
            double extra = offset != 0 ? U : 0;   // the fast side's rounding of g = w + offset
            for (int row = 0; row < rows; row++)
            {
                int o = row * dim;
                double rsd = rs[row], absDot = 0;
                for (int i = o; i < o + dim; i++) absDot += Math.Abs(((double)w[i - o] + offset) * dy[i] * x[i]);
                for (int i = o; i < o + dim; i++)
                {
                    // A = rstd·|g·dy| (two roundings, plus g's own); B = |x|·rstd³·Σ|g·dy·x|/n carries
                    // the fp32 dot (γₙ, plus g's rounding) and the roundings of c = rstd³·dot/n and of
                    // c·x; the subtraction rounds once on each side.
                    double a = rsd * Math.Abs(((double)w[i - o] + offset) * dy[i]);
                    double b = Math.Abs(x[i]) * rsd * rsd * rsd * absDot / dim;
                    double bound = (2 * U + extra) * a + (Tolerance.Gamma(dim) + 3 * U + extra) * b + 2 * U * Math.Abs(dxE[i]) + 1e-44;
                    Tolerance.Within(dxE[i], dxA[i], bound, $"dx ({rows},{dim})", i);
                }
            }
            for (int i = 0; i < dim; i++)
            {
                // Both sides add the rows in fp32 in the same order: each is within γ_rows·Σ|terms|
                // of the exact sum; the fast terms (dy·x)·rstd round twice, the twin's once.
                double terms = 0;
                for (int row = 0; row < rows; row++) terms += Math.Abs((double)dy[row * dim + i] * x[row * dim + i] * rs[row]);
                double bound = 2 * Tolerance.Gamma(rows) * (Math.Abs(dw0[i]) + terms) + 3 * U * terms;
                Tolerance.Within(dwE[i], dwA[i], bound, $"dWeight ({rows},{dim})", i);
            }
        }
    }

    [Fact]
    public void ParallelPathEqualsRowByRowBitwise()
    {
        const int rows = 80, dim = 1029;
        var r = new TestRandom(23);
        var x = r.Array(rows * dim); var w = r.Array(dim); var dy = r.Array(rows * dim);
        var y1 = new float[x.Length]; var y2 = new float[x.Length]; var rs1 = new float[rows]; var rs2 = new float[rows];
        RmsNorm.Forward(x, w, y1, rs1, rows, dim, EpsNorm);
        for (int i = 0; i < rows; i++)
            RmsNorm.Forward(x.AsSpan(i * dim, dim), w, y2.AsSpan(i * dim, dim), rs2.AsSpan(i, 1), 1, dim, EpsNorm);
        Assert.Equal(y2, y1);
        Assert.Equal(rs2, rs1);
        var dx1 = new float[x.Length]; var dx2 = new float[x.Length]; var dw1 = new float[dim]; var dw2 = new float[dim];
        RmsNorm.Backward(x, w, rs1, dy, dx1, dw1, rows, dim);
        for (int i = 0; i < rows; i++)   // row by row accumulates dWeight in the same row order
            RmsNorm.Backward(x.AsSpan(i * dim, dim), w, rs1.AsSpan(i, 1), dy.AsSpan(i * dim, dim), dx2.AsSpan(i * dim, dim), dw2, 1, dim);
        Assert.Equal(dx2, dx1);
        Assert.Equal(dw2, dw1);
    }

    [Fact]
    public void TooShortSpansThrowNamingTheShape()
    {
        var e = Assert.Throws<ArgumentException>(() => RmsNorm.Forward(new float[8], new float[3], new float[8], new float[2], 2, 4, EpsNorm));
        Assert.Contains("RmsNorm.Forward", e.Message);
        Assert.Contains("weight", e.Message);
        e = Assert.Throws<ArgumentException>(() => RmsNorm.Forward(new float[8], new float[4], new float[8], new float[1], 2, 4, EpsNorm));
        Assert.Contains("rstd", e.Message);
        e = Assert.Throws<ArgumentException>(() => RmsNorm.Backward(new float[8], new float[4], new float[2], new float[8], new float[8], new float[3], 2, 4));
        Assert.Contains("dWeight", e.Message);
        Assert.Contains("(4)", e.Message);
    }
}
