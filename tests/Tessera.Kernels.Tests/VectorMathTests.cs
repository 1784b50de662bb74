using System.Runtime.Intrinsics;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Checks the exp accuracy that the softmax / cross-entropy / activation tolerances assume
/// (<see cref="VectorMath.MaxRelativeError"/>), and that scalar tails match vector lanes bitwise.
/// </summary>
public class VectorMathTests
{
    [Fact]
    public void ExpIsWithinItsStatedRelativeErrorOverADenseSweep()
    {
        // Every 97th bit pattern of [0, 88.72] and of [−104, −0]: ~22M arguments covering every
        // binade and (97 being prime) every residue of the reduction.
        double worstRel = 0, worstSub = 0;
        var xs = new float[16];
        foreach (var (lo, hi) in new[] { (0u, (uint)BitConverter.SingleToInt32Bits(88.72f)), (0x80000000u, (uint)BitConverter.SingleToInt32Bits(-104f)) })
        {
            for (uint bits = lo; bits <= hi - 16 * 97; bits += 16 * 97)
            {
                for (int l = 0; l < 16; l++) xs[l] = BitConverter.Int32BitsToSingle((int)(bits + (uint)l * 97));
                var v = VectorMath.Exp(Vector512.Create<float>(xs));
                for (int l = 0; l < 16; l++)
                {
                    double e = Math.Exp(xs[l]);
                    if (e >= 1.1754943508222875e-38) worstRel = Math.Max(worstRel, Math.Abs(v[l] - e) / e);
                    else worstSub = Math.Max(worstSub, Math.Abs(v[l] - e));
                }
            }
        }
        Assert.True(worstRel <= VectorMath.MaxRelativeError, $"max relative error {worstRel / Tolerance.U:F3}u > {VectorMath.MaxRelativeErrorInU}u");
        Assert.True(worstSub <= Math.Pow(2, -149), $"subnormal absolute error {worstSub:E3} > 2^-149");
    }

    [Fact]
    public void ScalarVectorAndSpanFormsAgreeBitwiseIncludingSpecialValues()
    {
        var r = new TestRandom(7);
        var x = r.Array(1000, -110f, 95f);
        float[] specials = [0f, -0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 88.72f, 88.73f, -87.33f, -103.97f, -105f, 1e-30f];
        specials.CopyTo(x, 0);
        var y = new float[x.Length];
        VectorMath.Exp(x, y);
        for (int i = 0; i < x.Length; i++)
        {
            float s = VectorMath.Exp(x[i]);
            Assert.Equal(BitConverter.SingleToInt32Bits(s), BitConverter.SingleToInt32Bits(y[i]));
            Assert.Equal(BitConverter.SingleToInt32Bits(s), BitConverter.SingleToInt32Bits(VectorMath.Exp(Vector256.Create(x[i]))[0]));
        }
        Assert.Equal(1f, VectorMath.Exp(0f));
        Assert.True(float.IsNaN(VectorMath.Exp(float.NaN)));
        Assert.Equal(0f, VectorMath.Exp(float.NegativeInfinity));
        Assert.Equal(float.PositiveInfinity, VectorMath.Exp(89f));
        Assert.Equal(float.PositiveInfinity, VectorMath.Exp(float.PositiveInfinity));
    }
}
