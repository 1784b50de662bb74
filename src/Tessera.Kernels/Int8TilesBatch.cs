using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Kernels;

// The batched side of Int8Tiles: 4 weight rows × 4 activation rows per pass (16 accumulators), so each
// weight block is loaded and unpacked once per 4 activation rows. With AVX-VNNI every (weight row, activation
// row) pair costs one vpdpbusd, one convert and one FMA per 32 weights; without it (AMD Zen 4: .NET 10 exposes
// AVX-512 VNNI through no class, and Zen 4 lacks the VEX AVX-VNNI form) the pair is vpmaddubsw + vpmaddwd,
// with Q4_0/Q4_K codes (0 … 15) as the unsigned side and Q8_0 through the sign trick. The integer lane sums are
// the same exact integers the one-row loop forms (only the way to them differs), and each pair's fp32
// accumulation runs the same FMAs in the same order, so a row's result is bit for bit the one-row result.
public static unsafe partial class Int8Tiles
{
    /// <summary>Whether several activation rows run through the 4 × 4 passes (AVX2 + FMA suffice; see <see cref="Supported"/>).</summary>
    internal static bool Batched => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>
    /// <paramref name="add"/> + the 8 int32 lane sums of 32 unsigned × 32 signed bytes, exact for the codes the 4 × 4
    /// passes feed it without VNNI (unsigned side ≤ 15: no int16 pair of <c>vpmaddubsw</c> can saturate).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> DpAdd(Vector256<int> add, Vector256<byte> u, Vector256<sbyte> s) => AvxVnni.IsSupported
        ? AvxVnni.MultiplyWideningAndAdd(add, u, s)
        : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256<short>.One) + add;

    /// <summary>
    /// Q8_0, 4 × 4 without VNNI: the one-row loop's sign trick per pair, |x| · sign(x)·w (int16 pairs stay below
    /// 2·127·127), with each weight block loaded once for the 4 activation rows and |x| once for the 4 weight rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q8_0x4Sign(byte* w0, byte* w1, byte* w2, byte* w3, float* s0, float* s1, float* s2, float* s3, sbyte* q, float* xs, int cols, int nb, float* y, int rows, int count, byte* ahead)
    {
        const int Bytes = QuantFormat.Q8_0BlockBytes;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default, a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * Bytes;
            if (ahead != null) Prefetch(ahead + 4 * o, 4 * Bytes);
            var v0 = Vector256.Load((sbyte*)(w0 + o + 2));
            var v1 = Vector256.Load((sbyte*)(w1 + o + 2));
            var v2 = Vector256.Load((sbyte*)(w2 + o + 2));
            var v3 = Vector256.Load((sbyte*)(w3 + o + 2));
            float ws0 = s0[b], ws1 = s1[b], ws2 = s2[b], ws3 = s3[b];
            var x0 = Vector256.Load(q + 0L * cols + b * B);
            var ax0 = Avx2.Abs(x0);
            float dx0 = xs[0L * nb + b];
            a00 = Signed(v0, ax0, x0, ws0 * dx0, a00); a10 = Signed(v1, ax0, x0, ws1 * dx0, a10);
            a20 = Signed(v2, ax0, x0, ws2 * dx0, a20); a30 = Signed(v3, ax0, x0, ws3 * dx0, a30);
            var x1 = Vector256.Load(q + 1L * cols + b * B);
            var ax1 = Avx2.Abs(x1);
            float dx1 = xs[1L * nb + b];
            a01 = Signed(v0, ax1, x1, ws0 * dx1, a01); a11 = Signed(v1, ax1, x1, ws1 * dx1, a11);
            a21 = Signed(v2, ax1, x1, ws2 * dx1, a21); a31 = Signed(v3, ax1, x1, ws3 * dx1, a31);
            var x2 = Vector256.Load(q + 2L * cols + b * B);
            var ax2 = Avx2.Abs(x2);
            float dx2 = xs[2L * nb + b];
            a02 = Signed(v0, ax2, x2, ws0 * dx2, a02); a12 = Signed(v1, ax2, x2, ws1 * dx2, a12);
            a22 = Signed(v2, ax2, x2, ws2 * dx2, a22); a32 = Signed(v3, ax2, x2, ws3 * dx2, a32);
            var x3 = Vector256.Load(q + 3L * cols + b * B);
            var ax3 = Avx2.Abs(x3);
            float dx3 = xs[3L * nb + b];
            a03 = Signed(v0, ax3, x3, ws0 * dx3, a03); a13 = Signed(v1, ax3, x3, ws1 * dx3, a13);
            a23 = Signed(v2, ax3, x3, ws2 * dx3, a23); a33 = Signed(v3, ax3, x3, ws3 * dx3, a33);
        }
        Store(y + 0L * rows, count, a00, a10, a20, a30);
        Store(y + 1L * rows, count, a01, a11, a21, a31);
        Store(y + 2L * rows, count, a02, a12, a22, a32);
        Store(y + 3L * rows, count, a03, a13, a23, a33);
    }

    /// <summary>
    /// Q8_0, 4 × 4 with VNNI: activations offset to unsigned (u = x + 128, <paramref name="u"/>, rows <paramref name="cols"/> apart) and
    /// each weight block's −128·Σw lanes (one vpdpbusd per weight row) as the addend: Σ(x + 128)·w − 128·Σw = Σx·w.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q8_0x4(byte* w0, byte* w1, byte* w2, byte* w3, float* s0, float* s1, float* s2, float* s3, byte* u, float* xs, int cols, int nb, float* y, int rows, int count, byte* ahead)
    {
        const int Bytes = QuantFormat.Q8_0BlockBytes;

        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default, a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        var k128 = Vector256.Create((byte)0x80);
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * Bytes;
            if (ahead != null) Prefetch(ahead + 4 * o, 4 * Bytes);
            var v0 = Vector256.Load((sbyte*)(w0 + o + 2));
            var c0 = Vector256<int>.Zero - Dp(k128, v0);
            float ws0 = s0[b];
            var v1 = Vector256.Load((sbyte*)(w1 + o + 2));
            var c1 = Vector256<int>.Zero - Dp(k128, v1);
            float ws1 = s1[b];
            var v2 = Vector256.Load((sbyte*)(w2 + o + 2));
            var c2 = Vector256<int>.Zero - Dp(k128, v2);
            float ws2 = s2[b];
            var v3 = Vector256.Load((sbyte*)(w3 + o + 2));
            var c3 = Vector256<int>.Zero - Dp(k128, v3);
            float ws3 = s3[b];
            var u0 = Vector256.Load(u + 0L * cols + b * B);
            float dx0 = xs[0L * nb + b];
            a00 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c0, u0, v0)), Vector256.Create(ws0 * dx0), a00);
            a10 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c1, u0, v1)), Vector256.Create(ws1 * dx0), a10);
            a20 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c2, u0, v2)), Vector256.Create(ws2 * dx0), a20);
            a30 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c3, u0, v3)), Vector256.Create(ws3 * dx0), a30);
            var u1 = Vector256.Load(u + 1L * cols + b * B);
            float dx1 = xs[1L * nb + b];
            a01 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c0, u1, v0)), Vector256.Create(ws0 * dx1), a01);
            a11 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c1, u1, v1)), Vector256.Create(ws1 * dx1), a11);
            a21 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c2, u1, v2)), Vector256.Create(ws2 * dx1), a21);
            a31 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c3, u1, v3)), Vector256.Create(ws3 * dx1), a31);
            var u2 = Vector256.Load(u + 2L * cols + b * B);
            float dx2 = xs[2L * nb + b];
            a02 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c0, u2, v0)), Vector256.Create(ws0 * dx2), a02);
            a12 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c1, u2, v1)), Vector256.Create(ws1 * dx2), a12);
            a22 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c2, u2, v2)), Vector256.Create(ws2 * dx2), a22);
            a32 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c3, u2, v3)), Vector256.Create(ws3 * dx2), a32);
            var u3 = Vector256.Load(u + 3L * cols + b * B);
            float dx3 = xs[3L * nb + b];
            a03 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c0, u3, v0)), Vector256.Create(ws0 * dx3), a03);
            a13 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c1, u3, v1)), Vector256.Create(ws1 * dx3), a13);
            a23 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c2, u3, v2)), Vector256.Create(ws2 * dx3), a23);
            a33 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(AvxVnni.MultiplyWideningAndAdd(c3, u3, v3)), Vector256.Create(ws3 * dx3), a33);
        }
        Store(y + 0L * rows, count, a00, a10, a20, a30);
        Store(y + 1L * rows, count, a01, a11, a21, a31);
        Store(y + 2L * rows, count, a02, a12, a22, a32);
        Store(y + 3L * rows, count, a03, a13, a23, a33);
    }

    /// <summary>
    /// Q4_0, 4 × 4: unsigned codes q (0 … 15) times the signed activations, with −8·Σx lanes of each activation
    /// block (<paramref name="neg8"/>, 8 ints per block) as the addend: Σq·x − 8·Σx = Σ(q − 8)·x.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4_0x4(byte* w0, byte* w1, byte* w2, byte* w3, float* s0, float* s1, float* s2, float* s3, sbyte* q, int* neg8, float* xs, int cols, int nb, float* y, int rows, int count, byte* ahead)
    {
        const int Bytes = QuantFormat.Q4_0BlockBytes;
        var mask = Vector128.Create((byte)0x0F);
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default, a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * Bytes;
            if (ahead != null && (b & 1) == 0) Prefetch(ahead + 4 * o, 8 * Bytes);
            var p0 = Vector128.Load(w0 + o + 2);
            var v0 = Vector256.Create(p0 & mask, Vector128.ShiftRightLogical(p0, 4) & mask);
            float ws0 = s0[b];
            var p1 = Vector128.Load(w1 + o + 2);
            var v1 = Vector256.Create(p1 & mask, Vector128.ShiftRightLogical(p1, 4) & mask);
            float ws1 = s1[b];
            var p2 = Vector128.Load(w2 + o + 2);
            var v2 = Vector256.Create(p2 & mask, Vector128.ShiftRightLogical(p2, 4) & mask);
            float ws2 = s2[b];
            var p3 = Vector128.Load(w3 + o + 2);
            var v3 = Vector256.Create(p3 & mask, Vector128.ShiftRightLogical(p3, 4) & mask);
            float ws3 = s3[b];
            var x0 = Vector256.Load(q + 0L * cols + b * B);
            var n0 = Vector256.Load(neg8 + (0L * nb + b) * 8);
            float dx0 = xs[0L * nb + b];
            a00 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n0, v0, x0)), Vector256.Create(ws0 * dx0), a00);
            a10 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n0, v1, x0)), Vector256.Create(ws1 * dx0), a10);
            a20 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n0, v2, x0)), Vector256.Create(ws2 * dx0), a20);
            a30 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n0, v3, x0)), Vector256.Create(ws3 * dx0), a30);
            var x1 = Vector256.Load(q + 1L * cols + b * B);
            var n1 = Vector256.Load(neg8 + (1L * nb + b) * 8);
            float dx1 = xs[1L * nb + b];
            a01 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n1, v0, x1)), Vector256.Create(ws0 * dx1), a01);
            a11 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n1, v1, x1)), Vector256.Create(ws1 * dx1), a11);
            a21 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n1, v2, x1)), Vector256.Create(ws2 * dx1), a21);
            a31 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n1, v3, x1)), Vector256.Create(ws3 * dx1), a31);
            var x2 = Vector256.Load(q + 2L * cols + b * B);
            var n2 = Vector256.Load(neg8 + (2L * nb + b) * 8);
            float dx2 = xs[2L * nb + b];
            a02 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n2, v0, x2)), Vector256.Create(ws0 * dx2), a02);
            a12 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n2, v1, x2)), Vector256.Create(ws1 * dx2), a12);
            a22 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n2, v2, x2)), Vector256.Create(ws2 * dx2), a22);
            a32 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n2, v3, x2)), Vector256.Create(ws3 * dx2), a32);
            var x3 = Vector256.Load(q + 3L * cols + b * B);
            var n3 = Vector256.Load(neg8 + (3L * nb + b) * 8);
            float dx3 = xs[3L * nb + b];
            a03 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n3, v0, x3)), Vector256.Create(ws0 * dx3), a03);
            a13 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n3, v1, x3)), Vector256.Create(ws1 * dx3), a13);
            a23 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n3, v2, x3)), Vector256.Create(ws2 * dx3), a23);
            a33 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DpAdd(n3, v3, x3)), Vector256.Create(ws3 * dx3), a33);
        }
        Store(y + 0L * rows, count, a00, a10, a20, a30);
        Store(y + 1L * rows, count, a01, a11, a21, a31);
        Store(y + 2L * rows, count, a02, a12, a22, a32);
        Store(y + 3L * rows, count, a03, a13, a23, a33);
    }

    /// <summary>
    /// Q4_K, 4 × 4: unsigned codes straight into vpdpbusd; the 8 (d·sc_j)·d_x,j of every pair are formed once per
    /// super-block (one vector multiply each, as the one-row loop forms them), the mins accumulate in memory.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4Kx4(byte* w0, byte* w1, byte* w2, byte* w3, float* f, sbyte* q, float* xs, int* sums, int cols, int nb, int sb, float* y, int rows, int count, byte* ahead)
    {
        var mask = Vector256.Create((byte)0x0F);
        float* sc = stackalloc float[128];         // [row r][act j][sub-block] products
        var m = stackalloc Vector256<float>[16];   // [row r][act j] mins accumulators
        for (int i = 0; i < 16; i++) m[i] = default;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default, a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        for (int s = 0; s < sb; s++)
        {
            long o = (long)s * Q4KBytes;
            if (ahead != null) Prefetch(ahead + 4 * o, 4 * Q4KBytes);
            for (int j = 0; j < 4; j++)
            {
                var dx = Vector256.Load(xs + j * nb + 8 * s);
                var sx = Avx.ConvertToVector256Single(Vector256.Load(sums + j * nb + 8 * s));
                for (int r = 0; r < 4; r++)
                {
                    float* fr = f + (r * sb + s) * 16;
                    (Vector256.Load(fr) * dx).Store(sc + (r * 4 + j) * 8);
                    m[r * 4 + j] = Fma.MultiplyAdd(Vector256.Load(fr + 8) * dx, sx, m[r * 4 + j]);
                }
            }
            for (int c = 0; c < 4; c++)
            {
                var v0 = Vector256.Load(w0 + o + 16 + 32 * c);
                var lo0 = v0 & mask;
                var hi0 = Avx2.ShiftRightLogical(v0.AsUInt16(), 4).AsByte() & mask;
                var v1 = Vector256.Load(w1 + o + 16 + 32 * c);
                var lo1 = v1 & mask;
                var hi1 = Avx2.ShiftRightLogical(v1.AsUInt16(), 4).AsByte() & mask;
                var v2 = Vector256.Load(w2 + o + 16 + 32 * c);
                var lo2 = v2 & mask;
                var hi2 = Avx2.ShiftRightLogical(v2.AsUInt16(), 4).AsByte() & mask;
                var v3 = Vector256.Load(w3 + o + 16 + 32 * c);
                var lo3 = v3 & mask;
                var hi3 = Avx2.ShiftRightLogical(v3.AsUInt16(), 4).AsByte() & mask;
                var ql0 = Vector256.Load(q + 0L * cols + s * KQuantFormat.SuperBlock + 64 * c);
                var qh0 = Vector256.Load(q + 0L * cols + s * KQuantFormat.SuperBlock + 64 * c + 32);
                a00 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo0, ql0)), Vector256.Create(sc[0 + 2 * c]), a00);
                a00 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi0, qh0)), Vector256.Create(sc[0 + 2 * c + 1]), a00);
                a10 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo1, ql0)), Vector256.Create(sc[32 + 2 * c]), a10);
                a10 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi1, qh0)), Vector256.Create(sc[32 + 2 * c + 1]), a10);
                a20 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo2, ql0)), Vector256.Create(sc[64 + 2 * c]), a20);
                a20 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi2, qh0)), Vector256.Create(sc[64 + 2 * c + 1]), a20);
                a30 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo3, ql0)), Vector256.Create(sc[96 + 2 * c]), a30);
                a30 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi3, qh0)), Vector256.Create(sc[96 + 2 * c + 1]), a30);
                var ql1 = Vector256.Load(q + 1L * cols + s * KQuantFormat.SuperBlock + 64 * c);
                var qh1 = Vector256.Load(q + 1L * cols + s * KQuantFormat.SuperBlock + 64 * c + 32);
                a01 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo0, ql1)), Vector256.Create(sc[8 + 2 * c]), a01);
                a01 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi0, qh1)), Vector256.Create(sc[8 + 2 * c + 1]), a01);
                a11 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo1, ql1)), Vector256.Create(sc[40 + 2 * c]), a11);
                a11 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi1, qh1)), Vector256.Create(sc[40 + 2 * c + 1]), a11);
                a21 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo2, ql1)), Vector256.Create(sc[72 + 2 * c]), a21);
                a21 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi2, qh1)), Vector256.Create(sc[72 + 2 * c + 1]), a21);
                a31 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo3, ql1)), Vector256.Create(sc[104 + 2 * c]), a31);
                a31 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi3, qh1)), Vector256.Create(sc[104 + 2 * c + 1]), a31);
                var ql2 = Vector256.Load(q + 2L * cols + s * KQuantFormat.SuperBlock + 64 * c);
                var qh2 = Vector256.Load(q + 2L * cols + s * KQuantFormat.SuperBlock + 64 * c + 32);
                a02 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo0, ql2)), Vector256.Create(sc[16 + 2 * c]), a02);
                a02 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi0, qh2)), Vector256.Create(sc[16 + 2 * c + 1]), a02);
                a12 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo1, ql2)), Vector256.Create(sc[48 + 2 * c]), a12);
                a12 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi1, qh2)), Vector256.Create(sc[48 + 2 * c + 1]), a12);
                a22 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo2, ql2)), Vector256.Create(sc[80 + 2 * c]), a22);
                a22 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi2, qh2)), Vector256.Create(sc[80 + 2 * c + 1]), a22);
                a32 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo3, ql2)), Vector256.Create(sc[112 + 2 * c]), a32);
                a32 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi3, qh2)), Vector256.Create(sc[112 + 2 * c + 1]), a32);
                var ql3 = Vector256.Load(q + 3L * cols + s * KQuantFormat.SuperBlock + 64 * c);
                var qh3 = Vector256.Load(q + 3L * cols + s * KQuantFormat.SuperBlock + 64 * c + 32);
                a03 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo0, ql3)), Vector256.Create(sc[24 + 2 * c]), a03);
                a03 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi0, qh3)), Vector256.Create(sc[24 + 2 * c + 1]), a03);
                a13 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo1, ql3)), Vector256.Create(sc[56 + 2 * c]), a13);
                a13 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi1, qh3)), Vector256.Create(sc[56 + 2 * c + 1]), a13);
                a23 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo2, ql3)), Vector256.Create(sc[88 + 2 * c]), a23);
                a23 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi2, qh3)), Vector256.Create(sc[88 + 2 * c + 1]), a23);
                a33 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo3, ql3)), Vector256.Create(sc[120 + 2 * c]), a33);
                a33 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi3, qh3)), Vector256.Create(sc[120 + 2 * c + 1]), a33);
            }
        }
        StoreMinus(y + 0L * rows, count, a00, a10, a20, a30, m + 0, 4);
        StoreMinus(y + 1L * rows, count, a01, a11, a21, a31, m + 1, 4);
        StoreMinus(y + 2L * rows, count, a02, a12, a22, a32, m + 2, 4);
        StoreMinus(y + 3L * rows, count, a03, a13, a23, a33, m + 3, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* y, int count, Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3)
    {
        y[0] = Reduce8(a0);
        if (count > 1) y[1] = Reduce8(a1);
        if (count > 2) y[2] = Reduce8(a2);
        if (count > 3) y[3] = Reduce8(a3);
    }

    /// <summary>As <see cref="Store"/>, less the reduced mins <c>m[0], m[stride], …</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreMinus(float* y, int count, Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3, Vector256<float>* m, int stride)
    {
        y[0] = Reduce8(a0) - Reduce8(m[0]);
        if (count > 1) y[1] = Reduce8(a1) - Reduce8(m[stride]);
        if (count > 2) y[2] = Reduce8(a2) - Reduce8(m[2 * stride]);
        if (count > 3) y[3] = Reduce8(a3) - Reduce8(m[3 * stride]);
    }
}
