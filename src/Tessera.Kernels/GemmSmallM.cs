using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tessera.Kernels;

/// <summary>
/// Unpacked path for very short op(A) (M ≤ <see cref="MaxRows"/>: decoding, tiny batches).
/// With so few rows each element of B is used at most M times, so packing B would cost about as
/// much as the multiply; instead B is streamed once, straight from the caller's storage:
/// <list type="bullet">
/// <item>B stored K×N (no transpose): rows of C accumulate a·(row of B), 64 columns at a time.</item>
/// <item>B stored N×K (transposed): each C entry is a dot product of two contiguous K-runs.</item>
/// </list>
/// Work is split over columns of C, and every entry is computed the same way whatever the split,
/// so results are bit-identical for any thread count. AVX-512 only; other machines use the packed path.
/// </summary>
internal static unsafe class GemmSmallM
{
    /// <summary>Rows handled together (one register tile); also the largest M sent here.</summary>
    public const int MaxRows = 4;

    /// <summary>Below this many multiply-adds the pool's hand-off costs more than a second core saves.</summary>
    const long ParallelThreshold = 1L << 18;

    public static void Run(WorkerPool pool, bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        var job = SmallMJob.ForCurrentThread;
        job.Set(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
        // Units of work: 64-column blocks (B rows) or 4-column groups (B transposed).
        int units = transB ? (n + 3) / 4 : (n + 63) / 64;
        if ((long)m * n * k < ParallelThreshold || pool.ThreadCount == 1) job.Compute(0, 0, units);
        else pool.For(units, job.Compute);
    }

    /// <summary>C[0..m, j0..j0+cols] from B stored K×N; cols ≤ 64 (a tail uses 16-wide and scalar steps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AxpyBlock(bool transA, int m, int k, float* a, int lda, float* b, int ldb,
        float* c, int ldc, bool accumulate, int cols)
    {
        if (cols == 64)
        {
            // Row pointers for the rows in use; missing rows alias row 0 and are computed but not stored.
            long sa = transA ? 1 : lda, sp = transA ? lda : 1;
            float* a0 = a, a1 = a + (m > 1 ? sa : 0), a2 = a + (m > 2 ? 2 * sa : 0), a3 = a + (m > 3 ? 3 * sa : 0);
            Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
            Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
            Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
            float* bp = b;
            for (long p = 0; p < k; p++, bp += ldb)
            {
                var b0 = Vector512.Load(bp); var b1 = Vector512.Load(bp + 16);
                var b2 = Vector512.Load(bp + 32); var b3 = Vector512.Load(bp + 48);
                long ofs = p * sp;
                var x = Vector512.Create(a0[ofs]);
                c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
                c02 = Vector512.FusedMultiplyAdd(x, b2, c02); c03 = Vector512.FusedMultiplyAdd(x, b3, c03);
                x = Vector512.Create(a1[ofs]);
                c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
                c12 = Vector512.FusedMultiplyAdd(x, b2, c12); c13 = Vector512.FusedMultiplyAdd(x, b3, c13);
                x = Vector512.Create(a2[ofs]);
                c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
                c22 = Vector512.FusedMultiplyAdd(x, b2, c22); c23 = Vector512.FusedMultiplyAdd(x, b3, c23);
                x = Vector512.Create(a3[ofs]);
                c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
                c32 = Vector512.FusedMultiplyAdd(x, b2, c32); c33 = Vector512.FusedMultiplyAdd(x, b3, c33);
            }
            StoreRow(c, accumulate, c00, c01, c02, c03);
            if (m > 1) StoreRow(c + ldc, accumulate, c10, c11, c12, c13);
            if (m > 2) StoreRow(c + 2L * ldc, accumulate, c20, c21, c22, c23);
            if (m > 3) StoreRow(c + 3L * ldc, accumulate, c30, c31, c32, c33);
            return;
        }

        // Ragged right edge: one row at a time, 16 columns per vector, then scalar columns.
        for (int i = 0; i < m; i++)
        {
            float* ai = transA ? a + i : a + (long)i * lda;
            long sp = transA ? lda : 1;
            float* ci = c + (long)i * ldc;
            int j = 0;
            for (; j + 16 <= cols; j += 16)
            {
                var acc = Vector512<float>.Zero;
                float* bp = b + j;
                for (long p = 0; p < k; p++, bp += ldb) acc = Vector512.FusedMultiplyAdd(Vector512.Create(ai[p * sp]), Vector512.Load(bp), acc);
                if (accumulate) acc += Vector512.Load(ci + j);
                Vector512.Store(acc, ci + j);
            }
            for (; j < cols; j++)
            {
                float acc = 0f;
                float* bp = b + j;
                for (long p = 0; p < k; p++, bp += ldb) acc = MathF.FusedMultiplyAdd(ai[p * sp], *bp, acc);
                ci[j] = accumulate ? ci[j] + acc : acc;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreRow(float* c, bool accumulate, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
    {
        if (accumulate)
        {
            v0 += Vector512.Load(c); v1 += Vector512.Load(c + 16);
            v2 += Vector512.Load(c + 32); v3 += Vector512.Load(c + 48);
        }
        Vector512.Store(v0, c); Vector512.Store(v1, c + 16);
        Vector512.Store(v2, c + 32); Vector512.Store(v3, c + 48);
    }

    /// <summary>
    /// C[i, j] = Σₚ A[i, p]·B[j, p] for one row i whose K values are contiguous (aRow), against
    /// up to 4 B rows at once; 16 lanes of partial sums, reduced at the end, then a scalar K tail.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotGroup(float* aRow, int k, float* b, int ldb, int rows, float* cRow, bool accumulate)
    {
        float* b0 = b, b1 = b + (rows > 1 ? ldb : 0), b2 = b + (rows > 2 ? 2L * ldb : 0), b3 = b + (rows > 3 ? 3L * ldb : 0);
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        int p = 0;
        for (; p + 16 <= k; p += 16)
        {
            var x = Vector512.Load(aRow + p);
            s0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b0 + p), s0);
            s1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b1 + p), s1);
            s2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b2 + p), s2);
            s3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b3 + p), s3);
        }
        float r0 = Vector512.Sum(s0), r1 = Vector512.Sum(s1), r2 = Vector512.Sum(s2), r3 = Vector512.Sum(s3);
        for (; p < k; p++)
        {
            float x = aRow[p];
            r0 = MathF.FusedMultiplyAdd(x, b0[p], r0); r1 = MathF.FusedMultiplyAdd(x, b1[p], r1);
            r2 = MathF.FusedMultiplyAdd(x, b2[p], r2); r3 = MathF.FusedMultiplyAdd(x, b3[p], r3);
        }
        cRow[0] = accumulate ? cRow[0] + r0 : r0;
        if (rows > 1) cRow[1] = accumulate ? cRow[1] + r1 : r1;
        if (rows > 2) cRow[2] = accumulate ? cRow[2] + r2 : r2;
        if (rows > 3) cRow[3] = accumulate ? cRow[3] + r3 : r3;
    }
}

/// <summary>One small-M call's state, shared with the pool through a delegate bound once per calling thread.</summary>
internal sealed unsafe class SmallMJob
{
    [ThreadStatic] static SmallMJob? current;

    public static SmallMJob ForCurrentThread => current ??= new SmallMJob();

    public readonly Action<int, int, int> Compute;

    bool transA, transB, accumulate;
    int m, n, k, lda, ldb, ldc;
    float* a, b, c;

    SmallMJob() => Compute = ComputeRange;

    public void Set(bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        this.transA = transA; this.transB = transB; this.accumulate = accumulate;
        this.m = m; this.n = n; this.k = k;
        this.a = a; this.lda = lda; this.b = b; this.ldb = ldb; this.c = c; this.ldc = ldc;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void ComputeRange(int worker, int start, int end)
    {
        if (!transB)
        {
            for (int u = start; u < end; u++)
            {
                int j = u * 64;
                GemmSmallM.AxpyBlock(transA, m, k, a, lda, b + j, ldb, c + j, ldc, accumulate, Math.Min(64, n - j));
            }
            return;
        }
        // Dot products need each A row contiguous in K: a transposed A is gathered once per worker.
        float* rows = a;
        long rowStride = lda;
        if (transA)
        {
            rows = GemmScratch.ForCurrentThread.A((nuint)m * (nuint)k);
            for (int i = 0; i < m; i++)
                for (int p = 0; p < k; p++) rows[(long)i * k + p] = a[(long)p * lda + i];
            rowStride = k;
        }
        for (int u = start; u < end; u++)
        {
            int j = u * 4, group = Math.Min(4, n - j);
            for (int i = 0; i < m; i++)
                GemmSmallM.DotGroup(rows + i * rowStride, k, b + (long)j * ldb, ldb, group, c + (long)i * ldc + j, accumulate);
        }
    }
}
