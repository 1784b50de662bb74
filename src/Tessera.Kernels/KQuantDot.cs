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
    public static Vector128<float> Dot4(KQuantType type, byte* w0, byte* w1, byte* w2, byte* w3, float* x, int superBlocks, byte* ahead, int aheadBytes)
    {
        if (!Supported(type)) throw new PlatformNotSupportedException($"KQuantDot: {type} needs AVX-512 and one of Q4_K, Q5_K, Q6_K.");
        // One loop per type: all three inlined into one method would exceed the JIT's inlining budget.
        return type switch
        {
            KQuantType.Q4_K => Dot4Q4K(w0, w1, w2, w3, x, superBlocks, ahead, aheadBytes),
            KQuantType.Q5_K => Dot4Q5K(w0, w1, w2, w3, x, superBlocks, ahead, aheadBytes),
            _ => Dot4Q6K(w0, w1, w2, w3, x, superBlocks, ahead, aheadBytes),
        };
    }

    /// <summary>Prefetches the next tile's share of one super-block step (rows are a few super-blocks: the hardware prefetcher does not find four streams).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Ahead(byte* ahead, int s, int aheadBytes)
    {
        if (ahead == null) return;
        byte* p = ahead + (long)s * aheadBytes;
        for (int line = 0; line < aheadBytes; line += 64) Sse.Prefetch0(p + line);
    }

    // The four rows advance together, one quarter super-block each in turn: each row's sum is one
    // dependent FMA chain (the order the tile path uses), so four interleaved chains keep the FMA
    // units busy where one row at a time would wait on FMA latency.

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector128<float> Dot4Q4K(byte* w0, byte* w1, byte* w2, byte* w3, float* x, int superBlocks, byte* ahead, int aheadBytes)
    {
        const int Bytes = 144;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float* f = stackalloc float[64];   // per row, 16 fp32 scale products of the current super-block
        for (int s = 0; s < superBlocks; s++, x += KQuantFormat.SuperBlock)
        {
            long o = (long)s * Bytes;
            Ahead(ahead, s, aheadBytes);
            ScalesMins(w0 + o, f); ScalesMins(w1 + o, f + 16); ScalesMins(w2 + o, f + 32); ScalesMins(w3 + o, f + 48);
            byte* q0 = w0 + o + 16, q1 = w1 + o + 16, q2 = w2 + o + 16, q3 = w3 + o + 16;
            float* xc = x, fc = f;
            for (int c = 0; c < 4; c++, q0 += 32, q1 += 32, q2 += 32, q3 += 32, xc += 64, fc += 2)
            {
                a0 = Q4KQuarter(q0, fc, xc, a0); a1 = Q4KQuarter(q1, fc + 16, xc, a1);
                a2 = Q4KQuarter(q2, fc + 32, xc, a2); a3 = Q4KQuarter(q3, fc + 48, xc, a3);
            }
        }
        return LaneSums.Sum4(a0, a1, a2, a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector128<float> Dot4Q5K(byte* w0, byte* w1, byte* w2, byte* w3, float* x, int superBlocks, byte* ahead, int aheadBytes)
    {
        const int Bytes = 176;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float* f = stackalloc float[64];
        for (int s = 0; s < superBlocks; s++, x += KQuantFormat.SuperBlock)
        {
            long o = (long)s * Bytes;
            Ahead(ahead, s, aheadBytes);
            ScalesMins(w0 + o, f); ScalesMins(w1 + o, f + 16); ScalesMins(w2 + o, f + 32); ScalesMins(w3 + o, f + 48);
            for (int c = 0; c < 4; c++)
            {
                float* xc = x + 64 * c;
                a0 = Q5KQuarter(w0 + o, c, f + 2 * c, xc, a0); a1 = Q5KQuarter(w1 + o, c, f + 16 + 2 * c, xc, a1);
                a2 = Q5KQuarter(w2 + o, c, f + 32 + 2 * c, xc, a2); a3 = Q5KQuarter(w3 + o, c, f + 48 + 2 * c, xc, a3);
            }
        }
        return LaneSums.Sum4(a0, a1, a2, a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector128<float> Dot4Q6K(byte* w0, byte* w1, byte* w2, byte* w3, float* x, int superBlocks, byte* ahead, int aheadBytes)
    {
        const int Bytes = 210;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float* f = stackalloc float[64];
        for (int s = 0; s < superBlocks; s++, x += KQuantFormat.SuperBlock)
        {
            long o = (long)s * Bytes;
            Ahead(ahead, s, aheadBytes);
            Q6Scales(w0 + o, f); Q6Scales(w1 + o, f + 16); Q6Scales(w2 + o, f + 32); Q6Scales(w3 + o, f + 48);
            for (int c = 0; c < 4; c++)
            {
                float* xc = x + 64 * c;
                a0 = Q6KQuarter(w0 + o, c, f, xc, a0); a1 = Q6KQuarter(w1 + o, c, f + 16, xc, a1);
                a2 = Q6KQuarter(w2 + o, c, f + 32, xc, a2); a3 = Q6KQuarter(w3 + o, c, f + 48, xc, a3);
            }
        }
        return LaneSums.Sum4(a0, a1, a2, a3);
    }

    /// <summary>fp16 → fp32 inline: as <see cref="Halves.Finite(Vector512{int})"/> for one value; infinities and NaNs take <see cref="QuantFormat.FromHalf"/>. Equal to it for every input.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Half(byte* p)
    {
        int h = BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(p, 2));
        if ((h & 0x7C00) == 0x7C00) return QuantFormat.FromHalf((ushort)h);
        float f = (h & 0x7C00) == 0 ? (h & 0x3FF) * (1f / (1 << 24)) : BitConverter.Int32BitsToSingle(((h & 0x7FFF) << 13) + ((127 - 15) << 23));
        return (h & 0x8000) != 0 ? -f : f;
    }

    /// <summary>
    /// The 8 (scale, min) pairs of a Q4_K/Q5_K super-block times d and dmin, as 16 floats [d·sc₀ … d·sc₇,
    /// dmin·m₀ … dmin·m₇], unpacked by the rule of <see cref="KQuantFormat.ScaleMin"/> in one vector:
    /// lane i takes ((A ≫ shift) &amp; maskA) | ((B ≫ 2) &amp; maskB) of two bytes A, B of the 12 packed ones.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ScalesMins(byte* b, float* f)
    {
        var raw = Vector128.Load(b);   // fp16 d, fp16 dmin, the 12 packed bytes
        // d in lanes 0..7, dmin in lanes 8..15, both widened in registers (no scalar conversion per super-block).
        var halves = Avx512F.ShiftRightLogicalVariable(Vector512.Create(*(uint*)b), Vector512.Create(0u, 0, 0, 0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 16, 16, 16)).AsInt32() & Vector512.Create(0xFFFF);
        if (Vector512.EqualsAny(halves & Vector512.Create(0x7C00), Vector512.Create(0x7C00)))
        {
            ScalesMinsSlow(b, f);   // an infinite or NaN scale: the exact conversion, once
            return;
        }
        var a = Avx512F.ConvertToVector512Int32(Vector128.Shuffle(raw, Vector128.Create((byte)4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15)));
        var hi = Avx512F.ConvertToVector512Int32(Vector128.Shuffle(raw, Vector128.Create((byte)0, 0, 0, 0, 4, 5, 6, 7, 0, 0, 0, 0, 8, 9, 10, 11)));
        var shift = Vector512.Create(0u, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4);
        var maskA = Vector512.Create(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15);
        var maskB = Vector512.Create(0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30);
        var code = (Avx512F.ShiftRightLogicalVariable(a, shift) & maskA) | (Avx512F.ShiftRightLogical(hi, 2) & maskB);
        Vector512.Store(Avx512F.ConvertToVector512Single(code) * Halves.Finite(halves), f);
    }

    internal static void ScalesMinsSlow(byte* b, float* f)
    {
        float d = Half(b), dmin = Half(b + 2);
        var packed = new ReadOnlySpan<byte>(b + 4, 12);
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = KQuantFormat.ScaleMin(packed, j);
            f[j] = d * sc;
            f[8 + j] = dmin * m;
        }
    }

    static Vector512<float> Iota
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Fma(float* x, Vector512<float> w, Vector512<float> acc) => Avx512F.FusedMultiplyAdd(Vector512.Load(x), w, acc);

    /// <summary>
    /// Weights 64c … 64c + 63 of a Q4_K super-block (32 code bytes at <paramref name="q"/>: low nibbles are
    /// sub-block 2c, high nibbles 2c + 1) into <paramref name="acc"/>; <paramref name="f"/> points at d·sc₂c.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Q4KQuarter(byte* q, float* f, float* x, Vector512<float> acc)
    {
        // The 16 values of each sub-block: d·sc·q − dmin·m for q = 0..15 (product, then difference).
        var iota = Iota;
        var t1 = Vector512.Create(f[0]) * iota - Vector512.Create(f[8]);
        var t2 = Vector512.Create(f[1]) * iota - Vector512.Create(f[9]);
        var v0 = Avx512F.ConvertToVector512Int32(Vector128.Load(q));        // bytes zero-extended: bits 0..3 index t1
        var v1 = Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16));
        acc = Fma(x, Avx512F.PermuteVar16x32(t1, v0), acc);
        acc = Fma(x + 16, Avx512F.PermuteVar16x32(t1, v1), acc);
        acc = Fma(x + 32, Avx512F.PermuteVar16x32(t2, Avx512F.ShiftRightLogical(v0, 4)), acc);
        return Fma(x + 48, Avx512F.PermuteVar16x32(t2, Avx512F.ShiftRightLogical(v1, 4)), acc);
    }

    /// <summary>Quarter c of a Q5_K super-block at <paramref name="b"/>: as Q4_K with a fifth bit from qh, so 32-entry tables (two vectors).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Q5KQuarter(byte* b, int c, float* f, float* x, Vector512<float> acc)
    {
        var iota = Iota;
        var iota16 = iota + Vector512.Create(16f);
        var bit4 = Vector512.Create(16);
        Vector512<float> ds1 = Vector512.Create(f[0]), dm1 = Vector512.Create(f[8]);
        Vector512<float> ds2 = Vector512.Create(f[1]), dm2 = Vector512.Create(f[9]);
        Vector512<float> t1 = ds1 * iota - dm1, u1 = ds1 * iota16 - dm1;
        Vector512<float> t2 = ds2 * iota - dm2, u2 = ds2 * iota16 - dm2;
        byte* ql = b + 48 + 32 * c;
        var v0 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql));
        var v1 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + 16));
        // h = qh ≫ 2c: bit 0 is the fifth bit of the low-nibble weights, bit 1 that of the high ones.
        var shift = Vector512.Create((uint)(2 * c));
        var h0 = Avx512F.ShiftRightLogicalVariable(Avx512F.ConvertToVector512Int32(Vector128.Load(b + 16)), shift);
        var h1 = Avx512F.ShiftRightLogicalVariable(Avx512F.ConvertToVector512Int32(Vector128.Load(b + 32)), shift);
        // Index = code bits 0..3 with bit 4 taken from h (vpermt2ps ignores bits 5 and up).
        acc = Fma(x, Avx512F.PermuteVar16x32x2(t1, Vector512.ConditionalSelect(bit4, Avx512F.ShiftLeftLogical(h0, 4), v0), u1), acc);
        acc = Fma(x + 16, Avx512F.PermuteVar16x32x2(t1, Vector512.ConditionalSelect(bit4, Avx512F.ShiftLeftLogical(h1, 4), v1), u1), acc);
        acc = Fma(x + 32, Avx512F.PermuteVar16x32x2(t2, Vector512.ConditionalSelect(bit4, Avx512F.ShiftLeftLogical(h0, 3), Avx512F.ShiftRightLogical(v0, 4)), u2), acc);
        return Fma(x + 48, Avx512F.PermuteVar16x32x2(t2, Vector512.ConditionalSelect(bit4, Avx512F.ShiftLeftLogical(h1, 3), Avx512F.ShiftRightLogical(v1, 4)), u2), acc);
    }

    /// <summary>The 16 products d·sc of a Q6_K super-block (int8 scales, one per 16 weights), the twin's first rounding.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Q6Scales(byte* b, float* f) =>
        Vector512.Store(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)(b + 192)))) * Vector512.Create(Half(b + 208)), f);

    /// <summary>
    /// Quarter c (weights 64c … 64c + 63) of a Q6_K super-block: half h = c / 2 holds weights 128h …, as four
    /// runs of 32 (ql bytes 0..31 low nibbles, 32..63 low, 0..31 high, 32..63 high, with qh's bit pairs
    /// 0-1, 2-3, 4-5, 6-7); quarter c is runs 2(c mod 2) and 2(c mod 2) + 1. x = (d·sc)·(q − 32).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Q6KQuarter(byte* b, int c, float* f, float* x, Vector512<float> acc)
    {
        int half = c >> 1;
        byte* ql = b + 64 * half, qh = b + 128 + 32 * half;
        float* sc = f + 8 * half + 4 * (c & 1);
        var low = Vector512.Create(0x0F);
        var high = Vector512.Create(0x30);
        var bias = Vector512.Create(32);
        var a0 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql));
        var a1 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + 16));
        var b0 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + 32));
        var b1 = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + 48));
        var h0 = Avx512F.ConvertToVector512Int32(Vector128.Load(qh));
        var h1 = Avx512F.ConvertToVector512Int32(Vector128.Load(qh + 16));
        if ((c & 1) == 0)
        {
            // Low nibbles; qh bits 0-1 (first run) and 2-3 (second) to bits 4-5.
            acc = Fma(x, Q6Values(a0, Avx512F.ShiftLeftLogical(h0, 4), sc[0], low, high, bias), acc);
            acc = Fma(x + 16, Q6Values(a1, Avx512F.ShiftLeftLogical(h1, 4), sc[1], low, high, bias), acc);
            acc = Fma(x + 32, Q6Values(b0, Avx512F.ShiftLeftLogical(h0, 2), sc[2], low, high, bias), acc);
            return Fma(x + 48, Q6Values(b1, Avx512F.ShiftLeftLogical(h1, 2), sc[3], low, high, bias), acc);
        }
        // High nibbles; qh bits 4-5 (in place) and 6-7.
        acc = Fma(x, Q6Values(Avx512F.ShiftRightLogical(a0, 4), h0, sc[0], low, high, bias), acc);
        acc = Fma(x + 16, Q6Values(Avx512F.ShiftRightLogical(a1, 4), h1, sc[1], low, high, bias), acc);
        acc = Fma(x + 32, Q6Values(Avx512F.ShiftRightLogical(b0, 4), Avx512F.ShiftRightLogical(h0, 2), sc[2], low, high, bias), acc);
        return Fma(x + 48, Q6Values(Avx512F.ShiftRightLogical(b1, 4), Avx512F.ShiftRightLogical(h1, 2), sc[3], low, high, bias), acc);
    }

    /// <summary>(d·sc)·((lo &amp; 15 | hi &amp; 48) − 32) in fp32, where <paramref name="hi"/> has the two high bits at bits 4..5.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Q6Values(Vector512<int> lo, Vector512<int> hi, float scale, Vector512<int> low, Vector512<int> high, Vector512<int> bias)
    {
        var code = (lo & low) | (hi & high);
        return Vector512.Create(scale) * Avx512F.ConvertToVector512Single(code - bias);
    }
}
