using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tessera.Kernels;

namespace Tessera.Inference;

/// <summary>
/// y (n × R) = x (n × K) · Wᵀ for the few activation rows of a decode step (n ≤ <see cref="MaxRows"/>),
/// where W is one or more fp32 matrices of K columns stacked by rows (fused q/k/v or gate/up stay
/// separate buffers; their outputs land side by side in each y row). Every weight element is
/// loaded from memory once per call: a tile of 4 weight rows is dotted with every activation row,
/// 4 activation rows at a time (16 vector accumulators), so the tile stays in L1 while the
/// activations, a few hundred KB at most, come from L2. One parallel region per call with a static
/// split over 4-row tiles; every output is the same sum in the same order whichever worker runs it,
/// so results do not depend on the thread count. Twin: <see cref="Kernels.Reference.ScalarGemm"/>
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
        var pool = WorkerPool.Shared;
        if ((long)total * cols * n < ParallelThreshold || pool.ThreadCount == 1) job.Compute(0, 0, tiles);
        else pool.For(tiles, job.Compute);
    }

    /// <summary>The call in flight, bound to a cached delegate per calling thread (no allocation per call).</summary>
    sealed class Job
    {
        [ThreadStatic] static Job? current;
        public static Job ForCurrentThread => current ??= new Job();

        public readonly Action<int, int, int> Compute;
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
        void Range(int worker, int start, int end)
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
                    Tile(wt, count, x + (long)i * cols, Math.Min(4, n - i), cols, yt + (long)i * ldy, ldy);
            }
        }
    }

    /// <summary>y[i, j] = Σₚ x[i, p]·w[j, p] for up to 4 weight rows j and 4 activation rows i.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile(float* w, int wRows, float* x, int xRows, int k, float* y, int ldy)
    {
        // Missing rows alias row 0: computed, never stored, so the loop has no branches.
        float* w0 = w, w1 = w + (wRows > 1 ? k : 0), w2 = w + (wRows > 2 ? 2L * k : 0), w3 = w + (wRows > 3 ? 3L * k : 0);
        float* x0 = x, x1 = x + (xRows > 1 ? k : 0), x2 = x + (xRows > 2 ? 2L * k : 0), x3 = x + (xRows > 3 ? 3L * k : 0);
        int p = 0;
        Span<float> r = stackalloc float[16];
        if (Vector512.IsHardwareAccelerated && k >= 16)
        {
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
            Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
            Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
            if (xRows == 1)
            {
                // Batch-1 decode: pure weight streaming, 4 independent accumulators.
                for (; p + 16 <= k; p += 16)
                {
                    var v = Vector512.Load(x0 + p);
                    a00 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w0 + p), a00);
                    a01 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w1 + p), a01);
                    a02 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w2 + p), a02);
                    a03 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w3 + p), a03);
                }
            }
            else
            {
                for (; p + 16 <= k; p += 16)
                {
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
            }
            r[0] = Vector512.Sum(a00); r[1] = Vector512.Sum(a01); r[2] = Vector512.Sum(a02); r[3] = Vector512.Sum(a03);
            r[4] = Vector512.Sum(a10); r[5] = Vector512.Sum(a11); r[6] = Vector512.Sum(a12); r[7] = Vector512.Sum(a13);
            r[8] = Vector512.Sum(a20); r[9] = Vector512.Sum(a21); r[10] = Vector512.Sum(a22); r[11] = Vector512.Sum(a23);
            r[12] = Vector512.Sum(a30); r[13] = Vector512.Sum(a31); r[14] = Vector512.Sum(a32); r[15] = Vector512.Sum(a33);
        }
        else r.Clear();
        // K tail (and the whole product without AVX-512).
        for (; p < k; p++)
        {
            float c0 = w0[p], c1 = w1[p], c2 = w2[p], c3 = w3[p];
            float v = x0[p];
            r[0] = MathF.FusedMultiplyAdd(v, c0, r[0]); r[1] = MathF.FusedMultiplyAdd(v, c1, r[1]); r[2] = MathF.FusedMultiplyAdd(v, c2, r[2]); r[3] = MathF.FusedMultiplyAdd(v, c3, r[3]);
            v = x1[p];
            r[4] = MathF.FusedMultiplyAdd(v, c0, r[4]); r[5] = MathF.FusedMultiplyAdd(v, c1, r[5]); r[6] = MathF.FusedMultiplyAdd(v, c2, r[6]); r[7] = MathF.FusedMultiplyAdd(v, c3, r[7]);
            v = x2[p];
            r[8] = MathF.FusedMultiplyAdd(v, c0, r[8]); r[9] = MathF.FusedMultiplyAdd(v, c1, r[9]); r[10] = MathF.FusedMultiplyAdd(v, c2, r[10]); r[11] = MathF.FusedMultiplyAdd(v, c3, r[11]);
            v = x3[p];
            r[12] = MathF.FusedMultiplyAdd(v, c0, r[12]); r[13] = MathF.FusedMultiplyAdd(v, c1, r[13]); r[14] = MathF.FusedMultiplyAdd(v, c2, r[14]); r[15] = MathF.FusedMultiplyAdd(v, c3, r[15]);
        }
        for (int i = 0; i < xRows; i++)
            for (int j = 0; j < wRows; j++) y[(long)i * ldy + j] = r[i * 4 + j];
    }
}
