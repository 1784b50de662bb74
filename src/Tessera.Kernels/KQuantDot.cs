using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>
/// One activation row · four K-quant weight rows (Q4_K, Q5_K, Q6_K), with each weight dequantized in
/// registers straight into the FMA: the batch-1 decode loop, which streams the super-blocks once at
/// their stored size and never writes an fp32 tile. The weight values are exactly those of
/// <see cref="KQuantExpand"/> (ggml's <c>dequantize_row_*</c> in fp32) and the sums run lane-wise in K
/// order with <see cref="LaneSums.Sum4"/> at the end, as <see cref="DecodeMatMul.Tile"/> does for one
/// row, so a row's result is the same bit for bit whether it goes through here or through the
/// expanded tile of a batched step. Twin: <see cref="ScalarKQuantDot"/>.
/// <para>
/// Q4_K and Q5_K dequantize by table: within a sub-block of 32 every weight is <c>d·sc·q − dmin·m</c>
/// for a code q of 4 (5) bits, so the 16 (32) possible values are computed once per sub-block (one
/// vector multiply and subtract, the scalar twin's two roundings) and each 16 codes become weights by
/// one permute (<c>vpermps</c> reads only the low 4 index bits, <c>vpermt2ps</c> the low 5), instead
/// of a convert, a multiply and a subtract per 16 weights. Q6_K (64 codes, a scale per 16) converts
/// and multiplies directly.
/// </para>
/// </summary>
public static unsafe class KQuantDot
{
    /// <summary>Whether <see cref="Dot4"/> runs here (AVX-512 and one of Q4_K, Q5_K, Q6_K).</summary>
    public static bool Supported(KQuantType type) => Avx512F.IsSupported && type is KQuantType.Q4_K or KQuantType.Q5_K or KQuantType.Q6_K;

    /// <summary>
    /// [w0·x, w1·x, w2·x, w3·x] for four rows of <paramref name="superBlocks"/> super-blocks each and x of
    /// 256·<paramref name="superBlocks"/> floats. <paramref name="ahead"/> (may be null) is prefetched
    /// as the next tile's bytes, <paramref name="aheadBytes"/> per super-block step.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Vector128<float> Dot4(KQuantType type, byte* w0, byte* w1, byte* w2, byte* w3, float* x, int superBlocks, byte* ahead, int aheadBytes)
    {
        if (!Supported(type)) throw new PlatformNotSupportedException($"KQuantDot: {type} needs AVX-512 and one of Q4_K, Q5_K, Q6_K.");
        int bytes = KQuantFormat.BlockBytes(type);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int s = 0; s < superBlocks; s++, x += KQuantFormat.SuperBlock)
        {
            long o = (long)s * bytes;
            // Rows are short (a few super-blocks): the hardware prefetcher does not find four streams.
            if (ahead != null)
                for (int line = 0; line < aheadBytes; line += 64) Sse.Prefetch0(ahead + (long)s * aheadBytes + line);
            switch (type)
            {
                case KQuantType.Q4_K:
                    a0 = Q4K(w0 + o, x, a0); a1 = Q4K(w1 + o, x, a1); a2 = Q4K(w2 + o, x, a2); a3 = Q4K(w3 + o, x, a3);
                    break;
                case KQuantType.Q5_K:
                    a0 = Q5K(w0 + o, x, a0); a1 = Q5K(w1 + o, x, a1); a2 = Q5K(w2 + o, x, a2); a3 = Q5K(w3 + o, x, a3);
                    break;
                default:
                    a0 = Q6K(w0 + o, x, a0); a1 = Q6K(w1 + o, x, a1); a2 = Q6K(w2 + o, x, a2); a3 = Q6K(w3 + o, x, a3);
                    break;
            }
        }
        return LaneSums.Sum4(a0, a1, a2, a3);
    }

    static float Half(byte* p) => QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(p, 2)));

    static Vector512<float> Iota => Vector512.Create(0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Fma(float* x, Vector512<float> w, Vector512<float> acc) => Avx512F.FusedMultiplyAdd(Vector512.Load(x), w, acc);

    /// <summary>One Q4_K super-block: 4 × (two sub-blocks of 32 sharing 32 bytes of nibbles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Q4K(byte* b, float* x, Vector512<float> acc)
    {
        float d = Half(b), dmin = Half(b + 2);
        var scales = new ReadOnlySpan<byte>(b + 4, 12);
        byte* q = b + 16;
        var iota = Iota;
        for (int c = 0; c < 4; c++, q += 32, x += 64)
        {
            var (s1, m1) = KQuantFormat.ScaleMin(scales, 2 * c);
            var (s2, m2) = KQuantFormat.ScaleMin(scales, 2 * c + 1);
            // The 16 values of each sub-block: d·sc·q − dmin·m for q = 0..15 (product, then difference).
            var t1 = Vector512.Create(d * s1) * iota - Vector512.Create(dmin * m1);
            var t2 = Vector512.Create(d * s2) * iota - Vector512.Create(dmin * m2);
            var v0 = Avx512F.ConvertToVector512Int32(Vector128.Load(q));        // bytes zero-extended: bits 0..3 index t1
            var v1 = Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16));
            acc = Fma(x, Avx512F.PermuteVar16x32(t1, v0), acc);
            acc = Fma(x + 16, Avx512F.PermuteVar16x32(t1, v1), acc);
            acc = Fma(x + 32, Avx512F.PermuteVar16x32(t2, Avx512F.ShiftRightLogical(v0, 4)), acc);
            acc = Fma(x + 48, Avx512F.PermuteVar16x32(t2, Avx512F.ShiftRightLogical(v1, 4)), acc);
        }
        return acc;
    }

    /// <summary>One Q5_K super-block: as Q4_K with a fifth bit from qh, so 32-entry tables (two vectors).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Q5K(byte* b, float* x, Vector512<float> acc)
    {
        float d = Half(b), dmin = Half(b + 2);
        var scales = new ReadOnlySpan<byte>(b + 4, 12);
        byte* ql = b + 48;
        var iota = Iota;
        var iota16 = iota + Vector512.Create(16f);
        var bit4 = Vector512.Create(16);
        // h holds qh >> 2c: bit 0 is the fifth bit of the low-nibble weights, bit 1 that of the high ones.
        var h0 = Avx512F.ConvertToVector512Int32(Vector128.Load(b + 16));
        var h1 = Avx512F.ConvertToVector512Int32(Vector128.Load(b + 32));
        for (int c = 0; c < 4; c++, ql += 32, x += 64)
        {
            var (s1, m1) = KQuantFormat.ScaleMin(scales, 2 * c);
            var (s2, m2) = KQuantFormat.ScaleMin(scales, 2 * c + 1);
            Vector512<float> ds1 = Vector512.Create(d * s1), dm1 = Vector512.Create(dmin * m1);
            Vector512<float> ds2 = Vector512.Create(d * s2), dm2 = Vector512.Create(dmin * m2);
            Vector512<float> t1 = ds1 * iota - dm1, u1 = ds1 * iota16 - dm1;
            Vector512<float> t2 = ds2 * iota - dm2, u2 = ds2 * iota16 - dm2;
            var v0 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql));
            var v1 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + 16));
            // Index = code bits 0..3 with bit 4 taken from h (vpermt2ps ignores bits 5 and up).
            acc = Fma(x, Avx512F.PermuteVar16x32x2(t1, Vector512.ConditionalSelect(bit4, Avx512F.ShiftLeftLogical(h0, 4), v0), u1), acc);
            acc = Fma(x + 16, Avx512F.PermuteVar16x32x2(t1, Vector512.ConditionalSelect(bit4, Avx512F.ShiftLeftLogical(h1, 4), v1), u1), acc);
            acc = Fma(x + 32, Avx512F.PermuteVar16x32x2(t2, Vector512.ConditionalSelect(bit4, Avx512F.ShiftLeftLogical(h0, 3), Avx512F.ShiftRightLogical(v0, 4)), u2), acc);
            acc = Fma(x + 48, Avx512F.PermuteVar16x32x2(t2, Vector512.ConditionalSelect(bit4, Avx512F.ShiftLeftLogical(h1, 3), Avx512F.ShiftRightLogical(v1, 4)), u2), acc);
            h0 = Avx512F.ShiftRightLogical(h0, 2);
            h1 = Avx512F.ShiftRightLogical(h1, 2);
        }
        return acc;
    }

    /// <summary>One Q6_K super-block: d·sc·(q − 32), a scale per 16 weights, computed as the twin does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Q6K(byte* b, float* x, Vector512<float> acc)
    {
        byte* ql = b, qh = b + 128;
        sbyte* sc = (sbyte*)(b + 192);
        float d = Half(b + 208);
        var low = Vector512.Create(0x0F);
        var high = Vector512.Create(0x30);
        var bias = Vector512.Create(32);
        for (int c = 0; c < 2; c++, ql += 64, qh += 32, sc += 8, x += 128)
        {
            // Weights 0..127 of this half: four runs of 32, each run as two vectors of 16 (l = 0, 16).
            var a0 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql));
            var a1 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + 16));
            var b0 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + 32));
            var b1 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + 48));
            var h0 = Avx512F.ConvertToVector512Int32(Vector128.Load(qh));
            var h1 = Avx512F.ConvertToVector512Int32(Vector128.Load(qh + 16));
            acc = Fma(x, Q6Values(a0, Avx512F.ShiftLeftLogical(h0, 4), d * sc[0], low, high, bias), acc);
            acc = Fma(x + 16, Q6Values(a1, Avx512F.ShiftLeftLogical(h1, 4), d * sc[1], low, high, bias), acc);
            acc = Fma(x + 32, Q6Values(b0, Avx512F.ShiftLeftLogical(h0, 2), d * sc[2], low, high, bias), acc);
            acc = Fma(x + 48, Q6Values(b1, Avx512F.ShiftLeftLogical(h1, 2), d * sc[3], low, high, bias), acc);
            acc = Fma(x + 64, Q6Values(Avx512F.ShiftRightLogical(a0, 4), h0, d * sc[4], low, high, bias), acc);
            acc = Fma(x + 80, Q6Values(Avx512F.ShiftRightLogical(a1, 4), h1, d * sc[5], low, high, bias), acc);
            acc = Fma(x + 96, Q6Values(Avx512F.ShiftRightLogical(b0, 4), Avx512F.ShiftRightLogical(h0, 2), d * sc[6], low, high, bias), acc);
            acc = Fma(x + 112, Q6Values(Avx512F.ShiftRightLogical(b1, 4), Avx512F.ShiftRightLogical(h1, 2), d * sc[7], low, high, bias), acc);
        }
        return acc;
    }

    /// <summary>(d·sc)·((lo &amp; 15 | hi &amp; 48) − 32) in fp32, where <paramref name="hi"/> has the two high bits at bits 4..5.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Q6Values(Vector512<int> lo, Vector512<int> hi, float scale, Vector512<int> low, Vector512<int> high, Vector512<int> bias)
    {
        var code = (lo & low) | (hi & high);
        return Vector512.Create(scale) * Avx512F.ConvertToVector512Single(code - bias);
    }
}
