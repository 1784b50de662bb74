using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Fast cross-entropy vs <see cref="ScalarCrossEntropy"/>. n = vocab, u = 2⁻²⁴, ε = fast exp
/// relative error. Both sides compute the same fp32 exp arguments; they differ in ε, the fp32
/// sum of exps (γₙ) and the final roundings.
/// </summary>
public class CrossEntropyTests
{
    static readonly double Eps = VectorMath.MaxRelativeError;
    const double U = Tolerance.U;
    static readonly double Sub = Math.Pow(2, -148);

    static IEnumerable<(int Rows, int Vocab, float Scale)> Cases()
    {
        for (int vocab = 1; vocab <= 256; vocab++)
            foreach (int rows in new[] { 1, 3, 7 }) yield return (rows, vocab, vocab % 3 == 0 ? 80f : 4f);
        yield return (1000, 37, 30f);
        yield return (5, 4099, 80f);
        yield return (40, 2053, 60f);   // ≥ 64K elements: parallel path
    }

    static (float[] Logits, int[] Targets) Data(TestRandom r, int rows, int vocab, float scale)
    {
        var logits = r.Array(rows * vocab, -scale, scale);
        var targets = new int[rows];
        for (int i = 0; i < rows; i++) targets[i] = i % 3 == 1 ? -100 : r.Next(vocab);   // every third row ignored
        return (logits, targets);
    }

    [Fact]
    public void ForwardMatchesTwin()
    {
        var r = new TestRandom(11);
        foreach (var (rows, vocab, scale) in Cases())
        {
            var (logits, targets) = Data(r, rows, vocab, scale);
            var lseExpected = new float[rows]; var lseActual = new float[rows];
            float expected = ScalarCrossEntropy.Forward(logits, targets, lseExpected, rows, vocab);
            float actual = CrossEntropy.Forward(logits, targets, lseActual, rows, vocab);
            // lse: log of a sum with relative error γₙ + ε is off by at most that, absolutely;
            // each side rounds lse to fp32 once (u·|lse|).
            double rowBound = Tolerance.Gamma(vocab) + Eps + vocab * Sub;
            double lossBound = 0; int count = 0;
            for (int i = 0; i < rows; i++)
            {
                Tolerance.Within(lseExpected[i], lseActual[i], rowBound + 2 * U * Math.Abs(lseExpected[i]), $"lse ({rows},{vocab})", i);
                if (targets[i] == -100) continue;
                lossBound += rowBound + U * Math.Abs(lseExpected[i]);   // the fast loss uses the fp32 lse
                count++;
            }
            // Mean of the row errors, plus each side's rounding of the mean to fp32.
            lossBound = lossBound / Math.Max(count, 1) + 2 * U * Math.Abs(expected);
            Tolerance.Within(expected, actual, lossBound, $"loss ({rows},{vocab})", 0);
        }
    }

    [Fact]
    public void BackwardMatchesTwin()
    {
        var r = new TestRandom(12);
        foreach (var (rows, vocab, scale) in Cases())
        {
            var (logits, targets) = Data(r, rows, vocab, scale);
            var lse = new float[rows];
            ScalarCrossEntropy.Forward(logits, targets, lse, rows, vocab);
            var expected = new float[logits.Length]; var actual = new float[logits.Length];
            actual.AsSpan().Fill(float.NaN);   // ignored rows must be overwritten with zeros
            ScalarCrossEntropy.Backward(logits, targets, lse, 0.7f, expected, rows, vocab);
            CrossEntropy.Backward(logits, targets, lse, 0.7f, actual, rows, vocab);
            // Off-target: exp (ε), the fp32 scale (u), the product (u), the twin's rounding (u).
            // The target entry is computed in double exactly as the twin does.
            for (int i = 0; i < logits.Length; i++)
                Tolerance.Within(expected[i], actual[i], (Eps + 3 * U) * Math.Abs(expected[i]) + Sub, $"dlogits ({rows},{vocab})", i);
        }
    }

    [Fact]
    public void AllRowsIgnoredGivesZeroLossAndZeroGradient()
    {
        var logits = new TestRandom(13).Array(3 * 5);
        int[] targets = [-1, -1, -1];
        var lse = new float[3];
        Assert.Equal(0f, CrossEntropy.Forward(logits, targets, lse, 3, 5, ignoreIndex: -1));
        var d = new float[15];
        d.AsSpan().Fill(1f);
        CrossEntropy.Backward(logits, targets, lse, 1f, d, 3, 5, ignoreIndex: -1);
        Assert.All(d, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void ParallelPathEqualsRowByRowBitwise()
    {
        const int rows = 64, vocab = 1500;
        var (logits, targets) = Data(new TestRandom(14), rows, vocab, 50f);
        var lseWhole = new float[rows]; var lseSingle = new float[rows];
        CrossEntropy.Forward(logits, targets, lseWhole, rows, vocab);
        for (int i = 0; i < rows; i++) CrossEntropy.Forward(logits.AsSpan(i * vocab, vocab), targets.AsSpan(i, 1), lseSingle.AsSpan(i, 1), 1, vocab);
        Assert.Equal(lseSingle, lseWhole);
    }

    [Fact]
    public void OutOfRangeTargetThrowsAndWritesNothing()
    {
        var logits = new float[3 * 4];
        var lse = new float[] { 9f, 9f, 9f };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.Forward(logits, [0, 4, 1], lse, 3, 4));
        Assert.Contains("target id 4 at row 1", e.Message);
        Assert.Equal([9f, 9f, 9f], lse);
        Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.Backward(logits, [0, -5, 1], lse, 1f, new float[12], 3, 4));
    }

    [Fact]
    public void TooShortSpansThrowNamingTheShape()
    {
        var e = Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(new float[11], [0, 0, 0], new float[3], 3, 4));
        Assert.Contains("CrossEntropy.Forward", e.Message);
        Assert.Contains("logits", e.Message);
        e = Assert.Throws<ArgumentException>(() => CrossEntropy.Forward(new float[12], [0, 0, 0], new float[2], 3, 4));
        Assert.Contains("lse", e.Message);
        e = Assert.Throws<ArgumentException>(() => CrossEntropy.Backward(new float[12], [0, 0], new float[3], 1f, new float[12], 3, 4));
        Assert.Contains("targets", e.Message);
        e = Assert.Throws<ArgumentException>(() => CrossEntropy.Backward(new float[12], [0, 0, 0], new float[3], 1f, new float[10], 3, 4));
        Assert.Contains("dLogits", e.Message);
    }
}
