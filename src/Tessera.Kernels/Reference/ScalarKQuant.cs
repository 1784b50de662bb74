using System.Buffers.Binary;

namespace Tessera.Kernels.Reference;

/// <summary>
/// Scalar twin of <see cref="KQuantExpand"/>: ggml's K-quant dequantization (see
/// <see cref="KQuantFormat"/> for the layouts), one weight at a time, in the fp32 operations ggml's
/// <c>dequantize_row_q{2,3,4,5,6}_K</c> use. Also simple quantizers for Q4_K, Q5_K and Q6_K, so
/// tests and <c>--quantize</c> can make K-quant matrices without llama.cpp. They are not ggml's
/// weighted iterative search (make_qkx2_quants / make_qx_quants): each sub-block's range is taken
/// as it is (min…max for Q4_K/Q5_K, max|x| for Q6_K), the scales are rounded to their 6- or 8-bit
/// codes, then each weight is rounded to the nearest code under the stored scales. Files made by
/// llama.cpp's quantizer are read exactly whatever search made them.
/// </summary>
public static class ScalarKQuant
{
    const int QK = KQuantFormat.SuperBlock;

    /// <summary>x = the weights the super-blocks represent (x.Length a multiple of 256).</summary>
    public static void Dequantize(KQuantType type, ReadOnlySpan<byte> blocks, Span<float> x)
    {
        long nb = KQuantFormat.CheckedSuperBlocks(x.Length);
        int bytes = KQuantFormat.BlockBytes(type);
        if (blocks.Length != nb * bytes) throw new ArgumentException($"ScalarKQuant.Dequantize: {nb} {type} super-blocks need {nb * bytes} bytes, got {blocks.Length}.");
        for (int i = 0; i < nb; i++)
        {
            var b = blocks.Slice(i * bytes, bytes);
            var y = x.Slice(i * QK, QK);
            switch (type)
            {
                case KQuantType.Q2_K: Q2K(b, y); break;
                case KQuantType.Q3_K: Q3K(b, y); break;
                case KQuantType.Q4_K: Q4K(b, y); break;
                case KQuantType.Q5_K: Q5K(b, y); break;
                default: Q6K(b, y); break;
            }
        }
    }

    static float Half(ReadOnlySpan<byte> b, int at) => QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(b[at..]));

    static void Q4K(ReadOnlySpan<byte> b, Span<float> y)
    {
        float d = Half(b, 0), dmin = Half(b, 2);
        var scales = b.Slice(4, 12);
        var q = b[16..];
        for (int c = 0; c < 4; c++)
        {
            var (s1, m1i) = KQuantFormat.ScaleMin(scales, 2 * c);
            var (s2, m2i) = KQuantFormat.ScaleMin(scales, 2 * c + 1);
            float d1 = d * s1, m1 = dmin * m1i, d2 = d * s2, m2 = dmin * m2i;
            for (int l = 0; l < 32; l++)
            {
                y[64 * c + l] = d1 * (q[32 * c + l] & 0x0F) - m1;
                y[64 * c + 32 + l] = d2 * (q[32 * c + l] >> 4) - m2;
            }
        }
    }

    static void Q5K(ReadOnlySpan<byte> b, Span<float> y)
    {
        float d = Half(b, 0), dmin = Half(b, 2);
        var scales = b.Slice(4, 12);
        var qh = b.Slice(16, 32);
        var ql = b[48..];
        for (int c = 0; c < 4; c++)
        {
            var (s1, m1i) = KQuantFormat.ScaleMin(scales, 2 * c);
            var (s2, m2i) = KQuantFormat.ScaleMin(scales, 2 * c + 1);
            float d1 = d * s1, m1 = dmin * m1i, d2 = d * s2, m2 = dmin * m2i;
            for (int l = 0; l < 32; l++)
            {
                y[64 * c + l] = d1 * ((ql[32 * c + l] & 0x0F) + (((qh[l] >> (2 * c)) & 1) << 4)) - m1;
                y[64 * c + 32 + l] = d2 * ((ql[32 * c + l] >> 4) + (((qh[l] >> (2 * c + 1)) & 1) << 4)) - m2;
            }
        }
    }

    static void Q6K(ReadOnlySpan<byte> b, Span<float> y)
    {
        var ql = b[..128];
        var qh = b.Slice(128, 64);
        var sc = b.Slice(192, 16);
        float d = Half(b, 208);
        for (int c = 0; c < 2; c++)
            for (int l = 0; l < 32; l++)
            {
                int a = ql[64 * c + l], a2 = ql[64 * c + 32 + l], h = qh[32 * c + l], s = 8 * c + l / 16;
                y[128 * c + l] = d * (sbyte)sc[s] * (((a & 0x0F) | ((h & 3) << 4)) - 32);
                y[128 * c + 32 + l] = d * (sbyte)sc[s + 2] * (((a2 & 0x0F) | (((h >> 2) & 3) << 4)) - 32);
                y[128 * c + 64 + l] = d * (sbyte)sc[s + 4] * (((a >> 4) | (((h >> 4) & 3) << 4)) - 32);
                y[128 * c + 96 + l] = d * (sbyte)sc[s + 6] * (((a2 >> 4) | (((h >> 6) & 3) << 4)) - 32);
            }
    }

    static void Q2K(ReadOnlySpan<byte> b, Span<float> y)
    {
        var scales = b[..16];
        var q = b.Slice(16, 64);
        float d = Half(b, 80), dmin = Half(b, 82);
        int at = 0, s = 0;
        for (int c = 0; c < 2; c++)
            for (int shift = 0; shift < 8; shift += 2)
                for (int half = 0; half < 2; half++)
                {
                    int sc = scales[s++];
                    float dl = d * (sc & 0x0F), ml = dmin * (sc >> 4);
                    for (int l = 0; l < 16; l++) y[at++] = dl * ((q[32 * c + 16 * half + l] >> shift) & 3) - ml;
                }
    }

    static void Q3K(ReadOnlySpan<byte> b, Span<float> y)
    {
        var hm = b[..32];
        var q = b.Slice(32, 64);
        var packed = b.Slice(96, 12);
        float d = Half(b, 108);
        // 16 signed 6-bit scales: low 4 bits from bytes 0..7 (low nibbles, then high nibbles), top 2 bits from bytes 8..11.
        Span<int> scales = stackalloc int[16];
        for (int j = 0; j < 16; j++)
        {
            int low = j < 8 ? packed[j] & 0x0F : packed[j - 8] >> 4;
            scales[j] = (low | (((packed[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
        }
        int at = 0, s = 0, m = 1;
        for (int c = 0; c < 2; c++)
            for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                for (int half = 0; half < 2; half++)
                {
                    float dl = d * scales[s++];
                    for (int l = 0; l < 16; l++)
                    {
                        int k = 16 * half + l;
                        y[at++] = dl * (((q[32 * c + k] >> shift) & 3) - ((hm[k] & m) != 0 ? 0 : 4));
                    }
                }
    }

    /// <summary>Quantizes x (a multiple of 256 long) to <paramref name="type"/> (Q4_K, Q5_K or Q6_K); see the class remarks.</summary>
    public static void Quantize(KQuantType type, ReadOnlySpan<float> x, Span<byte> blocks)
    {
        if (type is not (KQuantType.Q4_K or KQuantType.Q5_K or KQuantType.Q6_K))
            throw new ArgumentException($"ScalarKQuant.Quantize: Tessera writes Q4_K, Q5_K and Q6_K, not {type}.");
        long nb = KQuantFormat.CheckedSuperBlocks(x.Length);
        int bytes = KQuantFormat.BlockBytes(type);
        if (blocks.Length != nb * bytes) throw new ArgumentException($"ScalarKQuant.Quantize: {nb} {type} super-blocks need {nb * bytes} bytes, got {blocks.Length}.");
        for (int i = 0; i < nb; i++)
        {
            var b = blocks.Slice(i * bytes, bytes);
            b.Clear();
            if (type == KQuantType.Q6_K) QuantizeQ6K(x.Slice(i * QK, QK), b);
            else QuantizeQ45K(x.Slice(i * QK, QK), b, type == KQuantType.Q5_K ? 31 : 15);
        }
    }

    static int Nearest(float v) => (int)MathF.Round(v, MidpointRounding.ToEven);

    static void QuantizeQ45K(ReadOnlySpan<float> x, Span<byte> b, int levels)
    {
        Span<float> scale = stackalloc float[8], min = stackalloc float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            float lo = 0, hi = float.MinValue;   // the offset is a subtracted min ≥ 0, so lo ≤ 0
            for (int l = 0; l < 32; l++) { lo = MathF.Min(lo, x[32 * j + l]); hi = MathF.Max(hi, x[32 * j + l]); }
            scale[j] = (hi - lo) / levels;
            min[j] = -lo;
            maxScale = MathF.Max(maxScale, scale[j]);
            maxMin = MathF.Max(maxMin, min[j]);
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0, invMin = maxMin > 0 ? 63f / maxMin : 0;
        var packed = b.Slice(4, 12);
        for (int j = 0; j < 8; j++)
        {
            int ls = Math.Min(63, Nearest(invScale * scale[j])), lm = Math.Min(63, Nearest(invMin * min[j]));
            if (j < 4) { packed[j] = (byte)ls; packed[j + 4] = (byte)lm; }
            else
            {
                packed[j + 4] = (byte)((ls & 0x0F) | ((lm & 0x0F) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
        }
        ushort dBits = QuantFormat.ToHalf(maxScale / 63f), mBits = QuantFormat.ToHalf(maxMin / 63f);
        BinaryPrimitives.WriteUInt16LittleEndian(b, dBits);
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], mBits);
        float d = QuantFormat.FromHalf(dBits), dmin = QuantFormat.FromHalf(mBits);
        Span<int> L = stackalloc int[QK];
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = KQuantFormat.ScaleMin(packed, j);
            float dj = d * sc, mj = dmin * m;
            for (int l = 0; l < 32; l++) L[32 * j + l] = dj == 0 ? 0 : Math.Clamp(Nearest((x[32 * j + l] + mj) / dj), 0, levels);
        }
        if (levels == 15)
        {
            var q = b[16..];
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++) q[32 * c + l] = (byte)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
            return;
        }
        var qh = b.Slice(16, 32);
        var ql = b[48..];
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
            {
                int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                ql[32 * c + l] = (byte)((l1 & 0x0F) | ((l2 & 0x0F) << 4));
                qh[l] |= (byte)(((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
            }
    }

    static void QuantizeQ6K(ReadOnlySpan<float> x, Span<byte> b)
    {
        Span<float> scale = stackalloc float[16];
        float maxAbs = 0;
        for (int j = 0; j < 16; j++)
        {
            float amax = 0;
            for (int l = 0; l < 16; l++) amax = MathF.Max(amax, MathF.Abs(x[16 * j + l]));
            scale[j] = amax / 31;
            maxAbs = MathF.Max(maxAbs, scale[j]);
        }
        ushort dBits = QuantFormat.ToHalf(maxAbs / 127);
        BinaryPrimitives.WriteUInt16LittleEndian(b[208..], dBits);
        float d = QuantFormat.FromHalf(dBits);
        var sc = b.Slice(192, 16);
        Span<int> L = stackalloc int[QK];
        for (int j = 0; j < 16; j++)
        {
            int s = d == 0 ? 0 : Math.Clamp(Nearest(scale[j] / d), -128, 127);
            sc[j] = (byte)(sbyte)s;
            float dj = d * s;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (dj == 0 ? 0 : Math.Clamp(Nearest(x[16 * j + l] / dj), -32, 31)) + 32;
        }
        var ql = b[..128];
        var qh = b.Slice(128, 64);
        for (int c = 0; c < 2; c++)
            for (int l = 0; l < 32; l++)
            {
                int q1 = L[128 * c + l], q2 = L[128 * c + 32 + l], q3 = L[128 * c + 64 + l], q4 = L[128 * c + 96 + l];
                ql[64 * c + l] = (byte)((q1 & 0x0F) | ((q3 & 0x0F) << 4));
                ql[64 * c + 32 + l] = (byte)((q2 & 0x0F) | ((q4 & 0x0F) << 4));
                qh[32 * c + l] = (byte)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
    }
}
