using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tessera.Kernels;

namespace Tessera.Kernels;

/// <summary>
/// y (n × R) = x (n × K) · Wᵀ with W packed by <see cref="Pack"/>: panels of
/// <see cref="PanelRows"/> weight rows, k-major (panel[p·64 + c] = W[64·j + c, p]), so one k step of
/// a panel is four contiguous vectors. Each panel is multiplied by the activation rows in blocks of
/// up to six: per k step, four panel loads and one broadcast per row feed 4·rows FMAs into 24
/// register accumulators (the GEMM micro-kernel's shape, without packing A). With more than one
/// block, the panel is taken in k slices: the first block streams a slice from memory, the others find
/// it in L1 (decode-sized calls, on Intel cores: <see cref="DecodeSlices"/>) or L2 (prompt-sized calls),
/// and each block's partial sums wait in y between slices. Work is split over panels
/// (<see cref="WorkerPool.For(int, int, Action{int, int})"/>, chunk claiming).
/// <para>Every output is one FMA chain over p = 0..K−1 in one vector lane, starting from zero (a
/// partial sum stored to y and loaded back is the same fp32 value, so slicing k changes nothing):
/// the same sum whatever n, the row block, the k slicing, the panel split or the thread count, so a row's result
/// does not depend on which other rows share the call (batched, speculative and one-at-a-time
/// decoding agree bit for bit). <see cref="Reference.ScalarPanelMatMul"/> is the twin, equal bit for bit.</para>
/// </summary>
public static unsafe class PanelMatMul
{
    /// <summary>Weight rows per panel: four 16-lane vectors.</summary>
    public const int PanelRows = 64;

    /// <summary>Activation rows per register block.</summary>
    const int BlockRows = 6;

    /// <summary>Below this many multiply-adds the hand-off to a second thread costs more than it saves.</summary>
    const long ParallelThreshold = 1L << 16;

    /// <summary>
    /// y[i·ldy + j] = Σₚ x[i·k + p]·W[j, p] for i &lt; n, j &lt; rows; <paramref name="panels"/> holds
    /// ⌈rows/64⌉ panels of k·64 floats (rows past the end are zero and never stored).
    /// </summary>
    public static void Run(float* panels, int rows, int k, float* x, int n, float* y, int ldy)
    {
        if (rows <= 0 || k <= 0) throw new ArgumentException($"PanelMatMul: a ({rows}, {k}) matrix is empty.");
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "PanelMatMul: n must not be negative.");
        if (ldy < rows) throw new ArgumentException($"PanelMatMul: ldy {ldy} < {rows} output columns.");
        if (n == 0) return;
        int count = (rows + PanelRows - 1) / PanelRows;
        var job = Job.ForCurrentThread;
        job.Set(panels, rows, k, x, n, y, ldy);
        var workers = WorkerPool.Shared;
        if ((long)rows * k * n < ParallelThreshold || workers.ThreadCount == 1 || count == 1) job.Compute(0, count);
        else
        {
            // Many small chunks keep a late helper thread from holding up the call; in the prefetching
            // regime, fewer and longer ones, so most panels have a successor in their own chunk to prefetch.
            bool prefetching = (n + BlockRows - 1) / BlockRows >= PrefetchBlocks;
            workers.For(count, Math.Min(count, (prefetching ? ChunksPerThreadPrefetching : 8) * workers.ThreadCount), job.Compute);
        }
    }

    /// <summary>Floats of the packed form of a (rows, k) matrix: ⌈rows/64⌉ panels of k·64 (the last zero-padded).</summary>
    public static long PackedFloats(int rows, int k) => (long)((rows + PanelRows - 1) / PanelRows) * PanelRows * k;

    /// <summary>Writes row <paramref name="r"/> of W (k floats) into its panel: panel[p·64 + r mod 64] = W[r, p].</summary>
    public static void PackRow(float* panels, int k, int r, ReadOnlySpan<float> row)
    {
        if (row.Length != k) throw new ArgumentException($"PanelMatMul.PackRow: a row of {row.Length} floats for k = {k}.");
        float* dst = panels + (long)(r / PanelRows) * k * PanelRows + r % PanelRows;
        for (int p = 0; p < k; p++) dst[(long)p * PanelRows] = row[p];
    }

    /// <summary>Packs a row-major (rows, k) matrix into <paramref name="panels"/> (<see cref="PackedFloats"/> floats; padding rows zeroed).</summary>
    public static void Pack(ReadOnlySpan<float> w, int rows, int k, float* panels)
    {
        if (rows <= 0 || k <= 0 || w.Length != (long)rows * k) throw new ArgumentException($"PanelMatMul.Pack: {w.Length} floats do not form a non-empty ({rows}, {k}) matrix.");
        new Span<float>(panels, (int)PackedFloats(rows, k)).Clear();
        for (int r = 0; r < rows; r++) PackRow(panels, k, r, w.Slice(r * k, k));
    }

    /// <summary>Row <paramref name="r"/> of the packed matrix, copied out into <paramref name="row"/> (k floats).</summary>
    public static void UnpackRow(float* panels, int k, int r, Span<float> row)
    {
        float* src = panels + (long)(r / PanelRows) * k * PanelRows + r % PanelRows;
        for (int p = 0; p < k; p++) row[p] = src[(long)p * PanelRows];
    }

    /// <summary>The call in flight, bound to a cached delegate per calling thread (no allocation per call).</summary>
    sealed class Job
    {
        [ThreadStatic] static Job? current;
        public static Job ForCurrentThread => current ??= new Job();

        public readonly Action<int, int> Compute;
        float* panels, x, y;
        int rows, k, n, ldy;

        Job() => Compute = Range;

        public void Set(float* panels, int rows, int k, float* x, int n, float* y, int ldy)
        {
            this.panels = panels; this.rows = rows; this.k = k; this.x = x; this.n = n; this.y = y; this.ldy = ldy;
        }

        void Range(int start, int end)
        {
            if (!Vector512.IsHardwareAccelerated)
            {
                for (int j = start; j < end; j++)
                {
                    int width = Math.Min(PanelRows, rows - j * PanelRows);
                    Reference.ScalarPanelMatMul.Run(panels + (long)j * k * PanelRows, width, k, x, n, y + j * PanelRows, ldy);
                }
                return;
            }
            // Row blocks as even as possible, none above six: 32 rows → 6,6,5,5,5,5 (not five 6s and a 2).
            // With two or more blocks, a panel is taken in k slices (KSlice steps, 32 KB, fits L1; KSliceLong
            // for prompt-sized calls): every block runs over one slice before the next slice starts, the first
            // block bringing it in. A block's accumulators go out to y after a slice and come back for the
            // next, so each output is still one FMA chain over p = 0..k−1. Prefetching: see Panel.
            int blocks = (n + BlockRows - 1) / BlockRows;
            int lines = blocks >= PrefetchBlocks ? (4 + blocks - 2) / (blocks - 1) : 0;   // 1 or 2
            int kc = blocks >= LongSliceBlocks && LongSlices ? KSliceLong : blocks >= 2 && DecodeSlices ? KSlice : k;
            if (SliceOuter && blocks >= 2 && end - start >= 2 && (long)n * k >= SliceOuterActivations)
            {
                // Slices outer, panels inner: the activation slice (n rows × KSlice) stays in L2 across
                // every panel of the range, instead of the whole activation matrix having to (for a long
                // k it does not fit beside the panel and its prefetched successor).
                for (int p0 = 0; p0 < k; p0 += kc)
                    for (int j = start; j < end; j++)
                        Panel(j, p0, j + 1 < end && lines > 0, blocks, lines, kc, start);
                return;
            }
            for (int j = start; j < end; j++)
                for (int p0 = 0; p0 < k; p0 += kc)
                    Panel(j, p0, j + 1 < end && lines > 0, blocks, lines, kc, start);
        }

        /// <summary>
        /// One k slice [p0, p0 + kc) of panel j against every row block; a narrow last panel takes its whole k at its
        /// first slice. While the later blocks compute on the slice, they prefetch the same slice of the next panel
        /// into L2 (<paramref name="prefetchNext"/>), L lines per k step, so the next panel's first block finds it there.
        /// </summary>
        void Panel(int j, int p0, bool prefetchNext, int blocks, int lines, int kc, int start)
        {
            float* panel = panels + (long)j * k * PanelRows;
            int width = Math.Min(PanelRows, rows - j * PanelRows);
            if (width < PanelRows && p0 > 0) return;   // done whole at p0 = 0
            int len = width < PanelRows ? k : Math.Min(kc, k - p0);
            float* slice = panel + (long)p0 * PanelRows;
            float* nextSlice = prefetchNext ? panel + (long)k * PanelRows + (long)p0 * PanelRows : null;
            int i = 0;
            for (int b = 0; b < blocks; b++)
            {
                int m = n / blocks + (b < n % blocks ? 1 : 0);
                float* pf = nextSlice == null || b == 0 || (b - 1) * lines >= 4 ? null : nextSlice + (long)(b - 1) * lines * len * 16;
                int pfLines = pf == null ? 0 : lines;
                // The first block of a panel that was not prefetched streams it from memory: ask
                // for each line 4 KB before it is needed (the hardware prefetcher alone ramps up too slowly).
                if (b == 0 && (lines == 0 || j == start)) { pf = slice + Ahead; pfLines = 4; }
                Block(slice, len, k, x + (long)i * k + p0, m, y + (long)i * ldy + j * PanelRows, ldy, width, pf, pfLines, p0 > 0);
                i += m;
            }
        }
    }

    /// <summary>
    /// k steps per slice when a panel meets two or more row blocks: 128 × 64 floats = 32 KB of the 48 KB
    /// L1d. Measured on the Xeon (in one process, the ≈29 M model's 25 products per step, 32 rows, sum
    /// of per-call minima, alternating with whole-k passes): faster in 14 of 15 runs (10 on one thread,
    /// 5 on two) by 1.5–6.6%, median 3.7%, one run 3.6% slower; neutral at 8 and 16 rows; 96 and 160
    /// measured alike. (A 64-step variant was slower on a Zen 5 VM: docs/inference.md, tenth session.)
    /// </summary>
    const int KSlice = 128;

    /// <summary>
    /// k steps per slice from <see cref="LongSliceBlocks"/> row blocks on (prefill-sized calls): 512 × 64 floats = 128 KB,
    /// read from L2 by every block after the first (as the GEMM's B micro-panels are), so each block's 24 partial sums
    /// go out to y and back a quarter as often as with <see cref="KSlice"/>. Measured in one process on the 29 M model's
    /// prefill of 256 tokens (the engine's own Feed, 20 alternating pairs, 2 threads): 512 vs 128 1.07× and 1.08×
    /// (1,024) in two runs, 512 vs the whole k (1,536) 1.01×, 512 vs 256 1.02×. At 8–64 rows, over a step's 33 products
    /// streamed from memory, 512 and 128 measured alike (0.99–1.02×), so decode keeps <see cref="KSlice"/>.
    /// </summary>
    const int KSliceLong = 512;

    /// <summary>Row blocks (16 = 91+ rows) from which a call takes <see cref="KSliceLong"/> slices.</summary>
    const int LongSliceBlocks = 16;

    /// <summary>
    /// Whether decode-sized calls (2–15 row blocks: 7–90 rows) take their panels in <see cref="KSlice"/> slices; otherwise
    /// each block runs over the whole k, reading the panel from L2 after the first. On by default on Intel cores only: on
    /// the Xeon the slices measured 1.5–6.6% faster (tenth session); on a Zen 5 EPYC (1 MB L2, full-rate AVX-512) the
    /// whole k measured faster in one process, the engine's continuous batching alternating the two settings call by call
    /// over 30 pairs of 48-token runs: 1.115× at 8 sequences (IQR 1.084–1.131), 1.106× at 16, 1.045× (1.029–1.059) at 32,
    /// 1.108× at 64 (docs/inference.md, fifteenth session). The bits are the same either way. Settable for tests and A/Bs.
    /// </summary>
    internal static bool DecodeSlices = CpuCaches.IsIntel;

    /// <summary>Timing switch for <see cref="KSliceLong"/> (an A/B in one process flips it; the bits are the same either way).</summary>
    internal static bool LongSlices = true;

    /// <summary>
    /// Timing switch for the slice-outer order (<c>TESSERA_PANEL_SLICE_OUTER=0</c> turns it off; an A/B in one
    /// process flips it). Results are the same bits either way: each output is still one FMA chain over p in order.
    /// </summary>
    internal static bool SliceOuter = Environment.GetEnvironmentVariable("TESSERA_PANEL_SLICE_OUTER") != "0";

    /// <summary>
    /// Activation floats (n·k) from which a thread's range of panels is walked slices outer, panels inner: from
    /// half the core's L2 (1 MB here: 256 rows of the 29 M model's down projection, k = 1,536), where the
    /// activations no longer stay in L2 beside a panel and its prefetched successor. Measured on the Xeon in one
    /// process (weights streamed, calls alternating, 80 pairs): down 256×512×1536 1.07–1.15× (median per-pair
    /// time ratio, one and two threads), gate·up 1.01–1.03×, q·k·v and o (k = 512, below the threshold) 0.98–1.01×.
    /// Decode steps (n ≤ 64) stay under it. Settable for tests.
    /// </summary>
    internal static long SliceOuterActivations = CpuCaches.L2BytesPerCore / 2 / sizeof(float);

    /// <summary>
    /// Row blocks (4 = 19+ rows) from which the next panel is prefetched. Measured in one process,
    /// weights streamed from DRAM, 2 threads: at 32 rows 9–19% faster; at 8–16 rows, where a step is
    /// still memory-bound, prefetching only adds traffic (4–20% slower), so it stays off there.
    /// </summary>
    const int PrefetchBlocks = 4;

    /// <summary>
    /// How far ahead (floats: 4 KB, 16 k steps) the first block of an unprefetched panel asks for
    /// lines. Measured in one process, weights from DRAM: 5–25% faster at 5–16 rows, neutral at 1 and 32.
    /// </summary>
    const int Ahead = 1024;

    /// <summary>Chunks per thread in the prefetching regime: one contiguous range each (at 32 rows, 1 measured 4–6% better than 2 and 5–15% better than 4 or 8).</summary>
    const int ChunksPerThreadPrefetching = 1;

    /// <summary>
    /// m (1..6) rows against one panel. A panel narrower than 64 columns (the last of a matrix whose
    /// rows are not a multiple of 64) goes through a 6×64 scratch tile, and only its real columns are copied out.
    /// </summary>
    static void Block(float* panel, int k, int ldx, float* x, int m, float* y, int ldy, int width, float* pf, int lines, bool acc)
    {
        if (width < PanelRows) { NarrowBlock(panel, k, x, m, y, ldy, width, pf, lines); return; }
        Rows(panel, k, ldx, x, m, y, ldy, pf, lines, acc);
    }

    /// <summary>The last panel of a matrix whose rows are not a multiple of 64: computed into a scratch tile, only the real columns copied out.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]   // keeps the stackalloc (zeroed on entry) off the common path
    static void NarrowBlock(float* panel, int k, float* x, int m, float* y, int ldy, int width, float* pf, int lines)
    {
        float* tile = stackalloc float[BlockRows * PanelRows];
        Rows(panel, k, k, x, m, tile, PanelRows, pf, lines, false);
        for (int i = 0; i < m; i++) new ReadOnlySpan<float>(tile + i * PanelRows, width).CopyTo(new Span<float>(y + (long)i * ldy, width));
    }

    static void Rows(float* panel, int k, int ldx, float* x, int m, float* y, int ldy, float* pf, int lines, bool acc)
    {
        switch (m)
        {
            case 1: Kernel<R1>(panel, k, ldx, x, y, ldy, pf, lines, acc); break;
            case 2: Kernel<R2>(panel, k, ldx, x, y, ldy, pf, lines, acc); break;
            case 3: Kernel<R3>(panel, k, ldx, x, y, ldy, pf, lines, acc); break;
            case 4: Kernel<R4>(panel, k, ldx, x, y, ldy, pf, lines, acc); break;
            case 5: Kernel<R5>(panel, k, ldx, x, y, ldy, pf, lines, acc); break;
            default: Kernel<R6>(panel, k, ldx, x, y, ldy, pf, lines, acc); break;
        }
    }

    /// <summary>A compile-time row count: each instantiation of <see cref="Kernel{T}"/> keeps only its rows' code.</summary>
    interface IRows { static abstract int Count { get; } }
    struct R1 : IRows { public static int Count => 1; }
    struct R2 : IRows { public static int Count => 2; }
    struct R3 : IRows { public static int Count => 3; }
    struct R4 : IRows { public static int Count => 4; }
    struct R5 : IRows { public static int Count => 5; }
    struct R6 : IRows { public static int Count => 6; }

    /// <summary>
    /// T.Count activation rows (stride ldx) against k steps of one panel: all 64 columns stored at y
    /// (row stride ldy), the accumulators starting from zero, or from what y holds when
    /// <paramref name="acc"/> (the partial sums of the previous k slice, so the FMA chain goes on).
    /// When <paramref name="lines"/> is 1, 2 or 4, each k step also prefetches that many
    /// consecutive 64-byte lines from <paramref name="pf"/> onwards into L2 (hints only: never a fault).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel<T>(float* w, int k, int ldx, float* x, float* y, int ldy, float* pf, int lines, bool acc) where T : struct, IRows
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default;
        Vector512<float> c50 = default, c51 = default, c52 = default, c53 = default;
        if (acc)
        {
            Load(y, out c00, out c01, out c02, out c03);
            if (T.Count > 1) Load(y + ldy, out c10, out c11, out c12, out c13);
            if (T.Count > 2) Load(y + 2L * ldy, out c20, out c21, out c22, out c23);
            if (T.Count > 3) Load(y + 3L * ldy, out c30, out c31, out c32, out c33);
            if (T.Count > 4) Load(y + 4L * ldy, out c40, out c41, out c42, out c43);
            if (T.Count > 5) Load(y + 5L * ldy, out c50, out c51, out c52, out c53);
        }
        float* x0 = x, x1 = x + ldx, x2 = x + 2L * ldx, x3 = x + 3L * ldx, x4 = x + 4L * ldx, x5 = x + 5L * ldx;
        for (int p = 0; p < k; p++, w += PanelRows)
        {
            var b0 = Vector512.LoadAligned(w);
            var b1 = Vector512.LoadAligned(w + 16);
            var b2 = Vector512.LoadAligned(w + 32);
            var b3 = Vector512.LoadAligned(w + 48);
            if (lines != 0)
            {
                Sse.Prefetch1(pf);
                if (lines > 1)
                {
                    Sse.Prefetch1(pf + 16);
                    if (lines > 2) { Sse.Prefetch1(pf + 32); Sse.Prefetch1(pf + 48); }
                }
                pf += 16 * lines;
            }
            var a = Vector512.Create(x0[p]);
            c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(a, b2, c02); c03 = Vector512.FusedMultiplyAdd(a, b3, c03);
            if (T.Count > 1)
            {
                a = Vector512.Create(x1[p]);
                c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
                c12 = Vector512.FusedMultiplyAdd(a, b2, c12); c13 = Vector512.FusedMultiplyAdd(a, b3, c13);
            }
            if (T.Count > 2)
            {
                a = Vector512.Create(x2[p]);
                c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
                c22 = Vector512.FusedMultiplyAdd(a, b2, c22); c23 = Vector512.FusedMultiplyAdd(a, b3, c23);
            }
            if (T.Count > 3)
            {
                a = Vector512.Create(x3[p]);
                c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
                c32 = Vector512.FusedMultiplyAdd(a, b2, c32); c33 = Vector512.FusedMultiplyAdd(a, b3, c33);
            }
            if (T.Count > 4)
            {
                a = Vector512.Create(x4[p]);
                c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
                c42 = Vector512.FusedMultiplyAdd(a, b2, c42); c43 = Vector512.FusedMultiplyAdd(a, b3, c43);
            }
            if (T.Count > 5)
            {
                a = Vector512.Create(x5[p]);
                c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
                c52 = Vector512.FusedMultiplyAdd(a, b2, c52); c53 = Vector512.FusedMultiplyAdd(a, b3, c53);
            }
        }
        Store(y, c00, c01, c02, c03);
        if (T.Count > 1) Store(y + ldy, c10, c11, c12, c13);
        if (T.Count > 2) Store(y + 2L * ldy, c20, c21, c22, c23);
        if (T.Count > 3) Store(y + 3L * ldy, c30, c31, c32, c33);
        if (T.Count > 4) Store(y + 4L * ldy, c40, c41, c42, c43);
        if (T.Count > 5) Store(y + 5L * ldy, c50, c51, c52, c53);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Load(float* y, out Vector512<float> v0, out Vector512<float> v1, out Vector512<float> v2, out Vector512<float> v3)
    {
        v0 = Vector512.Load(y); v1 = Vector512.Load(y + 16); v2 = Vector512.Load(y + 32); v3 = Vector512.Load(y + 48);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* y, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
    {
        Vector512.Store(v0, y); Vector512.Store(v1, y + 16); Vector512.Store(v2, y + 32); Vector512.Store(v3, y + 48);
    }
}
