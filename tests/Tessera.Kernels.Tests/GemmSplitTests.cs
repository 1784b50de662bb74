namespace Tessera.Kernels.Tests;

/// <summary>
/// The GEMM's dynamic split (blocks of rows or columns claimed from a counter) against the static
/// one-range-per-thread split: bit-identical on row-split and column-split shapes, ragged edges,
/// every transpose, 2 and 3 threads, and the same as one thread.
/// </summary>
public class GemmSplitTests
{
    static readonly object SplitLock = new();

    [Theory]
    [InlineData(1000, 300, 520)]   // row split, several 144-row blocks, ragged last panel
    [InlineData(30, 700, 300)]     // few rows: split over column panels
    [InlineData(257, 129, 600)]    // K over three blocks
    public void DynamicSplitGivesTheStaticBits(int m, int n, int k)
    {
        var rng = new TestRandom((ulong)(m + 3 * n + 7 * k));
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                float[] a = rng.Array(m * k), b = rng.Array(k * n);
                int lda = ta ? m : k, ldb = tb ? k : n;
                var one = Run(1, false, ta, tb, m, n, k, a, lda, b, ldb);
                foreach (int threads in new[] { 2, 3 })
                {
                    var fixedSplit = Run(threads, false, ta, tb, m, n, k, a, lda, b, ldb);
                    var claimed = Run(threads, true, ta, tb, m, n, k, a, lda, b, ldb);
                    for (int i = 0; i < one.Length; i++)
                    {
                        int bits = BitConverter.SingleToInt32Bits(one[i]);
                        if (bits != BitConverter.SingleToInt32Bits(fixedSplit[i]) || bits != BitConverter.SingleToInt32Bits(claimed[i]))
                            Assert.Fail($"{m}x{n}x{k} ta={ta} tb={tb} threads={threads}: C[{i}] one thread {one[i]:R}, static {fixedSplit[i]:R}, dynamic {claimed[i]:R}.");
                    }
                }
            }
    }

    /// <summary>
    /// The two loop orders (A micro-panel in L1 with B micro-panels streaming past it over an L2-sized B
    /// block, the default; B micro-panel with A micro-panels streaming past it over an L3-sized B block)
    /// give the same bits: ragged M, N and K, N across two and three L2-sized B blocks, every transpose,
    /// accumulate on and off, 1 and 2 threads.
    /// </summary>
    [Theory]
    [InlineData(151, 1100, 301)]   // N over two L2-sized B blocks (NC_L2 1024 or 512), K over two K blocks
    [InlineData(37, 2100, 90)]     // N over three of them, short ragged M
    [InlineData(301, 70, 513)]     // one narrow ragged column panel, K over three blocks
    public void LoopOrdersGiveTheSameBits(int m, int n, int k)
    {
        var rng = new TestRandom((ulong)(5 * m + n + 11 * k));
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                foreach (bool accumulate in new[] { false, true })
                {
                    float[] a = rng.Array(m * k), b = rng.Array(k * n), c0 = rng.Array(m * n, -2f, 2f);
                    int lda = ta ? m : k, ldb = tb ? k : n;
                    foreach (int threads in new[] { 1, 2 })
                    {
                        var aStationary = RunOrder(threads, true, ta, tb, m, n, k, a, lda, b, ldb, c0, accumulate);
                        var bStationary = RunOrder(threads, false, ta, tb, m, n, k, a, lda, b, ldb, c0, accumulate);
                        for (int i = 0; i < c0.Length; i++)
                            if (BitConverter.SingleToInt32Bits(aStationary[i]) != BitConverter.SingleToInt32Bits(bStationary[i]))
                                Assert.Fail($"{m}x{n}x{k} ta={ta} tb={tb} acc={accumulate} threads={threads}: C[{i}] A-stationary {aStationary[i]:R}, B-stationary {bStationary[i]:R}.");
                    }
                }
    }

    /// <summary>
    /// Packing each K block of A once for every column block (<see cref="Gemm.PackAOnce"/>, K blocks outer) and
    /// handing out small row blocks (<see cref="Gemm.FineChunks"/>) give the bits of neither: N across two and three
    /// L2-sized B blocks (row split, and a short M that splits over columns on 2 and 3 threads), ragged M, N and K,
    /// every transpose, accumulate on and off, 1–3 threads.
    /// </summary>
    [Theory]
    [InlineData(151, 1100, 301)]   // row split over two or three column blocks, K over two blocks
    [InlineData(37, 2100, 90)]     // 7 row panels: row split on 1 thread (shared A), column split on 2 and 3
    [InlineData(301, 70, 513)]     // one column block (no shared A), fine row chunks, K over three blocks
    public void PackAOnceAndFineChunksGiveTheSameBits(int m, int n, int k)
    {
        var rng = new TestRandom((ulong)(7 * m + 3 * n + k));
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                foreach (bool accumulate in new[] { false, true })
                {
                    float[] a = rng.Array(m * k), b = rng.Array(k * n), c0 = rng.Array(m * n, -2f, 2f);
                    int lda = ta ? m : k, ldb = tb ? k : n;
                    var reference = RunSwitches(1, false, false, ta, tb, m, n, k, a, lda, b, ldb, c0, accumulate);
                    foreach (int threads in new[] { 1, 2, 3 })
                        foreach (bool once in new[] { false, true })
                            foreach (bool fine in new[] { false, true })
                            {
                                var c = RunSwitches(threads, once, fine, ta, tb, m, n, k, a, lda, b, ldb, c0, accumulate);
                                for (int i = 0; i < c0.Length; i++)
                                    if (BitConverter.SingleToInt32Bits(c[i]) != BitConverter.SingleToInt32Bits(reference[i]))
                                        Assert.Fail($"{m}x{n}x{k} ta={ta} tb={tb} acc={accumulate} threads={threads} once={once} fine={fine}: C[{i}] {c[i]:R}, both off on one thread {reference[i]:R}.");
                            }
                }
    }

    /// <summary>
    /// The row-by-row packer for A stored K×M (<see cref="Gemm.PackARows"/>) writes exactly the panel layout's
    /// definition — value (p, r) of panel q at q·kc·6 + p·6 + r is A[p0 + p, i0 + 6q + r], zero past the block's
    /// rows — and every slot of it: block heights across the 8-panel groups and ragged last panels, a power-of-two
    /// and an odd lda, K offsets, short and long K blocks. The panel-by-panel packer (switch off) is held to the same
    /// definition.
    /// </summary>
    [Theory]
    [InlineData(512, 0, 144, 0, 256)]
    [InlineData(512, 6, 49, 256, 256)]
    [InlineData(301, 25, 47, 3, 17)]
    [InlineData(301, 1, 5, 0, 1)]
    [InlineData(96, 48, 48, 10, 40)]
    public unsafe void TransposedAPackingMatchesThePanelLayout(int lda, int i0, int mc, int p0, int kc)
    {
        const int mr = 6;
        int rowsOfStorage = p0 + kc + 20;   // room past the block, so a read outside it would show
        var rng = new TestRandom((ulong)(lda * 31 + i0 * 7 + mc + p0 + kc));
        float[] a = rng.Array(rowsOfStorage * lda);
        int panels = (mc + mr - 1) / mr;
        foreach (bool rows in new[] { true, false })
        {
            var dst = new float[panels * kc * mr];
            Array.Fill(dst, float.NaN);
            lock (SplitLock)
            {
                bool saved = Gemm.PackARows;
                Gemm.PackARows = rows;
                try
                {
                    fixed (float* pa = a, pd = dst) GemmPacking.PackA(true, pa, lda, i0, mc, p0, kc, pd, mr);
                }
                finally { Gemm.PackARows = saved; }
            }
            for (int q = 0; q < panels; q++)
                for (int p = 0; p < kc; p++)
                    for (int r = 0; r < mr; r++)
                    {
                        int col = q * mr + r;
                        float expected = col < mc ? a[(p0 + p) * lda + i0 + col] : 0f;
                        float got = dst[q * kc * mr + p * mr + r];
                        if (BitConverter.SingleToInt32Bits(got) != BitConverter.SingleToInt32Bits(expected))
                            Assert.Fail($"rows={rows} lda={lda} i0={i0} mc={mc} p0={p0} kc={kc}: panel {q} step {p} row {r} holds {got:R}, expected {expected:R}.");
                    }
        }
    }

    /// <summary>Aᵀ·B (the weight-gradient layout) gives the same bits with the row-by-row A packer on and off, 1–3 threads.</summary>
    [Theory]
    [InlineData(151, 130, 301)]
    [InlineData(512, 64, 520)]
    public void RowWiseAPackingGivesTheSameBits(int m, int n, int k)
    {
        var rng = new TestRandom((ulong)(5 * m + n + k));
        float[] a = rng.Array(m * k), b = rng.Array(k * n), c0 = rng.Array(m * n, -2f, 2f);
        foreach (bool accumulate in new[] { false, true })
            foreach (int threads in new[] { 1, 2, 3 })
            {
                float[] on = (float[])c0.Clone(), off = (float[])c0.Clone();
                using var pool = new WorkerPool(threads);
                lock (SplitLock)
                {
                    bool saved = Gemm.PackARows;
                    try
                    {
                        Gemm.PackARows = true;
                        Gemm.Sgemm(pool, true, false, m, n, k, a, m, b, n, on, n, accumulate);
                        Gemm.PackARows = false;
                        Gemm.Sgemm(pool, true, false, m, n, k, a, m, b, n, off, n, accumulate);
                    }
                    finally { Gemm.PackARows = saved; }
                }
                for (int i = 0; i < on.Length; i++)
                    if (BitConverter.SingleToInt32Bits(on[i]) != BitConverter.SingleToInt32Bits(off[i]))
                        Assert.Fail($"{m}x{n}x{k} acc={accumulate} threads={threads}: C[{i}] rows {on[i]:R}, panels {off[i]:R}.");
            }
    }

    [Theory]
    [InlineData("2048K", 2 << 20)]
    [InlineData("1024K\n", 1 << 20)]
    [InlineData("2M", 2 << 20)]
    [InlineData("1048576", 1 << 20)]
    [InlineData("", null)]
    [InlineData("-2K", null)]
    [InlineData("12", null)]
    [InlineData("big", null)]
    public void L2SizeParsesSysfsText(string text, int? bytes)
        => Assert.Equal(bytes, CpuCaches.ParseSize(text.Replace("\\n", "\n")));

    [CpuinfoFact]
    public void TheCpuVendorFromCpuidAgreesWithProcCpuinfo()
    {
        // CPUID leaf 0 as the kernels read it (they choose a blocking by vendor) against what Linux reports.
        var line = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("vendor_id", StringComparison.Ordinal));
        Assert.Equal(line.Split(':')[1].Trim() == "GenuineIntel", CpuCaches.IsIntel);
    }

    static float[] RunOrder(int threads, bool aStationary, bool ta, bool tb, int m, int n, int k, float[] a, int lda, float[] b, int ldb, float[] c0, bool accumulate)
    {
        var c = (float[])c0.Clone();
        using var pool = new WorkerPool(threads);
        lock (SplitLock)
        {
            bool saved = Gemm.AStationary;
            Gemm.AStationary = aStationary;
            try { Gemm.Sgemm(pool, ta, tb, m, n, k, a, lda, b, ldb, c, n, accumulate); }
            finally { Gemm.AStationary = saved; }
        }
        return c;
    }

    static float[] RunSwitches(int threads, bool packAOnce, bool fineChunks, bool ta, bool tb, int m, int n, int k, float[] a, int lda, float[] b, int ldb, float[] c0, bool accumulate)
    {
        var c = (float[])c0.Clone();
        using var pool = new WorkerPool(threads);
        lock (SplitLock)
        {
            bool savedOnce = Gemm.PackAOnce, savedFine = Gemm.FineChunks;
            Gemm.PackAOnce = packAOnce;
            Gemm.FineChunks = fineChunks;
            try { Gemm.Sgemm(pool, ta, tb, m, n, k, a, lda, b, ldb, c, n, accumulate); }
            finally { Gemm.PackAOnce = savedOnce; Gemm.FineChunks = savedFine; }
        }
        return c;
    }

    static float[] Run(int threads, bool dynamic, bool ta, bool tb, int m, int n, int k, float[] a, int lda, float[] b, int ldb)
    {
        var c = new float[m * n];
        using var pool = new WorkerPool(threads);
        lock (SplitLock)
        {
            bool saved = Gemm.DynamicSplit;
            Gemm.DynamicSplit = dynamic;
            try { Gemm.Sgemm(pool, ta, tb, m, n, k, a, lda, b, ldb, c, n); }
            finally { Gemm.DynamicSplit = saved; }
        }
        return c;
    }
}

/// <summary>A fact that needs Linux's /proc/cpuinfo with a vendor_id line (x86 Linux); skipped with a message elsewhere.</summary>
public sealed class CpuinfoFactAttribute : FactAttribute
{
    public CpuinfoFactAttribute()
    {
        if (!File.Exists("/proc/cpuinfo") || !File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("vendor_id", StringComparison.Ordinal)))
            Skip = "/proc/cpuinfo with a vendor_id line is absent (not x86 Linux): nothing to compare the CPUID vendor with.";
    }
}
