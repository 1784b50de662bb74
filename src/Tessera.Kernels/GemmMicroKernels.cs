using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Kernels;

/// <summary>
/// Register-tile micro-kernels for <see cref="Gemm"/>. Each computes one MR×NR tile of C from a
/// packed A micro-panel (kc steps of MR values, k-major) and a packed B micro-panel (kc steps
/// of NR values): C_tile = Σₚ a[p]ᵀ·b[p], then either stores it or adds it to C.
/// The k loop runs in the same order for every tile and thread, so results do not depend on
/// how the work was split.
/// </summary>
internal static unsafe class GemmMicroKernels
{
    /// <summary>AVX-512 tile: 6 rows × 64 columns = 24 zmm accumulators + 4 B vectors + 1 broadcast
    /// (29 of 32 registers). Per k step: 4 loads, 6 broadcasts, 24 FMAs — FMA-bound.</summary>
    public const int Avx512Mr = 6, Avx512Nr = 64;

    /// <summary>AVX2 tile: 6 rows × 16 columns = 12 ymm accumulators + 2 B + 1 broadcast (15 of 16).</summary>
    public const int Avx2Mr = 6, Avx2Nr = 16;

    /// <summary>Portable tile for hardware without 256-bit vectors.</summary>
    public const int ScalarMr = 4, ScalarNr = 4;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Avx512(int kc, float* ap, float* bp, float* c, int ldc, bool overwrite)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default;
        Vector512<float> c50 = default, c51 = default, c52 = default, c53 = default;
        // The C tile is touched only after kc steps and for a large C it is not in cache: its 24
        // lines are requested into L2 one per segment of the k loop. Requesting all 24 at once
        // (into L1) stalls the B/A streams behind the line-fill buffers for a memory round trip
        // and the lines are evicted again by the B panel (64 KB > L1) before they are used:
        // measured ~8% slower on 2048³ (Sapphire Rapids class Xeon, thread CPU clock).
        int segment = Math.Max(1, kc / 32), p = 0;
        for (int line = 0; line <= 24; line++)
        {
            int end = kc;
            if (line < 24)
            {
                Sse.Prefetch1(c + (line >> 2) * (long)ldc + (line & 3) * 16);
                end = Math.Min(kc, p + segment);
            }
            for (; p < end; p++)
            {
                var b0 = Vector512.LoadAligned(bp);
                var b1 = Vector512.LoadAligned(bp + 16);
                var b2 = Vector512.LoadAligned(bp + 32);
                var b3 = Vector512.LoadAligned(bp + 48);
                var a = Vector512.Create(ap[0]);
                c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
                c02 = Vector512.FusedMultiplyAdd(a, b2, c02); c03 = Vector512.FusedMultiplyAdd(a, b3, c03);
                a = Vector512.Create(ap[1]);
                c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
                c12 = Vector512.FusedMultiplyAdd(a, b2, c12); c13 = Vector512.FusedMultiplyAdd(a, b3, c13);
                a = Vector512.Create(ap[2]);
                c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
                c22 = Vector512.FusedMultiplyAdd(a, b2, c22); c23 = Vector512.FusedMultiplyAdd(a, b3, c23);
                a = Vector512.Create(ap[3]);
                c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
                c32 = Vector512.FusedMultiplyAdd(a, b2, c32); c33 = Vector512.FusedMultiplyAdd(a, b3, c33);
                a = Vector512.Create(ap[4]);
                c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
                c42 = Vector512.FusedMultiplyAdd(a, b2, c42); c43 = Vector512.FusedMultiplyAdd(a, b3, c43);
                a = Vector512.Create(ap[5]);
                c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
                c52 = Vector512.FusedMultiplyAdd(a, b2, c52); c53 = Vector512.FusedMultiplyAdd(a, b3, c53);
                ap += Avx512Mr;
                bp += Avx512Nr;
            }
        }
        Row512(c, overwrite, c00, c01, c02, c03); c += ldc;
        Row512(c, overwrite, c10, c11, c12, c13); c += ldc;
        Row512(c, overwrite, c20, c21, c22, c23); c += ldc;
        Row512(c, overwrite, c30, c31, c32, c33); c += ldc;
        Row512(c, overwrite, c40, c41, c42, c43); c += ldc;
        Row512(c, overwrite, c50, c51, c52, c53);
    }

    /// <summary>
    /// The AVX-512 tile for a ragged last panel of 1–48 valid columns (N = 96 or 48 in the tiny
    /// presets left half or a quarter of the full 6×64 tile's FMAs wasted): the same 6-row,
    /// k-ordered chains on only ⌈cols/16⌉ vectors of the 64-wide packed panel, always stored
    /// (overwrite) into a 6×64 scratch tile with row stride 64. Summation order is the full
    /// kernel's, so results are bit-identical to it.
    /// </summary>
    public static void Avx512Narrow(int cols, int kc, float* ap, float* bp, float* tile)
    {
        switch ((cols + 15) >> 4)
        {
            case 1: Avx512Narrow<OneVector>(kc, ap, bp, tile); break;
            case 2: Avx512Narrow<TwoVectors>(kc, ap, bp, tile); break;
            default: Avx512Narrow<ThreeVectors>(kc, ap, bp, tile); break;
        }
    }

    /// <summary>How many 16-float vectors of the panel a narrow tile computes (a JIT-time constant per instantiation).</summary>
    internal interface IPanelVectors { static abstract int Count { get; } }
    internal struct OneVector : IPanelVectors { public static int Count => 1; }
    internal struct TwoVectors : IPanelVectors { public static int Count => 2; }
    internal struct ThreeVectors : IPanelVectors { public static int Count => 3; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Avx512Narrow<W>(int kc, float* ap, float* bp, float* tile) where W : struct, IPanelVectors
    {
        Vector512<float> c00 = default, c01 = default, c02 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default;
        Vector512<float> c50 = default, c51 = default, c52 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.LoadAligned(bp);
            var b1 = W.Count > 1 ? Vector512.LoadAligned(bp + 16) : default;
            var b2 = W.Count > 2 ? Vector512.LoadAligned(bp + 32) : default;
            var a = Vector512.Create(ap[0]);
            c00 = Vector512.FusedMultiplyAdd(a, b0, c00);
            if (W.Count > 1) c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            if (W.Count > 2) c02 = Vector512.FusedMultiplyAdd(a, b2, c02);
            a = Vector512.Create(ap[1]);
            c10 = Vector512.FusedMultiplyAdd(a, b0, c10);
            if (W.Count > 1) c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            if (W.Count > 2) c12 = Vector512.FusedMultiplyAdd(a, b2, c12);
            a = Vector512.Create(ap[2]);
            c20 = Vector512.FusedMultiplyAdd(a, b0, c20);
            if (W.Count > 1) c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            if (W.Count > 2) c22 = Vector512.FusedMultiplyAdd(a, b2, c22);
            a = Vector512.Create(ap[3]);
            c30 = Vector512.FusedMultiplyAdd(a, b0, c30);
            if (W.Count > 1) c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            if (W.Count > 2) c32 = Vector512.FusedMultiplyAdd(a, b2, c32);
            a = Vector512.Create(ap[4]);
            c40 = Vector512.FusedMultiplyAdd(a, b0, c40);
            if (W.Count > 1) c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            if (W.Count > 2) c42 = Vector512.FusedMultiplyAdd(a, b2, c42);
            a = Vector512.Create(ap[5]);
            c50 = Vector512.FusedMultiplyAdd(a, b0, c50);
            if (W.Count > 1) c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            if (W.Count > 2) c52 = Vector512.FusedMultiplyAdd(a, b2, c52);
            ap += Avx512Mr;
            bp += Avx512Nr;
        }
        NarrowRow<W>(tile, c00, c01, c02); tile += Avx512Nr;
        NarrowRow<W>(tile, c10, c11, c12); tile += Avx512Nr;
        NarrowRow<W>(tile, c20, c21, c22); tile += Avx512Nr;
        NarrowRow<W>(tile, c30, c31, c32); tile += Avx512Nr;
        NarrowRow<W>(tile, c40, c41, c42); tile += Avx512Nr;
        NarrowRow<W>(tile, c50, c51, c52);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void NarrowRow<W>(float* tile, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2) where W : struct, IPanelVectors
    {
        Vector512.Store(v0, tile);
        if (W.Count > 1) Vector512.Store(v1, tile + 16);
        if (W.Count > 2) Vector512.Store(v2, tile + 32);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Row512(float* c, bool overwrite, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
    {
        if (!overwrite)
        {
            v0 += Vector512.Load(c); v1 += Vector512.Load(c + 16);
            v2 += Vector512.Load(c + 32); v3 += Vector512.Load(c + 48);
        }
        Vector512.Store(v0, c); Vector512.Store(v1, c + 16);
        Vector512.Store(v2, c + 32); Vector512.Store(v3, c + 48);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Avx2(int kc, float* ap, float* bp, float* c, int ldc, bool overwrite)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.LoadAligned(bp);
            var b1 = Vector256.LoadAligned(bp + 8);
            var a = Vector256.Create(ap[0]);
            c00 = Vector256.FusedMultiplyAdd(a, b0, c00); c01 = Vector256.FusedMultiplyAdd(a, b1, c01);
            a = Vector256.Create(ap[1]);
            c10 = Vector256.FusedMultiplyAdd(a, b0, c10); c11 = Vector256.FusedMultiplyAdd(a, b1, c11);
            a = Vector256.Create(ap[2]);
            c20 = Vector256.FusedMultiplyAdd(a, b0, c20); c21 = Vector256.FusedMultiplyAdd(a, b1, c21);
            a = Vector256.Create(ap[3]);
            c30 = Vector256.FusedMultiplyAdd(a, b0, c30); c31 = Vector256.FusedMultiplyAdd(a, b1, c31);
            a = Vector256.Create(ap[4]);
            c40 = Vector256.FusedMultiplyAdd(a, b0, c40); c41 = Vector256.FusedMultiplyAdd(a, b1, c41);
            a = Vector256.Create(ap[5]);
            c50 = Vector256.FusedMultiplyAdd(a, b0, c50); c51 = Vector256.FusedMultiplyAdd(a, b1, c51);
            ap += Avx2Mr;
            bp += Avx2Nr;
        }
        Row256(c, overwrite, c00, c01); c += ldc;
        Row256(c, overwrite, c10, c11); c += ldc;
        Row256(c, overwrite, c20, c21); c += ldc;
        Row256(c, overwrite, c30, c31); c += ldc;
        Row256(c, overwrite, c40, c41); c += ldc;
        Row256(c, overwrite, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Row256(float* c, bool overwrite, Vector256<float> v0, Vector256<float> v1)
    {
        if (!overwrite) { v0 += Vector256.Load(c); v1 += Vector256.Load(c + 8); }
        Vector256.Store(v0, c); Vector256.Store(v1, c + 8);
    }

    /// <summary>Scalar tile; uses fused multiply-add so it rounds like the vector kernels.</summary>
    public static void Scalar(int kc, float* ap, float* bp, float* c, int ldc, bool overwrite)
    {
        float* acc = stackalloc float[ScalarMr * ScalarNr];
        for (int i = 0; i < ScalarMr * ScalarNr; i++) acc[i] = 0f;
        for (int p = 0; p < kc; p++)
        {
            for (int r = 0; r < ScalarMr; r++)
            {
                float av = ap[r];
                for (int j = 0; j < ScalarNr; j++) acc[r * ScalarNr + j] = MathF.FusedMultiplyAdd(av, bp[j], acc[r * ScalarNr + j]);
            }
            ap += ScalarMr;
            bp += ScalarNr;
        }
        for (int r = 0; r < ScalarMr; r++)
            for (int j = 0; j < ScalarNr; j++)
                c[r * ldc + j] = overwrite ? acc[r * ScalarNr + j] : c[r * ldc + j] + acc[r * ScalarNr + j];
    }
}
