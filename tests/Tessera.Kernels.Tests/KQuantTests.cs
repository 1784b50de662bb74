using System.Buffers.Binary;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// ggml K-quants: the SIMD row expansion against its scalar twin (bit for bit, random super-blocks
/// of every type), hand-packed blocks against values worked out from the layout, and Tessera's
/// quantizers (nearest code under the stored scales).
/// </summary>
public class KQuantTests
{
    static readonly KQuantType[] All = [KQuantType.Q2_K, KQuantType.Q3_K, KQuantType.Q4_K, KQuantType.Q5_K, KQuantType.Q6_K];

    /// <summary>Random super-blocks whose fp16 scales are finite and of moderate size (the rest of the bytes are any bits).</summary>
    static byte[] RandomBlocks(KQuantType type, int superBlocks, Random r)
    {
        int bytes = KQuantFormat.BlockBytes(type);
        var b = new byte[superBlocks * bytes];
        r.NextBytes(b);
        int[] halves = type switch
        {
            KQuantType.Q2_K => [80, 82],
            KQuantType.Q3_K => [108],
            KQuantType.Q6_K => [208],
            _ => [0, 2],
        };
        for (int i = 0; i < superBlocks; i++)
            foreach (int at in halves)
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(i * bytes + at), QuantFormat.ToHalf((float)(r.NextDouble() * 0.02 - 0.005)));
        return b;
    }

    [Fact]
    public unsafe void SimdExpansionEqualsTheScalarTwinBitForBit()
    {
        var r = new Random(11);
        foreach (var type in All)
            for (int sb = 0; sb <= 4; sb++)
            {
                var blocks = RandomBlocks(type, sb, r);
                var want = new float[sb * KQuantFormat.SuperBlock];
                ScalarKQuant.Dequantize(type, blocks, want);
                var got = new float[want.Length + 1];
                got[^1] = 12345f;   // a sentinel past the row: the expansion must not write it
                fixed (byte* pb = blocks)
                fixed (float* pg = got)
                    KQuantExpand.Row(type, pb, sb, pg);
                for (int i = 0; i < want.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]), $"{type} {sb} super-blocks [{i}]: {got[i]} vs {want[i]}");
                Assert.Equal(12345f, got[^1]);
            }
    }

    [Fact]
    public unsafe void FusedOneRowDotEqualsTheScalarTwinBitForBit()
    {
        // Random bytes exercise every code, scale and min bit pattern; 45 rows leave a ragged last tile of 4.
        var r = new Random(23);
        foreach (var type in new[] { KQuantType.Q4_K, KQuantType.Q5_K, KQuantType.Q6_K })
            foreach (int sb in new[] { 1, 3 })
            {
                int rows = 45, cols = sb * KQuantFormat.SuperBlock, rowBytes = sb * KQuantFormat.BlockBytes(type);
                var blocks = RandomBlocks(type, rows * sb, r);
                // Every third super-block gets subnormal fp16 scales (and a negative one): the inline conversions' other path.
                int bytes = KQuantFormat.BlockBytes(type);
                for (int i = 0; i < rows * sb; i += 3)
                    foreach (int at in type == KQuantType.Q6_K ? new[] { 208 } : new[] { 0, 2 })
                        BinaryPrimitives.WriteUInt16LittleEndian(blocks.AsSpan(i * bytes + at), (ushort)(r.Next(1, 0x400) | (i % 2 == 0 ? 0 : 0x8000)));
                var x = new float[cols];
                for (int i = 0; i < cols; i++) x[i] = (float)(r.NextDouble() * 2 - 1);
                var got = new float[rows + 1];
                got[^1] = 12345f;
                var format = type switch { KQuantType.Q4_K => TileFormat.Q4_K, KQuantType.Q5_K => TileFormat.Q5_K, _ => TileFormat.Q6_K };
                fixed (byte* pb = blocks)
                fixed (float* px = x, pg = got)
                    QuantizedTiles.Run(format, pb, null, rows, cols, px, 1, pg);
                for (int j = 0; j < rows; j++)
                {
                    float want = ScalarKQuantDot.Row(type, blocks.AsSpan(j * rowBytes, rowBytes), x);
                    Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got[j]), $"{type} {sb} super-blocks, row {j}: {got[j]} vs {want}");
                }
                Assert.Equal(12345f, got[^1]);
                if (!KQuantDot.Supported(type)) continue;
                // Dot4 itself, as the engine calls it for a full tile of 4 rows.
                fixed (byte* pb = blocks)
                fixed (float* px = x)
                {
                    var sums = KQuantDot.Dot4(type, pb, pb + rowBytes, pb + 2 * rowBytes, pb + 3 * rowBytes, px, sb, null, 0);
                    for (int j = 0; j < 4; j++)
                        Assert.Equal(ScalarKQuantDot.Row(type, blocks.AsSpan(j * rowBytes, rowBytes), x), sums[j]);
                }
            }
    }

    /// <summary>(scale, min) pairs packed by the rule in <see cref="KQuantFormat"/> (written out here independently).</summary>
    static byte[] PackScaleMin(int[] sc, int[] m)
    {
        var p = new byte[12];
        for (int j = 0; j < 4; j++)
        {
            p[j] = (byte)(sc[j] | ((sc[j + 4] >> 4) << 6));
            p[j + 4] = (byte)(m[j] | ((m[j + 4] >> 4) << 6));
            p[j + 8] = (byte)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
        }
        return p;
    }

    [Fact]
    public void Q4_K_And_Q5_K_LayoutGivesTheValuesOfTheDefinition()
    {
        // d = 1, dmin = 0.5; sub-block j has scale 8j+7 and min 63−8j (values ≥ 16 exercise the top bits).
        int[] sc = new int[8], m = new int[8];
        for (int j = 0; j < 8; j++) { sc[j] = 8 * j + 7; m[j] = 63 - 8 * j; }
        var packed = PackScaleMin(sc, m);
        foreach (var type in new[] { KQuantType.Q4_K, KQuantType.Q5_K })
        {
            int levels = type == KQuantType.Q4_K ? 16 : 32;
            var b = new byte[KQuantFormat.BlockBytes(type)];
            BinaryPrimitives.WriteUInt16LittleEndian(b, 0x3C00);
            BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2), 0x3800);
            packed.CopyTo(b, 4);
            var codes = new int[256];
            for (int i = 0; i < 256; i++) codes[i] = (i * 7 + i / 32) % levels;
            int qs = type == KQuantType.Q4_K ? 16 : 48;
            for (int i = 0; i < 256; i++)
            {
                int chunk = i / 64, l = i % 32, high = i % 64 / 32;
                b[qs + 32 * chunk + l] |= (byte)((codes[i] & 15) << (4 * high));
                if (type == KQuantType.Q5_K) b[16 + l] |= (byte)((codes[i] >> 4) << (2 * chunk + high));
            }
            var x = new float[256];
            ScalarKQuant.Dequantize(type, b, x);
            for (int i = 0; i < 256; i++)
            {
                int j = i / 32;
                Assert.Equal(1.0 * sc[j] * codes[i] - 0.5 * m[j], x[i]);   // small integers and halves: exact in fp32
            }
        }
    }

    [Fact]
    public void Q6_K_LayoutGivesTheValuesOfTheDefinition()
    {
        var b = new byte[KQuantFormat.BlockBytes(KQuantType.Q6_K)];
        var scales = new sbyte[16];
        for (int j = 0; j < 16; j++) scales[j] = (sbyte)(j % 2 == 0 ? 3 + j : -5 - j);
        var codes = new int[256];
        for (int i = 0; i < 256; i++) codes[i] = (i * 13 + 5) % 64;
        for (int i = 0; i < 256; i++)
        {
            int half = i / 128, k = i % 128, quarter = k / 32, l = k % 32;
            // ql: quarters 0/1 low nibbles of bytes 0..31 / 32..63, quarters 2/3 their high nibbles; qh: 2 bits per quarter.
            b[64 * half + 32 * (quarter % 2) + l] |= (byte)((codes[i] & 15) << (4 * (quarter / 2)));
            b[128 + 32 * half + l] |= (byte)((codes[i] >> 4) << (2 * quarter));
        }
        for (int j = 0; j < 16; j++) b[192 + j] = (byte)scales[j];
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(208), 0x3800);   // d = 0.5
        var x = new float[256];
        ScalarKQuant.Dequantize(KQuantType.Q6_K, b, x);
        for (int i = 0; i < 256; i++) Assert.Equal(0.5 * scales[i / 16] * (codes[i] - 32), x[i]);
    }

    [Fact]
    public void Q2_K_And_Q3_K_LayoutGivesTheValuesOfTheDefinition()
    {
        // Q2_K: scale byte s = (j mod 15 + 1) | (15−j) << 4 for sub-block j of 16; d = 1, dmin = 0.25.
        var b = new byte[84];
        var codes = new int[256];
        for (int i = 0; i < 256; i++) codes[i] = (i * 5 + i / 16) % 4;
        for (int j = 0; j < 16; j++) b[j] = (byte)((j % 15 + 1) | ((15 - j) << 4));
        for (int i = 0; i < 256; i++)
        {
            int half = i / 128, k = i % 128, shift = k / 32, l = k % 32;
            b[16 + 32 * half + l] |= (byte)(codes[i] << (2 * shift));
        }
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(80), 0x3C00);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(82), 0x3400);
        var x = new float[256];
        ScalarKQuant.Dequantize(KQuantType.Q2_K, b, x);
        for (int i = 0; i < 256; i++) Assert.True((i / 16 % 15 + 1) * codes[i] - 0.25 * (15 - i / 16) == x[i], $"Q2_K [{i}]: {x[i]}");

        // Q3_K: signed 6-bit scales s_j − 32 with s_j = 4j+1; 3-bit codes c − 4 where the high bit lives in hmask.
        var q3 = new byte[110];
        var s = new int[16];
        for (int j = 0; j < 16; j++) s[j] = 4 * j + 1;
        for (int j = 0; j < 16; j++)
        {
            q3[96 + j % 8] |= (byte)((s[j] & 15) << (4 * (j / 8)));
            q3[96 + 8 + j % 4] |= (byte)((s[j] >> 4) << (2 * (j / 4)));
        }
        var c3 = new int[256];
        for (int i = 0; i < 256; i++) c3[i] = (i * 3 + i / 64) % 8;
        for (int i = 0; i < 256; i++)
        {
            int half = i / 128, k = i % 128, shift = k / 32, l = k % 32;
            q3[32 + 32 * half + l] |= (byte)((c3[i] & 3) << (2 * shift));
            if (c3[i] >= 4) q3[l] |= (byte)(1 << (4 * half + shift));
        }
        BinaryPrimitives.WriteUInt16LittleEndian(q3.AsSpan(108), 0x3C00);
        ScalarKQuant.Dequantize(KQuantType.Q3_K, q3, x);
        for (int i = 0; i < 256; i++) Assert.Equal((s[i / 16] - 32) * (c3[i] - 4), x[i]);
    }

    /// <summary>
    /// Tessera's quantizers put each weight on the code nearest to it under the scales they stored
    /// (ties either way), and the codes span each sub-block: the error of every weight is at most half
    /// a step of its sub-block plus the rounding of the stored scales, checked here as "no other code is closer".
    /// </summary>
    [Theory]
    [InlineData(KQuantType.Q4_K)]
    [InlineData(KQuantType.Q5_K)]
    [InlineData(KQuantType.Q6_K)]
    public void QuantizerPicksTheNearestCodeUnderTheStoredScales(KQuantType type)
    {
        var r = new Random(5);
        var w = new float[3 * 256];
        for (int i = 0; i < w.Length; i++) w[i] = (float)((r.NextDouble() * 2 - 1) * (1 + i / 256));
        var blocks = new byte[KQuantFormat.Bytes(type, w.Length)];
        ScalarKQuant.Quantize(type, w, blocks);
        var back = new float[w.Length];
        ScalarKQuant.Dequantize(type, blocks, back);
        // Every code of a weight's sub-block, dequantized through a block whose codes are all that value.
        int levels = type switch { KQuantType.Q4_K => 16, KQuantType.Q5_K => 32, _ => 64 };
        double worst = 0;
        for (int i = 0; i < w.Length; i++)
        {
            double err = Math.Abs(back[i] - w[i]);
            foreach (double v in Grid(type, blocks, i, levels))
                Assert.True(err <= Math.Abs(v - w[i]) + 1e-5, $"{type} [{i}]: {back[i]} for {w[i]}, but {v} is a code nearer to it");
            worst = Math.Max(worst, err);
        }
        double step = 2.0 * 3 / (levels - 1);   // the widest sub-block spans ≤ 6 (range 2·3) over levels−1 steps
        Assert.True(worst <= step, $"{type}: worst error {worst} exceeds one step {step}");
    }

    /// <summary>The values weight <paramref name="i"/>'s sub-block can represent.</summary>
    static IEnumerable<double> Grid(KQuantType type, byte[] blocks, int i, int levels)
    {
        int bytes = KQuantFormat.BlockBytes(type), sb = i / 256, k = i % 256;
        var b = blocks.AsSpan(sb * bytes, bytes);
        var values = new double[levels];
        if (type == KQuantType.Q6_K)
        {
            double d = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(b[208..]));
            float dj = (float)d * (sbyte)b[192 + k / 16];
            for (int q = 0; q < levels; q++) values[q] = dj * (q - 32);
            return values;
        }
        float dd = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(b)), dm = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(b[2..]));
        var (sc, m) = KQuantFormat.ScaleMin(b.Slice(4, 12), k / 32);
        for (int q = 0; q < levels; q++) values[q] = dd * sc * q - dm * m;
        return values;
    }

    [Fact]
    public void LengthsThatAreNotWholeSuperBlocksAreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => KQuantFormat.CheckedSuperBlocks(300));
        Assert.Contains("256", e.Message);
        Assert.Throws<ArgumentException>(() => ScalarKQuant.Dequantize(KQuantType.Q4_K, new byte[144], new float[256 + 32]));
        Assert.Throws<ArgumentException>(() => ScalarKQuant.Quantize(KQuantType.Q3_K, new float[256], new byte[110]));
    }
}
