using System.Buffers.Binary;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Bit layouts (ggml Q8_0/Q4_0, Tessera ternary), round-trip error bounds derived from each
/// format's rounding rule, and rejection of lengths the block formats cannot hold.
/// </summary>
public class QuantFormatTests
{
    const double U = Tolerance.U;

    [Fact]
    public void Q8_0_Layout_IsGgmlBlock()
    {
        // max |x| = 127 gives d = 1 exactly, so every q equals its x.
        var x = new float[32];
        for (int j = 0; j < 31; j++) x[j] = j * 4 - 64;
        x[31] = 127;
        var blocks = new byte[QuantFormat.Q8_0BlockBytes];
        ScalarQuant.QuantizeQ8_0(x, blocks);
        Assert.Equal(0x3C00, BinaryPrimitives.ReadUInt16LittleEndian(blocks)); // fp16 1.0
        for (int j = 0; j < 32; j++) Assert.Equal((sbyte)x[j], (sbyte)blocks[2 + j]);
    }

    [Fact]
    public void Q4_0_Layout_LowNibblesAreFirstHalf()
    {
        // Elements 0..15 = −8..7, elements 16..31 = 7..−8: the first −8 sets d = −8/−8 = 1, q = x + 8.
        var x = new float[32];
        for (int j = 0; j < 16; j++) { x[j] = j - 8; x[16 + j] = 7 - j; }
        var blocks = new byte[QuantFormat.Q4_0BlockBytes];
        ScalarQuant.QuantizeQ4_0(x, blocks);
        Assert.Equal(0x3C00, BinaryPrimitives.ReadUInt16LittleEndian(blocks));
        for (int j = 0; j < 16; j++) Assert.Equal((byte)(j | ((15 - j) << 4)), blocks[2 + j]);
        var back = new float[32];
        ScalarQuant.DequantizeQ4_0(blocks, back);
        Assert.Equal(x, back);
    }

    [Fact]
    public void Ternary_Layout_ByteJHoldsElementsJPlus8k()
    {
        // Uniform magnitudes 1 give γ = 1, so t = sign(x) with 0s where x = 0.
        var x = new float[32];
        for (int i = 0; i < 32; i++) x[i] = (i % 3) - 1;         // −1, 0, +1, ...
        var packed = new byte[8];
        var scales = new ushort[1];
        ScalarQuant.QuantizeTernary(x, 32, packed, scales);
        float gamma = QuantFormat.FromHalf(scales[0]);
        Assert.Equal((float)(21.0 / 32.0), gamma, 3);            // 21 nonzero of 32, rounded to fp16
        for (int j = 0; j < 8; j++)
        {
            int expected = 0;
            for (int k = 0; k < 4; k++) expected |= ((8 * k + j) % 3) << (2 * k);   // t + 1 = (i % 3)
            Assert.Equal(expected, packed[j]);
        }
    }

    [Fact]
    public void Q8_0_RoundTrip_WithinHalfStep()
    {
        var rng = new TestRandom(11);
        for (int n = 0; n <= 256; n += 32)
        {
            var x = Data(rng, n);
            var blocks = new byte[QuantFormat.Q8_0Bytes(n)];
            ScalarQuant.QuantizeQ8_0(x, blocks);
            var back = new float[n];
            ScalarQuant.DequantizeQ8_0(blocks, back);
            for (int b = 0; b < n / 32; b++)
            {
                double amax = 0;
                for (int j = 0; j < 32; j++) amax = Math.Max(amax, Math.Abs(x[b * 32 + j]));
                double d = (float)(amax / 127), d16 = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(blocks.AsSpan(b * 34)));
                // Half a step, the x·(1/d) roundings (≈2u of 127 steps), the fp16 scale error times |q| ≤ 127, the final product.
                double bound = d * (0.5 + 254 * U) + 127 * Math.Abs(d - d16) + 127 * d16 * U + 1e-30;
                for (int j = 0; j < 32; j++) Tolerance.Within(x[b * 32 + j], back[b * 32 + j], bound, $"Q8_0 n={n}", b * 32 + j);
            }
        }
    }

    [Fact]
    public void Q4_0_RoundTrip_WithinHalfStep_OrOneStepAtTheClampedEnd()
    {
        var rng = new TestRandom(12);
        for (int n = 0; n <= 256; n += 32)
        {
            var x = Data(rng, n);
            var blocks = new byte[QuantFormat.Q4_0Bytes(n)];
            ScalarQuant.QuantizeQ4_0(x, blocks);
            var back = new float[n];
            ScalarQuant.DequantizeQ4_0(blocks, back);
            for (int b = 0; b < n / 32; b++)
            {
                double amax = 0, max = 0;
                for (int j = 0; j < 32; j++)
                    if (amax < Math.Abs(x[b * 32 + j])) { amax = Math.Abs(x[b * 32 + j]); max = x[b * 32 + j]; }
                double d = (float)(max / -8), d16 = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(blocks.AsSpan(b * 18)));
                for (int j = 0; j < 32; j++)
                {
                    // Scaled value s ∈ [−8, 8]; codes reach −8..7, so s > 7.5 is clamped to 7 (error s − 7 ≤ 1 step).
                    double s = d == 0 ? 0 : x[b * 32 + j] / d;
                    double steps = Math.Max(0.5, s - 7) + 16.5 * 4 * U;
                    double bound = Math.Abs(d) * steps + 8 * Math.Abs(d - d16) + 8 * Math.Abs(d16) * U + 1e-30;
                    Tolerance.Within(x[b * 32 + j], back[b * 32 + j], bound, $"Q4_0 n={n}", b * 32 + j);
                }
            }
        }
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(128)]
    public void Ternary_RoundTrip_WithinHalfScale_OrClampedExcess(int group)
    {
        var rng = new TestRandom(13);
        for (int n = 0; n <= 256; n += 32)
        {
            var x = Data(rng, n);
            long groups = QuantFormat.TernaryGroups(n, group);
            var packed = new byte[QuantFormat.TernaryPackedBytes(n)];
            var bits = new ushort[groups];
            ScalarQuant.QuantizeTernary(x, group, packed, bits);
            var scales = Array.ConvertAll(bits, QuantFormat.FromHalf);
            var back = new float[n];
            ScalarQuant.DequantizeTernary(packed, scales, group, back);
            for (int g = 0; g < groups; g++)
            {
                int start = g * group, end = Math.Min(n, start + group);
                double mean = 0;
                for (int i = start; i < end; i++) mean += Math.Abs(x[i]);
                mean /= end - start;
                Tolerance.Within(mean, scales[g], mean * Math.Pow(2, -11) + 1e-30, "γ = fp16(mean|w|)", g);
                for (int i = start; i < end; i++)
                {
                    double gamma = scales[g];
                    double bound = Math.Max(gamma / 2, Math.Abs(x[i]) - gamma) + 4 * U * (Math.Abs(x[i]) + gamma) + 1e-30;
                    Tolerance.Within(x[i], back[i], bound, $"ternary n={n} g={group}", i);
                }
            }
        }
    }

    [Fact]
    public void ZeroBlocks_QuantizeToZeros()
    {
        var x = new float[64];
        var q8 = Q8_0Matrix.FromFloat(x, 2, 32).Dequantize();
        var q4 = Q4_0Matrix.FromFloat(x, 1, 64).Dequantize();
        var t = TernaryMatrix.FromFloat(x, 2, 32, 64).Dequantize();
        Assert.All(q8, v => Assert.Equal(0f, v));
        Assert.All(q4, v => Assert.Equal(0f, v));
        Assert.All(t, v => Assert.Equal(0f, v));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(100)]
    public void LengthsThatAreNotBlockMultiples_AreRejected(int n)
    {
        var x = new float[n];
        Assert.Throws<ArgumentException>(() => ScalarQuant.QuantizeQ8_0(x, new byte[64]));
        Assert.Throws<ArgumentException>(() => ScalarQuant.QuantizeQ4_0(x, new byte[64]));
        Assert.Throws<ArgumentException>(() => QuantActivations.Quantize(x, new sbyte[n], new float[4], new int[4]));
        Assert.Throws<ArgumentException>(() => Q8_0Matrix.FromFloat(x, 1, n));
        Assert.Throws<ArgumentException>(() => Q4_0Matrix.FromFloat(x, 1, n));
        Assert.Throws<ArgumentException>(() => TernaryMatrix.FromFloat(x, 1, n));
    }

    [Fact]
    public void BadGroupSizesAndShapes_AreRejected()
    {
        var x = new float[64];
        Assert.Throws<ArgumentException>(() => TernaryMatrix.FromFloat(x, 1, 64, 48));
        Assert.Throws<ArgumentException>(() => TernaryMatrix.FromFloat(x, 1, 64, 0));
        Assert.Throws<ArgumentException>(() => Q8_0Matrix.FromFloat(x, 2, 64));
        Assert.Throws<ArgumentException>(() => new Q8_0Matrix(1, 64, new byte[67]));
        var m = Q4_0Matrix.FromFloat(x, 2, 32);
        Assert.Throws<ArgumentException>(() => m.MatMul(new float[33], 1, new float[2]));
        Assert.Throws<ArgumentException>(() => m.MatMul(new float[32], 1, new float[3]));
    }

    [Fact]
    public void BFloat16_RoundsToNearestEven()
    {
        Assert.Equal(0x3F80, QuantFormat.ToBFloat16(1f));
        Assert.Equal(0x3F80, QuantFormat.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie → even
        Assert.Equal(0x3F82, QuantFormat.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie → even (up)
        Assert.Equal(0x3F81, QuantFormat.ToBFloat16(BitConverter.UInt32BitsToSingle(0x3F808001)));
        Assert.True(float.IsNaN(QuantFormat.FromBFloat16(QuantFormat.ToBFloat16(float.NaN))));
    }

    /// <summary>Random values whose magnitude varies per block, with an occasional zero block.</summary>
    internal static float[] Data(TestRandom rng, int n)
    {
        var x = new float[n];
        for (int b = 0; b < n / 32; b++)
        {
            float scale = rng.Next(7) == 0 ? 0f : MathF.Pow(10f, rng.Uniform(-3f, 2f));
            for (int j = 0; j < 32; j++) x[b * 32 + j] = scale * rng.Uniform();
        }
        return x;
    }
}
