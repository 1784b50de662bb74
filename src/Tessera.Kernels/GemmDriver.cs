using System.Runtime.CompilerServices;

namespace Tessera.Kernels;

/// <summary>
/// The BLIS-style loop nest behind <see cref="Gemm"/> (default order, <see cref="Gemm.AStationary"/>):
/// <code>
/// for jc in N by NC_L2                   (B block KC×NC_L2 = half the core's L2, shared by all workers)
///   for pc in K by KC                    (pack B block once, workers split the panels)
///     for ic in this worker's rows by MC (pack A block MC×KC)
///       for ir in MR panels               (A micro-panel MR×KC, 6 KB, stays in L1)
///         for jr in NR panels             (B micro-panel KC×NR streams from the B block in L2)
///           micro-kernel MR×NR            (C row strip walked left to right)
/// </code>
/// When N spans more than one B block and the rows are split (<see cref="Gemm.PackAOnce"/>), the two outer loops
/// swap (pc outer, jc inner) and each K block of A is packed once, into a buffer the workers share, by whichever
/// thread claims the rows in the first column block; later column blocks reuse it. Multithreaded row splits claim
/// blocks of at most 4 MR panels in this order (<see cref="Gemm.FineChunks"/>), packing that many rows at a time.
/// With <see cref="Gemm.AStationary"/> off the two inner loops swap and NC is 4096: one B micro-panel
/// (64 KB, L2) meets the MC/MR A micro-panels and the B block (4 MB) is re-read from L3 once per A block.
/// </summary>
/// <remarks>
/// Work is split over MR-row panels (or over NR-column panels when M is too short to share), in
/// blocks that the threads claim from a counter (<see cref="Gemm.DynamicSplit"/>; else statically,
/// one range per worker), so each block owns disjoint C tiles; the K blocks are the same for every
/// split, so every C entry is summed in the same order regardless of the thread count or of which
/// thread computed it.
/// The hot methods here and in the packing/kernel classes are marked AggressiveOptimization: a
/// training step's first GEMMs would otherwise run tier-0 code with unoptimised vector loops.
/// </remarks>
internal static unsafe class GemmDriver
{
    /// <summary>Below this many multiply-adds the pool's hand-off costs more than a second core saves.</summary>
    const long ParallelThreshold = 128L * 128 * 128;

    /// <summary>NR-column panels per dynamically claimed block when the split runs over columns.</summary>
    const int ColumnChunkPanels = 4;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(WorkerPool pool, GemmKernelKind kind, bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate)
                for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
            return;
        }

        if (m <= GemmSmallM.MaxRows && kind == GemmKernelKind.Avx512)
        {
            GemmSmallM.Run(pool, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }

        var job = GemmJob.ForCurrentThread;
        job.Set(GemmBlocking.For(kind), transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        var blk = job.Blocking;
        int threads = (long)m * n * k < ParallelThreshold ? 1 : pool.ThreadCount;

        // Equal K blocks (not KC, KC, …, remainder) so a K just past KC does not waste a pass.
        int kBlocks = (k + blk.Kc - 1) / blk.Kc;
        int kcEven = (k + kBlocks - 1) / kBlocks;
        int ncBlock = Gemm.AStationary ? blk.NcL2 : blk.Nc;
        int ncMax = Math.Min(ncBlock, n);
        float* bp = GemmScratch.ForCurrentThread.B((nuint)kcEven * (nuint)RoundUp(ncMax, blk.Nr));
        job.Bp = bp;

        int mPanels = (m + blk.Mr - 1) / blk.Mr;
        // Rows per dynamically claimed block: one MC-row A block, or (A-stationary order, FineChunks) at most
        // FineRowChunkPanels panels, since there the B block's reuse from L2 does not depend on the A block's height
        // and a smaller block shortens the last thread's tail at each K block's barrier.
        int rowChunkPanels = Gemm.AStationary && Gemm.FineChunks ? Math.Min(blk.Mc / blk.Mr, FineRowChunkPanels) : blk.Mc / blk.Mr;
        // One K block of the whole packed A, shared by the workers and reused for every column block
        // (Gemm.PackAOnce): only for row splits (every block's rows are then packed once, by whichever thread
        // claims them in the first column block) over more than one column block.
        int widestPanels = (ncMax + blk.Nr - 1) / blk.Nr;
        bool shareA = Gemm.AStationary && Gemm.PackAOnce && n > ncBlock
            && (mPanels >= 4 * threads || mPanels >= widestPanels)
            && (long)mPanels * blk.Mr * kcEven <= SharedAMaxFloats;
        job.SharedA = shareA ? GemmScratch.ForCurrentThread.SharedA((nuint)mPanels * (nuint)blk.Mr * (nuint)kcEven) : null;
        if (shareA)
        {
            // K blocks outer, column blocks inner: each C entry still adds its K blocks in order.
            for (int pc = 0; pc < k; pc += kcEven)
                for (int jc = 0; jc < n; jc += ncBlock)
                {
                    int nc = Math.Min(ncBlock, n - jc);
                    job.SplitRows = true;
                    job.SetBlock(jc, nc, pc, Math.Min(kcEven, k - pc), overwrite: pc == 0 && !accumulate, packSharedA: jc == 0);
                    RunBlock(pool, job, threads, (nc + blk.Nr - 1) / blk.Nr, mPanels, rowChunkPanels);
                }
            return;
        }
        for (int jc = 0; jc < n; jc += ncBlock)
        {
            int nc = Math.Min(ncBlock, n - jc);
            int nPanels = (nc + blk.Nr - 1) / blk.Nr;
            // Split rows unless there are too few row panels to keep every worker busy.
            job.SplitRows = mPanels >= 4 * threads || mPanels >= nPanels;
            for (int pc = 0; pc < k; pc += kcEven)
            {
                job.SetBlock(jc, nc, pc, Math.Min(kcEven, k - pc), overwrite: pc == 0 && !accumulate, packSharedA: false);
                RunBlock(pool, job, threads, nPanels, mPanels, rowChunkPanels);
            }
        }
    }

    /// <summary>
    /// Most MR-row panels in a dynamically claimed row block with <see cref="Gemm.FineChunks"/>: 4 (24 rows of the
    /// AVX-512 tile). Against 8 it read 1.08–1.09× at 1024³ and 1.02× at 2048³ on 2 threads (wide IQRs; session 11 in
    /// docs/training-performance.md). Settable for the in-process sweeps of a timing harness.
    /// </summary>
    internal static int FineRowChunkPanels = 4;

    /// <summary>Largest shared packed-A buffer (<see cref="Gemm.PackAOnce"/>): 32 MB, i.e. M up to 32768 at KC 256.</summary>
    const long SharedAMaxFloats = 8L << 20;

    /// <summary>One (column block, K block): pack the B block, then compute every C tile of the column block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void RunBlock(WorkerPool pool, GemmJob job, int threads, int nPanels, int mPanels, int rowChunkPanels)
    {
        if (threads == 1)
        {
            job.PackBPanels(0, 0, nPanels);
            job.Compute(0, 0, job.SplitRows ? mPanels : nPanels);
        }
        else if (Gemm.DynamicSplit)
        {
            // Blocks claimed from a counter: a core the host slows down (a busy neighbour, a
            // descheduled vCPU) takes fewer of them instead of holding every other core at the barrier.
            pool.For(nPanels, (nPanels + 1) / 2, job.PackBChunk);
            if (job.SplitRows) pool.For(mPanels, ChunkCount(mPanels, rowChunkPanels, threads), job.ComputeChunk);
            else pool.For(nPanels, ChunkCount(nPanels, ColumnChunkPanels, threads), job.ComputeChunk);
        }
        else
        {
            pool.For(nPanels, job.PackBPanels);
            pool.For(job.SplitRows ? mPanels : nPanels, job.Compute);
        }
    }

    static int RoundUp(int x, int to) => (x + to - 1) / to * to;

    /// <summary>
    /// How many near-equal chunks a dynamically split phase of <paramref name="panels"/> panels gets:
    /// about <paramref name="panelsPerChunk"/> panels each, the count rounded up to a multiple of the
    /// threads (<see cref="Gemm.EvenChunks"/>) so that equally fast threads finish together. Without the
    /// rounding 2048 rows (342 panels) made 15 chunks: 8 for one thread, 7 for the other, the phase
    /// 8/7.5 = 6.7% longer than an even split.
    /// </summary>
    static int ChunkCount(int panels, int panelsPerChunk, int threads)
    {
        int chunks = (panels + panelsPerChunk - 1) / panelsPerChunk;
        return Gemm.EvenChunks ? RoundUp(chunks, threads) : chunks;
    }
}

/// <summary>Tile and cache-block sizes plus the micro-kernel for one instruction set.</summary>
internal readonly unsafe struct GemmBlocking
{
    public readonly int Mr, Nr, Kc, Mc, Nc;
    /// <summary>
    /// NC when B micro-panels stream past an L1-resident A micro-panel (<see cref="Gemm.AStationary"/>): the
    /// B block (KC×NC) fills half the core's L2 (1024 columns at KC 256 with a 2 MB L2, 512 with 1 MB), the
    /// other half holding the A block, C lines and the packing traffic. On the 2 MB-L2 Xeon of session 10,
    /// 1024 read best of 512/1024/1536 at 2048³ (docs/training-performance.md; the 1 MB-L2 value is not
    /// measured); <c>TESSERA_GEMM_NC_L2</c> overrides it.
    /// </summary>
    public readonly int NcL2;
    public readonly delegate*<int, float*, float*, float*, int, bool, void> Kernel;
    /// <summary>Whether ragged panels of ≤ 48 columns use <see cref="GemmMicroKernels.Avx512Narrow(int, int, float*, float*, float*)"/>.</summary>
    public readonly bool Narrow;

    GemmBlocking(int mr, int nr, int kc, int mc, int nc, delegate*<int, float*, float*, float*, int, bool, void> kernel, bool narrow = false)
    {
        Mr = mr; Nr = nr; Kc = kc; Mc = Math.Max(mr, mc / mr * mr); Nc = Math.Max(nr, nc / nr * nr); Kernel = kernel; Narrow = narrow;
        NcL2 = Math.Max(nr, Tuning("TESSERA_GEMM_NC_L2", CpuCaches.L2BytesPerCore / 2 / (kc * sizeof(float))) / nr * nr);
    }

    // AVX-512 (Zen 4/5: 32–48 KB L1d, 1 MB L2 per core, shared L3; Emerald Rapids: 48 KB, 2 MB):
    // the B micro-panels (KC×NR = 64 KB each) are read from L2 — at 24 FMAs per 256 bytes of B the L2
    // keeps up — past an L1-resident A micro-panel (6 KB); NC is NcL2 in that default order, the 4096
    // below only in the old one (B block in L3). KC 128–512 and MC 96–288 measured within noise of each
    // other on the 2-core Zen 5 VM; KC = 256 halves the C-tile traffic of KC = 128 (and sets the
    // summation order: changing it changes the bits). A 12×32 tile measured 0.79–0.93× of this one on
    // the Emerald Rapids Xeon (session 10, docs/training-performance.md).
    static readonly GemmBlocking Avx512 = new(GemmMicroKernels.Avx512Mr, GemmMicroKernels.Avx512Nr,
        Tuning("TESSERA_GEMM_KC", 256), Tuning("TESSERA_GEMM_MC", 144), Tuning("TESSERA_GEMM_NC", 4096), &GemmMicroKernels.Avx512, narrow: true);

    /// <summary>
    /// A blocking size from the environment (read once, for tuning sweeps with <c>bench gemm</c> /
    /// <c>bench train --profile</c> without rebuilding), else <paramref name="fallback"/>.
    /// </summary>
    static int Tuning(string variable, int fallback)
        => int.TryParse(Environment.GetEnvironmentVariable(variable), out int v) && v is >= 16 and <= 4096 ? v : fallback;

    static readonly GemmBlocking Avx2 = new(GemmMicroKernels.Avx2Mr, GemmMicroKernels.Avx2Nr,
        256, 144, 4096, &GemmMicroKernels.Avx2);
    static readonly GemmBlocking Scalar = new(GemmMicroKernels.ScalarMr, GemmMicroKernels.ScalarNr,
        256, 64, 1024, &GemmMicroKernels.Scalar);

    public static GemmBlocking For(GemmKernelKind kind) => kind switch
    {
        GemmKernelKind.Avx512 => Avx512,
        GemmKernelKind.Avx2 => Avx2,
        _ => Scalar,
    };
}

/// <summary>
/// One Sgemm call's state, shared with the pool's workers through two delegates bound once per
/// calling thread, so steady-state calls allocate nothing.
/// </summary>
internal sealed unsafe class GemmJob
{
    [ThreadStatic] static GemmJob? current;

    public static GemmJob ForCurrentThread => current ??= new GemmJob();

    public readonly Action<int, int, int> PackBPanels, Compute;
    /// <summary>The same two phases as chunk bodies for <see cref="WorkerPool.For(int, int, Action{int, int})"/>.</summary>
    public readonly Action<int, int> PackBChunk, ComputeChunk;
    public GemmBlocking Blocking;
    public bool SplitRows;
    public float* Bp;
    /// <summary>The shared packed A of the current K block (<see cref="Gemm.PackAOnce"/>; panel q at q·kc·MR), or null.</summary>
    public float* SharedA;

    bool transA, transB, overwrite, packSharedA;
    int m, n, k, lda, ldb, ldc, jc, nc, pc, kc;
    float* a, b, c;

    GemmJob()
    {
        PackBPanels = PackBRange;
        Compute = ComputeRange;
        PackBChunk = (start, end) => PackBRange(0, start, end);
        ComputeChunk = (start, end) => ComputeRange(0, start, end);
    }

    public void Set(GemmBlocking blocking, bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc)
    {
        Blocking = blocking;
        this.transA = transA; this.transB = transB;
        this.m = m; this.n = n; this.k = k;
        this.a = a; this.lda = lda; this.b = b; this.ldb = ldb; this.c = c; this.ldc = ldc;
    }

    public void SetBlock(int jc, int nc, int pc, int kc, bool overwrite, bool packSharedA)
    {
        this.jc = jc; this.nc = nc; this.pc = pc; this.kc = kc; this.overwrite = overwrite; this.packSharedA = packSharedA;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void PackBRange(int worker, int start, int end)
    {
        int nr = Blocking.Nr;
        int j0 = start * nr, cols = Math.Min(end * nr, nc) - j0;
        GemmPacking.PackB(transB, b, ldb, pc, kc, jc + j0, cols, Bp + (long)start * kc * nr, nr);
    }

    /// <summary>Runs the MR-row panels [start, end) against every B panel, or every row against
    /// the B panels [start, end), depending on <see cref="SplitRows"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void ComputeRange(int worker, int start, int end)
    {
        var blk = Blocking;
        int mr = blk.Mr, nr = blk.Nr;
        int rowStart = 0, rowEnd = m, panelStart = 0, panelEnd = (nc + nr - 1) / nr;
        if (SplitRows) { rowStart = start * mr; rowEnd = Math.Min(end * mr, m); }
        else { panelStart = start; panelEnd = end; }

        float* own = SharedA == null ? GemmScratch.ForCurrentThread.A((nuint)blk.Mc * (nuint)kc) : null;
        float* tile = stackalloc float[mr * nr];
        for (int ic = rowStart; ic < rowEnd; ic += blk.Mc)
        {
            int mc = Math.Min(blk.Mc, rowEnd - ic);
            // Rows start on panel boundaries (rowStart and MC are multiples of MR), so panel ic/MR of the shared A.
            float* ap = SharedA == null ? own : SharedA + (long)(ic / mr) * kc * mr;
            if (SharedA == null || packSharedA) GemmPacking.PackA(transA, a, lda, ic, mc, pc, kc, ap, mr);
            int aPanels = (mc + mr - 1) / mr;
            if (Gemm.AStationary)
            {
                // A micro-panel outer (it stays in L1), B micro-panels inner (they stream from the
                // B block in L2): each C row strip is walked left to right.
                for (int ip = 0; ip < aPanels; ip++)
                    for (int jp = panelStart; jp < panelEnd; jp++)
                        Tile(blk, ap, ip, jp, ic, mc, kc, tile);
            }
            else
            {
                for (int jp = panelStart; jp < panelEnd; jp++)
                    for (int ip = 0; ip < aPanels; ip++)
                        Tile(blk, ap, ip, jp, ic, mc, kc, tile);
            }
        }
    }

    /// <summary>One MR×NR tile of C: A micro-panel <paramref name="ip"/> of the packed block times B micro-panel <paramref name="jp"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    void Tile(in GemmBlocking blk, float* ap, int ip, int jp, int ic, int mc, int kc, float* tile)
    {
        int mr = blk.Mr, nr = blk.Nr;
        int j = jp * nr, cols = Math.Min(nr, nc - j);
        int rows = Math.Min(mr, mc - ip * mr);
        float* bPanel = Bp + (long)jp * kc * nr;
        float* aPanel = ap + (long)ip * kc * mr;
        float* cTile = c + (long)(ic + ip * mr) * ldc + jc + j;
        if (rows == mr && cols == nr)
        {
            blk.Kernel(kc, aPanel, bPanel, cTile, ldc, overwrite);
            return;
        }
        // Ragged edge: compute the tile aside (only the vectors holding valid columns
        // when the AVX-512 narrow tile applies), then write only the valid part.
        if (blk.Narrow && cols <= 48) GemmMicroKernels.Avx512Narrow(cols, kc, aPanel, bPanel, tile);
        else blk.Kernel(kc, aPanel, bPanel, tile, nr, true);
        for (int r = 0; r < rows; r++)
        {
            float* dst = cTile + (long)r * ldc, src = tile + r * nr;
            if (overwrite) for (int x = 0; x < cols; x++) dst[x] = src[x];
            else for (int x = 0; x < cols; x++) dst[x] += src[x];
        }
    }
}
