using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Fast RoPE vs <see cref="ScalarRope"/>. The fast rotation performs the twin's fp32 operations
/// (x₁c − x₂s, x₂c + x₁s, each product and sum rounded once, no FMA) and the tables use the same
/// double expressions, so the derived bound is zero: results must be bitwise equal.
/// </summary>
public class RopeTests
{
    [Fact]
    public void TablesMatchTwinBitwise()
    {
        for (int headDim = 2; headDim <= 256; headDim += 2)
        {
            int positions = headDim % 16 == 0 ? 37 : 5, half = headDim / 2;
            var cE = new float[positions * half]; var sE = new float[positions * half];
            var cA = new float[positions * half]; var sA = new float[positions * half];
            ScalarRope.BuildTables(positions, headDim, 10000f, cE, sE);
            Rope.BuildTables(positions, headDim, 10000f, cA, sA);
            Assert.Equal(cE, cA);
            Assert.Equal(sE, sA);
        }
        var big = (P: 600, D: 128);   // ≥ 64K table entries ×8: parallel path
        var c1 = new float[big.P * big.D / 2]; var s1 = new float[c1.Length]; var c2 = new float[c1.Length]; var s2 = new float[c1.Length];
        ScalarRope.BuildTables(big.P, big.D, 500000f, c1, s1);
        Rope.BuildTables(big.P, big.D, 500000f, c2, s2);
        Assert.Equal(c1, c2);
        Assert.Equal(s1, s2);
    }

    [Fact]
    public void ApplyMatchesTwinBitwiseForEveryHeadDim()
    {
        var r = new TestRandom(31);
        for (int headDim = 2; headDim <= 256; headDim += 2)
        {
            int batch = headDim % 3 + 1, seq = headDim % 5 + 1, heads = headDim % 7 + 1, offset = headDim % 4;
            Check(r, batch, seq, heads, headDim, offset, inverse: headDim % 4 == 2);
        }
        Check(r, 3, 37, 5, 64, 11, inverse: false);
        Check(r, 2, 129, 8, 128, 0, inverse: true);   // ≥ 64K elements: parallel path
        Check(r, 1, 1, 1, 4098, 0, inverse: false);
    }

    static void Check(TestRandom r, int batch, int seq, int heads, int headDim, int offset, bool inverse)
    {
        int half = headDim / 2, positions = offset + seq;
        var cos = new float[positions * half]; var sin = new float[positions * half];
        ScalarRope.BuildTables(positions, headDim, 10000f, cos, sin);
        var x = r.Array(batch * seq * heads * headDim, -3f, 3f);
        var expected = (float[])x.Clone(); var actual = (float[])x.Clone();
        ScalarRope.Apply(expected, batch, seq, heads, headDim, cos, sin, offset, inverse);
        Rope.Apply(actual, batch, seq, heads, headDim, cos, sin, offset, inverse);
        Assert.True(expected.AsSpan().SequenceEqual(actual), $"RoPE (B={batch},T={seq},H={heads},D={headDim}) offset {offset} inverse {inverse} differs from the twin");
    }

    [Fact]
    public void InverseUndoesForward()
    {
        // x′ = R x, x″ = Rᵀ x′: each component gets ≤ 2 roundings per rotation on terms of size
        // ≤ |x₁|+|x₂|, and |c² + s² − 1| ≤ 2u from the tables: |x″ − x| ≤ 8u·(|x₁|+|x₂|).
        var r = new TestRandom(32);
        const int seq = 50, heads = 3, headDim = 96, half = headDim / 2;
        var cos = new float[seq * half]; var sin = new float[seq * half];
        Rope.BuildTables(seq, headDim, 10000f, cos, sin);
        var x = r.Array(seq * heads * headDim, -2f, 2f);
        var y = (float[])x.Clone();
        Rope.Apply(y, 1, seq, heads, headDim, cos, sin);
        Rope.Apply(y, 1, seq, heads, headDim, cos, sin, inverse: true);
        for (int i = 0; i < x.Length; i++)
        {
            int d = i % headDim, partner = d < half ? i + half : i - half;
            Tolerance.Within(x[i], y[i], 8 * Tolerance.U * (Math.Abs(x[i]) + Math.Abs(x[partner])), "rope round trip", i);
        }
    }

    [Fact]
    public void BadInputsThrowClearly()
    {
        var cos = new float[4 * 2]; var sin = new float[4 * 2];
        var e = Assert.Throws<ArgumentException>(() => Rope.Apply(new float[2 * 5], 1, 2, 1, 5, cos, sin));
        Assert.Contains("even", e.Message);
        Assert.Throws<ArgumentException>(() => Rope.BuildTables(4, 7, 10000f, cos, sin));
        e = Assert.Throws<ArgumentException>(() => Rope.Apply(new float[1 * 3 * 2 * 4], 1, 3, 2, 4, cos, sin, positionOffset: 2));   // needs 5 positions
        Assert.Contains("cos", e.Message);
        Assert.Contains("offset 2", e.Message);
        e = Assert.Throws<ArgumentException>(() => Rope.Apply(new float[15], 1, 2, 2, 4, cos, sin));
        Assert.Contains("x", e.Message);
        Assert.Contains("(1, 2, 2, 4)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Rope.BuildTables(5, 4, 10000f, cos, sin));
        Assert.Contains("Rope.BuildTables", e.Message);
    }
}
