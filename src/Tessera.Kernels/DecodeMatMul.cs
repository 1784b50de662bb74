using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
namespace Tessera.Kernels;

/// <summary>
/// y (n × R) = x (n × K) · Wᵀ for the few activation rows of a decode step (n ≤ <see cref="MaxRows"/>),
/// where W is one or more fp32 matrices of K columns stacked by rows (fused q/k/v or gate/up stay
/// separate buffers; their outputs land side by side in each y row). Every weight element is
/// loaded from memory once per call: a tile of 4 weight rows is dotted with every activation row,
/// 4 activation rows at a time (16 vector accumulators; 1- and 2-row remainders have their own loops), so the tile stays in L1 while the
/// activations, a few hundred KB at most, come from L2. One parallel region per call with a static
/// split over 4-row tiles, claimed in chunks (<see cref="WorkerPool.For(int, int, Action{int, int})"/>); every output is the same
/// sum in the same order whichever thread runs it, so results do not depend on the thread count. Twin: <see cref="Reference.ScalarGemm"/>
/// with transB (tests compare them). AVX-512 is used when present, else a scalar path.
/// </summary>
public static unsafe class DecodeMatMul
{
    /// <summary>Largest n sent here; above it the packed <see cref="Gemm"/> reuses each weight panel better.</summary>
    public const int MaxRows = 64;

    /// <summary>Below this many multiply-adds the pool hand-off costs more than a second core saves.</summary>
    const long ParallelThreshold = 1L << 16;

    /// <summary>
    /// Stacked weights: segment s has <c>rows[s]</c> rows of <paramref name="cols"/> floats at
    /// <c>w[s]</c>; y row i gets segment s's outputs at columns [Σ rows[..s], Σ rows[..s] + rows[s]).
    /// <paramref name="ldy"/> is y's row stride (≥ Σ rows).
    /// </summary>
    public static void Run(float*[] w, int[] rows, int cols, float* x, int n, float* y, int ldy)
    {
        if (w.Length != rows.Length) throw new ArgumentException("DecodeMatMul: one row count per segment.");
        if (n < 0 || n > MaxRows) throw new ArgumentOutOfRangeException(nameof(n), n, $"DecodeMatMul: n must be in [0, {MaxRows}].");
        int tiles = 0, total = 0;
        foreach (int r in rows) { tiles += (r + 3) / 4; total += r; }
        if (ldy < total) throw new ArgumentException($"DecodeMatMul: ldy {ldy} < {total} output columns.");
        if (n == 0 || tiles == 0) return;
        var job = Job.ForCurrentThread;
        job.Set(w, rows, cols, x, n, y, ldy);
        var workers = WorkerPool.Shared;
        if ((long)total * cols * n < ParallelThreshold || workers.ThreadCount == 1) job.Compute(0, tiles);
        else workers.For(tiles, 8 * workers.ThreadCount, job.Compute);
    }

    /// <summary>The call in flight, bound to a cached delegate per calling thread (no allocation per call).</summary>
    sealed class Job
    {
        [ThreadStatic] static Job? current;
        public static Job ForCurrentThread => current ??= new Job();

        public readonly Action<int, int> Compute;
        float*[] w = [];
        int[] rows = [];
        int cols, n, ldy;
        float* x, y;

        Job() => Compute = Range;

        public void Set(float*[] w, int[] rows, int cols, float* x, int n, float* y, int ldy)
        {
            this.w = w; this.rows = rows; this.cols = cols; this.x = x; this.n = n; this.y = y; this.ldy = ldy;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Range(int start, int end)
        {
            // Walk the segments to the first tile of the range.
            int s = 0, tileBase = 0, colBase = 0;
            while (s < rows.Length && tileBase + (rows[s] + 3) / 4 <= start) { tileBase += (rows[s] + 3) / 4; colBase += rows[s]; s++; }
            for (int t = start; t < end; t++)
            {
                while (t - tileBase >= (rows[s] + 3) / 4) { tileBase += (rows[s] + 3) / 4; colBase += rows[s]; s++; }
                int r0 = (t - tileBase) * 4, count = Math.Min(4, rows[s] - r0);
                float* wt = w[s] + (long)r0 * cols;
                float* yt = y + colBase + r0;
                for (int i = 0; i < n; i += 4)
                    Tile(wt, count, x + (long)i * cols, Math.Min(4, n - i), cols, yt + (long)i * ldy, ldy, i == 0 ? wt + 4L * cols : null);
            }
        }
    }

    /// <summary>y[i, j] = Σₚ x[i, p]·w[j, p] for up to 4 weight rows j and 4 activation rows i.</summary>
    /// <remarks>
    /// <paramref name="next"/>, when not null, is the next weight tile (4 rows of k): its lines are
    /// prefetched while this one is computed, 4 lines per 16 columns, so loading overlaps the FMAs
    /// once a step is compute-heavy (several rows); an address past the matrix is harmless.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile(float* w, int wRows, float* x, int xRows, int k, float* y, int ldy, float* next = null)
    {
        // Missing rows alias row 0: computed, never stored, so the loop has no branches.
        float* w0 = w, w1 = w + (wRows > 1 ? k : 0), w2 = w + (wRows > 2 ? 2L * k : 0), w3 = w + (wRows > 3 ? 3L * k : 0);
        if (!Vector512.IsHardwareAccelerated) { ScalarTile(w0, w1, w2, w3, wRows, x, xRows, k, y, ldy); return; }
        int p = 0, k16 = k & ~15;
        if (xRows == 1)
        {
            // Batch-1 decode: pure weight streaming, 4 independent accumulators.
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; p < k16; p += 16)
            {
                if (next != null) Prefetch(next + 4 * p);
                var v = Vector512.Load(x + p);
                a0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w0 + p), a0);
                a1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w1 + p), a1);
                a2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w2 + p), a2);
                a3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w3 + p), a3);
            }
            Store(Sum4(a0, a1, a2, a3), w0, w1, w2, w3, x, k16, k, y, wRows);
            return;
        }
        float* x0 = x, x1 = x + (xRows > 1 ? k : 0), x2 = x + (xRows > 2 ? 2L * k : 0), x3 = x + (xRows > 3 ? 3L * k : 0);
        if (xRows == 2)
        {
            // Two rows (a speculative block's remainder, a pair of sequences): half the work of the 4-row loop.
            Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
            for (; p < k16; p += 16)
            {
                if (next != null) Prefetch(next + 4 * p);
                var b0 = Vector512.Load(w0 + p); var b1 = Vector512.Load(w1 + p);
                var b2 = Vector512.Load(w2 + p); var b3 = Vector512.Load(w3 + p);
                var v = Vector512.Load(x0 + p);
                c00 = Vector512.FusedMultiplyAdd(v, b0, c00); c01 = Vector512.FusedMultiplyAdd(v, b1, c01);
                c02 = Vector512.FusedMultiplyAdd(v, b2, c02); c03 = Vector512.FusedMultiplyAdd(v, b3, c03);
                v = Vector512.Load(x1 + p);
                c10 = Vector512.FusedMultiplyAdd(v, b0, c10); c11 = Vector512.FusedMultiplyAdd(v, b1, c11);
                c12 = Vector512.FusedMultiplyAdd(v, b2, c12); c13 = Vector512.FusedMultiplyAdd(v, b3, c13);
            }
            Store(Sum4(c00, c01, c02, c03), w0, w1, w2, w3, x0, k16, k, y, wRows);
            Store(Sum4(c10, c11, c12, c13), w0, w1, w2, w3, x1, k16, k, y + ldy, wRows);
            return;
        }
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        for (; p < k16; p += 16)
        {
            if (next != null) Prefetch(next + 4 * p);
            var b0 = Vector512.Load(w0 + p); var b1 = Vector512.Load(w1 + p);
            var b2 = Vector512.Load(w2 + p); var b3 = Vector512.Load(w3 + p);
            var v = Vector512.Load(x0 + p);
            a00 = Vector512.FusedMultiplyAdd(v, b0, a00); a01 = Vector512.FusedMultiplyAdd(v, b1, a01);
            a02 = Vector512.FusedMultiplyAdd(v, b2, a02); a03 = Vector512.FusedMultiplyAdd(v, b3, a03);
            v = Vector512.Load(x1 + p);
            a10 = Vector512.FusedMultiplyAdd(v, b0, a10); a11 = Vector512.FusedMultiplyAdd(v, b1, a11);
            a12 = Vector512.FusedMultiplyAdd(v, b2, a12); a13 = Vector512.FusedMultiplyAdd(v, b3, a13);
            v = Vector512.Load(x2 + p);
            a20 = Vector512.FusedMultiplyAdd(v, b0, a20); a21 = Vector512.FusedMultiplyAdd(v, b1, a21);
            a22 = Vector512.FusedMultiplyAdd(v, b2, a22); a23 = Vector512.FusedMultiplyAdd(v, b3, a23);
            v = Vector512.Load(x3 + p);
            a30 = Vector512.FusedMultiplyAdd(v, b0, a30); a31 = Vector512.FusedMultiplyAdd(v, b1, a31);
            a32 = Vector512.FusedMultiplyAdd(v, b2, a32); a33 = Vector512.FusedMultiplyAdd(v, b3, a33);
        }
        Store(Sum4(a00, a01, a02, a03), w0, w1, w2, w3, x0, k16, k, y, wRows);
        if (xRows > 1) Store(Sum4(a10, a11, a12, a13), w0, w1, w2, w3, x1, k16, k, y + ldy, wRows);
        if (xRows > 2) Store(Sum4(a20, a21, a22, a23), w0, w1, w2, w3, x2, k16, k, y + 2L * ldy, wRows);
        if (xRows > 3) Store(Sum4(a30, a31, a32, a33), w0, w1, w2, w3, x3, k16, k, y + 3L * ldy, wRows);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Prefetch(float* p)
    {
        Sse.Prefetch0(p); Sse.Prefetch0(p + 16); Sse.Prefetch0(p + 32); Sse.Prefetch0(p + 48);
    }

    /// <summary>The four lane sums [Σa, Σb, Σc, Σd] (<see cref="LaneSums.Sum4"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d) => LaneSums.Sum4(a, b, c, d);

    /// <summary>Adds the K tail (k16..k) of each dot product and stores the first <paramref name="wRows"/> sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(Vector128<float> sums, float* w0, float* w1, float* w2, float* w3, float* x, int k16, int k, float* y, int wRows)
    {
        float s0 = sums[0], s1 = sums[1], s2 = sums[2], s3 = sums[3];
        for (int p = k16; p < k; p++)
        {
            float v = x[p];
            s0 = MathF.FusedMultiplyAdd(v, w0[p], s0); s1 = MathF.FusedMultiplyAdd(v, w1[p], s1);
            s2 = MathF.FusedMultiplyAdd(v, w2[p], s2); s3 = MathF.FusedMultiplyAdd(v, w3[p], s3);
        }
        y[0] = s0;
        if (wRows > 1) y[1] = s1;
        if (wRows > 2) y[2] = s2;
        if (wRows > 3) y[3] = s3;
    }

    /// <summary>Machines without AVX-512: plain dot products in K order.</summary>
    static void ScalarTile(float* w0, float* w1, float* w2, float* w3, int wRows, float* x, int xRows, int k, float* y, int ldy)
    {
        for (int i = 0; i < xRows; i++)
            Store(Vector128<float>.Zero, w0, w1, w2, w3, x + (long)i * k, 0, k, y + (long)i * ldy, wRows);
    }
}
