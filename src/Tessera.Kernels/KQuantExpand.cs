using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>
/// K-quant super-blocks → fp32 weights, 16 at a time (AVX-512: bytes zero-extended to int32, converted,
/// then one multiply and one subtract per vector, the same two fp32 roundings as the scalar twin
/// <see cref="ScalarKQuant.Dequantize"/>, so the values are identical bit for bit). The engine
/// expands a few weight rows at a time into an L1/L2-sized tile and multiplies that in fp32, so a
/// K-quant matrix crosses memory at its stored size. Q2_K and Q3_K, and CPUs without AVX-512, use
/// the twin itself.
/// </summary>
public static unsafe class KQuantExpand
{
    /// <summary>Writes the 256·<paramref name="superBlocks"/> weights of one row of <paramref name="type"/> blocks at <paramref name="src"/> to <paramref name="dst"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Row(KQuantType type, byte* src, int superBlocks, float* dst)
    {
        int bytes = KQuantFormat.BlockBytes(type);
        if (!Avx512F.IsSupported || type is KQuantType.Q2_K or KQuantType.Q3_K)
        {
            ScalarKQuant.Dequantize(type, new ReadOnlySpan<byte>(src, superBlocks * bytes), new Span<float>(dst, superBlocks * KQuantFormat.SuperBlock));
            return;
        }
        for (int i = 0; i < superBlocks; i++, src += bytes, dst += KQuantFormat.SuperBlock)
        {
            switch (type)
            {
                case KQuantType.Q4_K: Q4K(src, dst); break;
                case KQuantType.Q5_K: Q5K(src, dst); break;
                default: Q6K(src, dst); break;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Floats(Vector128<byte> codes) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(codes));

    static float Half(byte* p) => QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(p, 2)));

    static void Q4K(byte* b, float* y)
    {
        float d = Half(b), dmin = Half(b + 2);
        var scales = new ReadOnlySpan<byte>(b + 4, 12);
        byte* q = b + 16;
        var low = Vector128.Create((byte)0x0F);
        for (int c = 0; c < 4; c++, q += 32, y += 64)
        {
            var (s1, m1i) = KQuantFormat.ScaleMin(scales, 2 * c);
            var (s2, m2i) = KQuantFormat.ScaleMin(scales, 2 * c + 1);
            Vector512<float> d1 = Vector512.Create(d * s1), m1 = Vector512.Create(dmin * m1i), d2 = Vector512.Create(d * s2), m2 = Vector512.Create(dmin * m2i);
            for (int l = 0; l < 32; l += 16)
            {
                var v = Vector128.Load(q + l);
                Vector512.Store(d1 * Floats(v & low) - m1, y + l);
                Vector512.Store(d2 * Floats(Vector128.ShiftRightLogical(v, 4)) - m2, y + 32 + l);
            }
        }
    }

    static void Q5K(byte* b, float* y)
    {
        float d = Half(b), dmin = Half(b + 2);
        var scales = new ReadOnlySpan<byte>(b + 4, 12);
        byte* qh = b + 16, ql = b + 48;
        Vector128<byte> low = Vector128.Create((byte)0x0F), one = Vector128.Create((byte)1);
        for (int c = 0; c < 4; c++, ql += 32, y += 64)
        {
            var (s1, m1i) = KQuantFormat.ScaleMin(scales, 2 * c);
            var (s2, m2i) = KQuantFormat.ScaleMin(scales, 2 * c + 1);
            Vector512<float> d1 = Vector512.Create(d * s1), m1 = Vector512.Create(dmin * m1i), d2 = Vector512.Create(d * s2), m2 = Vector512.Create(dmin * m2i);
            for (int l = 0; l < 32; l += 16)
            {
                var v = Vector128.Load(ql + l);
                var h = Vector128.Load(qh + l);
                var hi1 = Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 2 * c) & one, 4);
                var hi2 = Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 2 * c + 1) & one, 4);
                Vector512.Store(d1 * Floats((v & low) | hi1) - m1, y + l);
                Vector512.Store(d2 * Floats(Vector128.ShiftRightLogical(v, 4) | hi2) - m2, y + 32 + l);
            }
        }
    }

    static void Q6K(byte* b, float* y)
    {
        byte* ql = b, qh = b + 128;
        sbyte* sc = (sbyte*)(b + 192);
        float d = Half(b + 208);
        Vector128<byte> low = Vector128.Create((byte)0x0F), three = Vector128.Create((byte)3);
        var bias = Vector512.Create(32);
        for (int c = 0; c < 2; c++, ql += 64, qh += 32, sc += 8, y += 128)
            for (int l = 0; l < 32; l += 16)
            {
                int s = l / 16;
                Vector128<byte> a = Vector128.Load(ql + l), a2 = Vector128.Load(ql + 32 + l), h = Vector128.Load(qh + l);
                var q1 = (a & low) | Vector128.ShiftLeft(h & three, 4);
                var q2 = (a2 & low) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 2) & three, 4);
                var q3 = Vector128.ShiftRightLogical(a, 4) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 4) & three, 4);
                var q4 = Vector128.ShiftRightLogical(a2, 4) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 6), 4);
                Vector512.Store(Vector512.Create(d * sc[s]) * Centered(q1, bias), y + l);
                Vector512.Store(Vector512.Create(d * sc[s + 2]) * Centered(q2, bias), y + 32 + l);
                Vector512.Store(Vector512.Create(d * sc[s + 4]) * Centered(q3, bias), y + 64 + l);
                Vector512.Store(Vector512.Create(d * sc[s + 6]) * Centered(q4, bias), y + 96 + l);
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Centered(Vector128<byte> codes, Vector512<int> bias) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(codes) - bias);
}
