using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Kernels;

// The batched side of Int8Tiles' Q4_K path: 4 weight rows × 4 activation rows per pass (16 accumulators), so each
// super-block is loaded and unpacked once per 4 activation rows. The integer lane sums are the same exact integers
// the one-row loop forms, and each pair's fp32 accumulation runs the same FMAs in the same order, so a row's result
// is bit for bit the one-row result.
public static unsafe partial class Int8Tiles
{
    /// <summary>Whether several activation rows run through the 4 × 4 passes (AVX2 + FMA suffice; see <see cref="Supported"/>).</summary>
    internal static bool Batched => Avx2.IsSupported && Fma.IsSupported;

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

    /// <summary>The 4 rows' reduced lane sums (<see cref="Reduce8"/>) less the reduced mins <c>m[0], m[stride], …</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreMinus(float* y, int count, Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3, Vector256<float>* m, int stride)
    {
        y[0] = Reduce8(a0) - Reduce8(m[0]);
        if (count > 1) y[1] = Reduce8(a1) - Reduce8(m[stride]);
        if (count > 2) y[2] = Reduce8(a2) - Reduce8(m[2 * stride]);
        if (count > 3) y[3] = Reduce8(a3) - Reduce8(m[3 * stride]);
    }
}
