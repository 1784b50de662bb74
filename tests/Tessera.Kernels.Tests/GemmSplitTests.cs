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
