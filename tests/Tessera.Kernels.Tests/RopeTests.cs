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

    /// <summary>
    /// HF's inverse-frequency formulas transcribed as written there (1/θ^(2i/D), then torch.where
    /// over the wavelengths for llama3), in double. The kernel and twin compute θ^(−2i/D) with one
    /// pow instead of a pow and a reciprocal: a few ulps of double apart.
    /// </summary>
    static double[] HfInverseFrequencies(int dim, double theta, string type, double factor, double low, double high, int original)
    {
        var inv = new double[dim / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            double f = 1.0 / Math.Pow(theta, (2.0 * i) / dim);
            if (type == "linear") f = f / factor;
            else if (type == "llama3")
            {
                double lowWavelen = original / low, highWavelen = original / high, wavelen = 2 * Math.PI / f;
                double llama = wavelen > lowWavelen ? f / factor : f;
                double smooth = (original / wavelen - low) / (high - low);
                double smoothed = (1 - smooth) * llama / factor + smooth * llama;
                bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
                f = medium ? smoothed : llama;
            }
            inv[i] = f;
        }
        return inv;
    }

    [Theory]
    [InlineData("none", 10000.0, 1.0, 8)]
    [InlineData("linear", 1000000.0, 8.0, 256)]       // Gemma 3 global layers
    [InlineData("llama3", 500000.0, 8.0, 128)]        // Llama 3.1
    [InlineData("llama3", 500000.0, 32.0, 64)]        // Llama 3.2
    public void ScaledFrequenciesAndTablesMatchTheClosedForm(string type, double theta, double factor, int dim)
    {
        const double Low = 1, High = 4;
        const int Original = 8192, Positions = 300;
        var kind = type switch { "linear" => RopeScalingKind.Linear, "llama3" => RopeScalingKind.Llama3, _ => RopeScalingKind.None };
        var expected = HfInverseFrequencies(dim, theta, type, factor, Low, High, Original);
        var fast = new double[dim / 2]; var twin = new double[dim / 2];
        Rope.InverseFrequencies(dim, theta, fast, kind, factor, Low, High, Original);
        ScalarRope.InverseFrequencies(dim, theta, twin, kind, factor, Low, High, Original);
        Assert.Equal(twin, fast);
        const double DoubleU = 1.0 / (1L << 53);
        for (int i = 0; i < expected.Length; i++)
            Tolerance.Within(expected[i], fast[i], 16 * DoubleU * expected[i], $"{type} inverse frequency", i);
        if (type == "llama3")
        {
            // The remap must have touched all three bands, or the comparison proves less than it claims.
            int scaled = 0, kept = 0, blended = 0;
            for (int i = 0; i < expected.Length; i++)
            {
                double plain = Math.Pow(theta, -2.0 * i / dim), wl = 2 * Math.PI / plain;
                if (wl > Original / Low) scaled++; else if (wl < Original / High) kept++; else blended++;
            }
            Assert.True(scaled > 0 && kept > 0 && blended > 0, $"llama3 bands: {scaled} scaled, {kept} kept, {blended} blended");
        }

        int half = dim / 2;
        var cE = new float[Positions * half]; var sE = new float[Positions * half];
        var cA = new float[Positions * half]; var sA = new float[Positions * half];
        ScalarRope.BuildTables(Positions, twin, cE, sE);
        Rope.BuildTables(Positions, fast, cA, sA);
        Assert.Equal(cE, cA);
        Assert.Equal(sE, sA);
        // Against cos/sin of the closed-form angle: one float rounding (≤ u) plus the angle's
        // difference p·|f − f_hf|, which moves cos and sin by at most that much.
        for (int p = 0; p < Positions; p++)
            for (int i = 0; i < half; i++)
            {
                double ang = p * expected[i], dAng = p * Math.Abs(fast[i] - expected[i]) + 4 * DoubleU * Math.Abs(ang);
                Tolerance.Within(Math.Cos(ang), cA[p * half + i], Tolerance.U + dAng, $"{type} cos p={p}", i);
                Tolerance.Within(Math.Sin(ang), sA[p * half + i], Tolerance.U + dAng, $"{type} sin p={p}", i);
            }
    }

    [Fact]
    public void RotateHeadsEqualsApplyBitwiseForEveryHeadDim()
    {
        var r = new TestRandom(33);
        for (int headDim = 2; headDim <= 256; headDim += 2)
        {
            int heads = headDim % 5 + 1, position = headDim % 9, half = headDim / 2;
            var cos = new float[(position + 1) * half]; var sin = new float[(position + 1) * half];
            Rope.BuildTables(position + 1, headDim, 10000f, cos, sin);
            var x = r.Array(heads * headDim, -3f, 3f);
            var expected = (float[])x.Clone();
            // One token (B = T = 1) at offset = position is the same rotation.
            ScalarRope.Apply(expected, 1, 1, heads, headDim, cos, sin, positionOffset: position);
            Rope.RotateHeads(x, heads, headDim, cos, sin, position);
            Assert.True(expected.AsSpan().SequenceEqual(x), $"RotateHeads D={headDim} H={heads} p={position} differs from the twin");
        }
        var e = Assert.Throws<ArgumentException>(() => Rope.RotateHeads(new float[8], 2, 4, new float[4], new float[4], 2));
        Assert.Contains("position 2", e.Message);
    }

    [Fact]
    public void ScalingParametersAreChecked()
    {
        var f = new double[4];
        var e = Assert.Throws<ArgumentException>(() => Rope.InverseFrequencies(8, 10000, f, RopeScalingKind.Linear, factor: 0));
        Assert.Contains("factor", e.Message);
        e = Assert.Throws<ArgumentException>(() => Rope.InverseFrequencies(8, 10000, f, RopeScalingKind.Llama3, 8, lowFreqFactor: 4, highFreqFactor: 1));
        Assert.Contains("low_freq_factor", e.Message);
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
