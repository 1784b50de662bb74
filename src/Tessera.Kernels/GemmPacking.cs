using System.Runtime.CompilerServices;

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
    public static void PackA(bool transA, float* a, int lda, int i0, int mc, int p0, int kc, float* dst, int mr)
    {
        for (int q = 0; q < mc; q += mr)
        {
            int rows = Math.Min(mr, mc - q);
            if (transA)
            {
                // Stored K×M: row p of storage holds op(A)[·, p], so each k step is one contiguous copy.
                float* src = a + (long)p0 * lda + i0 + q;
                for (int p = 0; p < kc; p++, src += lda, dst += mr)
                {
                    int r = 0;
                    for (; r < rows; r++) dst[r] = src[r];
                    for (; r < mr; r++) dst[r] = 0f;
                }
            }
            else
            {
                // Stored M×K: walk each source row contiguously and scatter with stride mr
                // (the panel is small enough to stay in L1 while it is written).
                for (int r = 0; r < mr; r++)
                {
                    float* d = dst + r;
                    if (r < rows)
                    {
                        float* src = a + (long)(i0 + q + r) * lda + p0;
                        for (int p = 0; p < kc; p++) d[p * mr] = src[p];
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++) d[p * mr] = 0f;
                    }
                }
                dst += kc * mr;
            }
        }
    }

    /// <summary>
    /// Packs op(B)[pc0..pc0+kc, j0..j0+nc] into ⌈nc/nr⌉ panels of kc×nr floats (panel q holds
    /// columns j0+q·nr.., value (p, c) at q·kc·nr + p·nr + c).
    /// </summary>
    public static void PackB(bool transB, float* b, int ldb, int pc0, int kc, int j0, int nc, float* dst, int nr)
    {
        for (int q = 0; q < nc; q += nr)
        {
            int cols = Math.Min(nr, nc - q);
            if (!transB)
            {
                // Stored K×N: each k step of the panel is a contiguous run of the source row.
                float* src = b + (long)pc0 * ldb + j0 + q;
                for (int p = 0; p < kc; p++, src += ldb, dst += nr)
                {
                    Unsafe.CopyBlockUnaligned(dst, src, (uint)(cols * sizeof(float)));
                    for (int c = cols; c < nr; c++) dst[c] = 0f;
                }
            }
            else
            {
                // Stored N×K: op(B) column j is source row j. A whole panel (kc×nr) can exceed L1,
                // so transpose it in strips of 16 k steps: each strip reads one cache line from
                // each source row and writes 16 panel rows that stay in L1 while they fill.
                for (int p0 = 0; p0 < kc; p0 += 16)
                {
                    int steps = Math.Min(16, kc - p0);
                    float* strip = dst + p0 * nr;
                    for (int c = 0; c < cols; c++)
                    {
                        float* src = b + (long)(j0 + q + c) * ldb + pc0 + p0;
                        for (int p = 0; p < steps; p++) strip[p * nr + c] = src[p];
                    }
                    for (int p = 0; p < steps; p++)
                        for (int c = cols; c < nr; c++) strip[p * nr + c] = 0f;
                }
                dst += kc * nr;
            }
        }
    }
}
