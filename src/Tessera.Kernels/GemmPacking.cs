using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Kernels;

/// <summary>
/// Copies blocks of op(A) and op(B) into the contiguous micro-panel layout the
/// <see cref="GemmMicroKernels"/> stream through. Packing is where the transposes are absorbed:
/// the kernels only ever see k-major panels, whatever the caller's storage order. Edge panels are
/// zero-padded to the full tile so the kernels never branch on a ragged edge.
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>
    /// Packs op(A)[i0..i0+mc, p0..p0+kc] into ⌈mc/mr⌉ panels of kc×mr floats (panel q holds rows
    /// i0+q·mr.., value (p, r) at q·kc·mr + p·mr + r).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackA(bool transA, float* a, int lda, int i0, int mc, int p0, int kc, float* dst, int mr)
    {
        if (transA && mr == 6 && Gemm.PackARows)
        {
            // In groups of 8 panels (48 floats, 3 cache lines of a row), each walked row by row: a group as wide
            // as the MC block (24 panels, 6 KB apart) scattered into destination lines that alias in L1.
            const int group = 8 * 6;
            for (int q = 0; q < mc; q += group)
                PackATransRows(a, lda, i0 + q, Math.Min(group, mc - q), p0, kc, dst + (long)q * kc);
            return;
        }
        for (int q = 0; q < mc; q += mr)
        {
            int rows = Math.Min(mr, mc - q);
            if (transA)
            {
                // Stored K×M: row p of storage holds op(A)[·, p], so each k step is one contiguous copy.
                float* src = a + (long)p0 * lda + i0 + q;
                if (rows == 6 && mr == 6)
                {
                    for (int p = 0; p < kc; p++, src += lda, dst += 6)
                    {
                        Vector128.Store(Vector128.Load(src), dst);
                        *(long*)(dst + 4) = *(long*)(src + 4);
                    }
                    continue;
                }
                for (int p = 0; p < kc; p++, src += lda, dst += mr)
                {
                    int r = 0;
                    for (; r < rows; r++) dst[r] = src[r];
                    for (; r < mr; r++) dst[r] = 0f;
                }
            }
            else
            {
                // Stored M×K: each source row is contiguous in k; interleave the rows.
                int p = 0;
                if (rows == 6 && mr == 6 && Avx512F.IsSupported)
                {
                    float* src = a + (long)(i0 + q) * lda + p0;
                    // Each row contributes only kc floats (a few lines) per block, too short for the
                    // hardware prefetcher to ramp up on, so ask for the next six rows' lines while
                    // interleaving these (a prefetch past the matrix is a harmless hint).
                    float* next = src + 6L * lda;
                    for (; p + 16 <= kc; p += 16)
                    {
                        for (int r = 0; r < 6; r++) Sse.Prefetch0(next + r * (long)lda + p);
                        Interleave6x16(src + p, lda, dst + p * 6);
                    }
                }
                // Tail (and other tile heights): scatter with stride mr; the panel stays in L1.
                for (int r = 0; r < mr; r++)
                {
                    float* d = dst + r;
                    if (r < rows)
                    {
                        float* src = a + (long)(i0 + q + r) * lda + p0;
                        for (int pp = p; pp < kc; pp++) d[pp * mr] = src[pp];
                    }
                    else
                    {
                        for (int pp = p; pp < kc; pp++) d[pp * mr] = 0f;
                    }
                }
                dst += kc * mr;
            }
        }
    }

    /// <summary>
    /// <see cref="PackA"/> for A stored K×M (<c>transA</c>) and 6-row panels, for up to 8 panels (48 columns): walks
    /// every source row once and drops its 6-float pieces into their panels (the same layout and values as the
    /// panel-by-panel copy). Panel by panel, each panel read one 24-byte piece from each of KC rows lda apart: a
    /// row's cache line served 2–3 panels but could be evicted in between, since rows a power of two apart (lda 512
    /// → 2 KB, the LM head's 8192 → 32 KB) share a few L1 sets, and no hardware prefetcher follows a stride that
    /// jumps a page per step. Here each line is read once and the rows 16 steps ahead are requested into L2.
    /// Cold A (the weight gradients' dY, read once): 6.2 → 8.9 GB/s at lda 8192, 5.1 → 7.2 at lda 512 (session 11
    /// tall-skinny, docs/training-performance.md).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackATransRows(float* a, int lda, int i0, int mc, int p0, int kc, float* dst)
    {
        const int mr = 6, ahead = 16;
        int full = mc / mr, tail = mc - full * mr;
        long panelStride = (long)kc * mr;
        for (int p = 0; p < kc; p++)
        {
            float* src = a + (long)(p0 + p) * lda + i0;
            // Lines of the row `ahead` steps on (a prefetch past the matrix is a harmless hint).
            float* next = src + ahead * (long)lda;
            for (int x = 0; x < mc; x += 16) Sse.Prefetch1(next + x);
            Sse.Prefetch1(next + mc - 1);
            float* d = dst + (long)p * mr;
            for (int q = 0; q < full; q++, src += mr, d += panelStride)
            {
                Vector128.Store(Vector128.Load(src), d);
                *(long*)(d + 4) = *(long*)(src + 4);
            }
            if (tail > 0)
            {
                int c = 0;
                for (; c < tail; c++) d[c] = src[c];
                for (; c < mr; c++) d[c] = 0f;
            }
        }
    }

    /// <summary>
    /// Interleaves 16 k steps of 6 rows (row r at src + r·ld) into 96 floats, dst[6p + r]:
    /// each of the 6 output vectors takes its lanes from row pairs with a two-source permute and
    /// merges the three pairs with two selects — 30 vector ops instead of 96 scalar moves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Interleave6x16(float* src, int ld, float* dst)
    {
        var r0 = Vector512.Load(src);
        var r1 = Vector512.Load(src + ld);
        var r2 = Vector512.Load(src + 2L * ld);
        var r3 = Vector512.Load(src + 3L * ld);
        var r4 = Vector512.Load(src + 4L * ld);
        var r5 = Vector512.Load(src + 5L * ld);
        int* index = Interleave6Index;
        int* select = Interleave6Select;
        for (int t = 0; t < 6; t++, index += 48, select += 32)
        {
            var x01 = Avx512F.PermuteVar16x32x2(r0, Vector512.Load(index), r1);
            var x23 = Avx512F.PermuteVar16x32x2(r2, Vector512.Load(index + 16), r3);
            var x45 = Avx512F.PermuteVar16x32x2(r4, Vector512.Load(index + 32), r5);
            var merged = Vector512.ConditionalSelect(Vector512.Load(select).AsSingle(), x01,
                Vector512.ConditionalSelect(Vector512.Load(select + 16).AsSingle(), x23, x45));
            Vector512.Store(merged, dst + 16 * t);
        }
    }

    // Tables for Interleave6x16, in native memory so the hot loop reads them without bounds checks.
    // Output lane e of vector t is position g = 16t + e: step p = g / 6 of row r = g % 6. Rows
    // (0,1), (2,3), (4,5) are permuted pairwise (index p from the pair's first row, 16 + p from
    // its second); the selects pick pair (0,1), else (2,3), else (4,5).
    static readonly int* Interleave6Index = BuildInterleave6Index();
    static readonly int* Interleave6Select = BuildInterleave6Select();

    static int* BuildInterleave6Index()
    {
        var table = (int*)NativeMemory.AlignedAlloc(6 * 3 * 16 * sizeof(int), 64);
        for (int t = 0; t < 6; t++)
            for (int pair = 0; pair < 3; pair++)
                for (int e = 0; e < 16; e++)
                {
                    int g = 16 * t + e, p = g / 6, r = g % 6;
                    table[(t * 3 + pair) * 16 + e] = r / 2 == pair ? (r % 2) * 16 + p : 0;
                }
        return table;
    }

    static int* BuildInterleave6Select()
    {
        var table = (int*)NativeMemory.AlignedAlloc(6 * 2 * 16 * sizeof(int), 64);
        const int allOnes = -1;
        for (int t = 0; t < 6; t++)
            for (int e = 0; e < 16; e++)
            {
                int r = (16 * t + e) % 6;
                table[(t * 2) * 16 + e] = r < 2 ? allOnes : 0;
                table[(t * 2 + 1) * 16 + e] = r is 2 or 3 ? allOnes : 0;
            }
        return table;
    }

    /// <summary>
    /// Packs op(B)[pc0..pc0+kc, j0..j0+nc] into ⌈nc/nr⌉ panels of kc×nr floats (panel q holds
    /// columns j0+q·nr.., value (p, c) at q·kc·nr + p·nr + c).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackB(bool transB, float* b, int ldb, int pc0, int kc, int j0, int nc, float* dst, int nr)
    {
        if (!transB)
        {
            PackBRows(b, ldb, pc0, kc, j0, nc, dst, nr);
            return;
        }
        for (int q = 0; q < nc; q += nr)
        {
            int cols = Math.Min(nr, nc - q);
            // Stored N×K: op(B) column j is source row j. A whole panel (kc×nr) can exceed L1,
            // so transpose it in strips of 16 k steps: each strip reads one cache line from
            // each source row and writes 16 panel rows that stay in L1 while they fill.
            for (int p0 = 0; p0 < kc; p0 += 16)
            {
                int steps = Math.Min(16, kc - p0);
                float* strip = dst + p0 * nr;
                int c = 0;
                if (Avx512F.IsSupported && steps == 16)
                    for (; c + 16 <= cols; c += 16)
                        Transpose16x16(b + (long)(j0 + q + c) * ldb + pc0 + p0, ldb, strip + c, nr);
                for (; c < cols; c++)
                {
                    float* src = b + (long)(j0 + q + c) * ldb + pc0 + p0;
                    for (int p = 0; p < steps; p++) strip[p * nr + c] = src[p];
                }
                for (int p = 0; p < steps; p++)
                    for (c = cols; c < nr; c++) strip[p * nr + c] = 0f;
            }
            dst += kc * nr;
        }
    }

    /// <summary>
    /// B stored K×N: each k step of a panel is a contiguous run of a source row. Walks every
    /// source row once, left to right, and drops its NR-column pieces into their panels: one
    /// sequential read stream that the hardware prefetcher follows, where panel-by-panel order
    /// read 256-byte pieces of kc different rows (a new page each) — 12 → 14 GB/s on 2048×1408,
    /// 16 → 22 GB/s on 2048×512 (Sapphire Rapids class Xeon, thread CPU clock).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackBRows(float* b, int ldb, int pc0, int kc, int j0, int nc, float* dst, int nr)
    {
        int full = nc / nr, tail = nc - full * nr;
        long panelStride = (long)kc * nr;
        for (int p = 0; p < kc; p++)
        {
            float* src = b + (long)(pc0 + p) * ldb + j0;
            float* d = dst + (long)p * nr;
            if (nr == 64 && Vector512.IsHardwareAccelerated)
            {
                for (int q = 0; q < full; q++, src += 64, d += panelStride)
                {
                    Vector512.Store(Vector512.Load(src), d);
                    Vector512.Store(Vector512.Load(src + 16), d + 16);
                    Vector512.Store(Vector512.Load(src + 32), d + 32);
                    Vector512.Store(Vector512.Load(src + 48), d + 48);
                }
            }
            else
            {
                for (int q = 0; q < full; q++, src += nr, d += panelStride)
                    Unsafe.CopyBlockUnaligned(d, src, (uint)(nr * sizeof(float)));
            }
            if (tail > 0)
            {
                for (int c = 0; c < tail; c++) d[c] = src[c];
                for (int c = tail; c < nr; c++) d[c] = 0f;
            }
        }
    }

    /// <summary>
    /// dst[x·ldDst + y] = src[y·ldSrc + x] for a 16×16 block, in registers: interleave 32-bit
    /// pairs, then 64-bit pairs (giving 4×4 transposes inside each 128-bit lane), then move
    /// 128-bit lanes — 64 shuffles instead of 256 scattered scalar stores. Written with locals
    /// only (no stackalloc, which cost two 1 KB zero-fills and a call per block: the transposing
    /// packer ran at 3.5 GB/s).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose16x16(float* src, int ldSrc, float* dst, int ldDst)
    {
        long ld = ldSrc;
        // Quad g holds rows 4g..4g+3; its vector c holds those rows of column 4L + c in 128-bit lane L.
        Transpose4Rows(src, ld, out var a0, out var a1, out var a2, out var a3);
        Transpose4Rows(src + 4 * ld, ld, out var b0, out var b1, out var b2, out var b3);
        Transpose4Rows(src + 8 * ld, ld, out var c0, out var c1, out var c2, out var c3);
        Transpose4Rows(src + 12 * ld, ld, out var d0, out var d1, out var d2, out var d3);
        // Column 4L + c gathers lane L of the four quads' vector c.
        StoreColumns(a0, b0, c0, d0, dst, ldDst);
        StoreColumns(a1, b1, c1, d1, dst + ldDst, ldDst);
        StoreColumns(a2, b2, c2, d2, dst + 2L * ldDst, ldDst);
        StoreColumns(a3, b3, c3, d3, dst + 3L * ldDst, ldDst);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose4Rows(float* src, long ld, out Vector512<float> u0, out Vector512<float> u1,
        out Vector512<float> u2, out Vector512<float> u3)
    {
        var r0 = Vector512.Load(src);
        var r1 = Vector512.Load(src + ld);
        var r2 = Vector512.Load(src + 2 * ld);
        var r3 = Vector512.Load(src + 3 * ld);
        var lo0 = Avx512F.UnpackLow(r0, r1).AsDouble();
        var hi0 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        var lo1 = Avx512F.UnpackLow(r2, r3).AsDouble();
        var hi1 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        u0 = Avx512F.UnpackLow(lo0, lo1).AsSingle();
        u1 = Avx512F.UnpackHigh(lo0, lo1).AsSingle();
        u2 = Avx512F.UnpackLow(hi0, hi1).AsSingle();
        u3 = Avx512F.UnpackHigh(hi0, hi1).AsSingle();
    }

    /// <summary>Writes columns c, 4 + c, 8 + c, 12 + c (dst rows 0, 4, 8, 12 from <paramref name="dst"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreColumns(Vector512<float> qa, Vector512<float> qb, Vector512<float> qc, Vector512<float> qd, float* dst, int ldDst)
    {
        var v0 = Avx512F.Shuffle4x128(qa, qb, 0x44);
        var v1 = Avx512F.Shuffle4x128(qa, qb, 0xEE);
        var v2 = Avx512F.Shuffle4x128(qc, qd, 0x44);
        var v3 = Avx512F.Shuffle4x128(qc, qd, 0xEE);
        Vector512.Store(Avx512F.Shuffle4x128(v0, v2, 0x88), dst);
        Vector512.Store(Avx512F.Shuffle4x128(v0, v2, 0xDD), dst + 4L * ldDst);
        Vector512.Store(Avx512F.Shuffle4x128(v1, v3, 0x88), dst + 8L * ldDst);
        Vector512.Store(Avx512F.Shuffle4x128(v1, v3, 0xDD), dst + 12L * ldDst);
    }
}
