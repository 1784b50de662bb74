using System.Runtime.Intrinsics.X86;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// The fast <see cref="Gemm"/> against its scalar twin <see cref="ScalarGemm"/>, for every
/// micro-kernel this machine can run, all four transpose combinations, accumulate on and off,
/// ragged shapes on every tile edge, padded leading dimensions, and 1 or 2 threads.
/// </summary>
public class GemmTests
{
    static readonly WorkerPool One = new(1);
    static readonly WorkerPool Two = new(2);

    /// <summary>Kernel names (the enum is internal, so theories take its name) × transposes.</summary>
    public static TheoryData<string, bool, bool> KernelsAndTransposes()
    {
        var data = new TheoryData<string, bool, bool>();
        foreach (var kind in SupportedKernels())
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    data.Add(kind.ToString(), ta, tb);
        return data;
    }

    static IEnumerable<GemmKernelKind> SupportedKernels()
    {
        yield return GemmKernelKind.Scalar;
        if (Avx2.IsSupported && Fma.IsSupported) yield return GemmKernelKind.Avx2;
        if (Avx512F.IsSupported) yield return GemmKernelKind.Avx512;
    }

    /// <summary>Sweeps each of M, N, K over 0..70 (all tile edges: MR = 4/6, NR = 4/16/64) with the
    /// other two drawn at random, accumulating on every other case.</summary>
    [Theory]
    [MemberData(nameof(KernelsAndTransposes))]
    public void MatchesScalarTwinOnEveryEdge(string kernel, bool transA, bool transB)
    {
        var kind = Enum.Parse<GemmKernelKind>(kernel);
        var rng = new TestRandom((ulong)(17 + (int)kind * 4 + (transA ? 2 : 0) + (transB ? 1 : 0)));
        for (int dim = 0; dim < 3; dim++)
            for (int len = 0; len <= 70; len++)
            {
                int m = dim == 0 ? len : 1 + rng.Next(40);
                int n = dim == 1 ? len : 1 + rng.Next(70);
                int k = dim == 2 ? len : 1 + rng.Next(40);
                CheckAgainstTwin(One, kind, transA, transB, m, n, k, accumulate: (len & 1) == 1, rng);
            }
    }

    /// <summary>Shapes that cross the cache blocks (K past KC, M past MC, N past NC) and take both
    /// multithreaded splits (over row panels, and over column panels when M is short); all but the
    /// N > NC case are above the size where the driver starts using a second thread.</summary>
    [Theory]
    [MemberData(nameof(KernelsAndTransposes))]
    public void MatchesScalarTwinAcrossBlocksAndThreads(string kernel, bool transA, bool transB)
    {
        var kind = Enum.Parse<GemmKernelKind>(kernel);
        var rng = new TestRandom(99);
        // One thread runs the same tiles in the same order (see the bit-identity test), and the edge
        // sweep above covers it, so the big shapes only need the two-thread pool.
        CheckAgainstTwin(Two, kind, transA, transB, 151, 131, 301, accumulate: false, rng);  // K > KC, M > MC, row split
        CheckAgainstTwin(Two, kind, transA, transB, 131, 137, 139, accumulate: true, rng);   // primes, row split
        CheckAgainstTwin(Two, kind, transA, transB, 7, 1501, 211, accumulate: true, rng);    // short M: column split
        CheckAgainstTwin(Two, kind, transA, transB, 3, 4200, 5, accumulate: false, rng);     // N > NC
        CheckAgainstTwin(Two, kind, transA, transB, 4, 1000, 300, accumulate: true, rng);    // tiny M, split over columns
        CheckAgainstTwin(Two, kind, transA, transB, 1, 999, 301, accumulate: false, rng);
    }

    /// <summary>
    /// The packed path's summation order is part of the contract (training runs are bit-identical
    /// across kernel and blocking changes): K is cut into ⌈K/256⌉ equal blocks, each C entry is a
    /// fused-multiply-add chain from zero over one block, and the blocks are added to C in order.
    /// Checked bit for bit against that order written out in scalar code, on every kernel, both
    /// thread counts, all transposes, with K spanning one to five blocks and ragged last panels of
    /// 1–48 columns (the AVX-512 narrow tiles), and N past the L2-sized B block (NC_L2 = 1024 columns
    /// with a 2 MB L2, 512 with 1 MB), so C row strips span two B blocks.
    /// </summary>
    [Theory]
    [MemberData(nameof(KernelsAndTransposes))]
    public void PackedPathKeepsItsSummationOrder(string kernel, bool transA, bool transB)
    {
        var kind = Enum.Parse<GemmKernelKind>(kernel);
        var rng = new TestRandom(41);
        foreach (var (m, n, k, accumulate) in new[] { (13, 96, 200, false), (25, 131, 600, true), (150, 129, 1030, false), (7, 3, 257, true), (30, 112, 300, true), (9, 70, 40, false), (20, 1100, 300, true) })
        {
            int lda = transA ? m : k, ldb = transB ? k : n;
            var a = rng.Array(m * k);
            var b = rng.Array(k * n);
            var c0 = rng.Array(m * n, -2f, 2f);
            var expected = (float[])c0.Clone();
            int blocks = (k + 255) / 256, kc = (k + blocks - 1) / blocks;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    float total = accumulate ? c0[i * n + j] : 0f;
                    for (int p0 = 0; p0 < k; p0 += kc)
                    {
                        float chain = 0f;
                        for (int p = p0; p < Math.Min(k, p0 + kc); p++)
                            chain = MathF.FusedMultiplyAdd(transA ? a[p * lda + i] : a[i * lda + p], transB ? b[j * ldb + p] : b[p * ldb + j], chain);
                        total = p0 == 0 && !accumulate ? chain : total + chain;
                    }
                    expected[i * n + j] = total;
                }
            foreach (var pool in new[] { One, Two })
            {
                var actual = (float[])c0.Clone();
                Gemm.Sgemm(pool, kind, transA, transB, m, n, k, a, lda, b, ldb, actual, n, accumulate);
                for (int i = 0; i < m * n; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                        $"{kind} tA={transA} tB={transB} {m}x{n}x{k} acc={accumulate} threads={pool.ThreadCount}: C[{i}] = {actual[i]:R}, the fixed order gives {expected[i]:R}");
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ZeroKZeroesOrKeepsC(bool accumulate)
    {
        var c = new[] { 1f, 2f, 3f, 4f, 5f, 6f };
        Gemm.Sgemm(false, false, 2, 3, 0, ReadOnlySpan<float>.Empty, 1, ReadOnlySpan<float>.Empty, 3, c, 3, accumulate);
        Assert.Equal(accumulate ? new[] { 1f, 2f, 3f, 4f, 5f, 6f } : new float[6], c);
    }

    [Fact]
    public void RepeatedCallsAndThreadCountsAreBitIdentical()
    {
        const int m = 150, n = 140, k = 300;
        var rng = new TestRandom(5);
        var a = rng.Array(m * k);
        var b = rng.Array(k * n);
        var first = new float[m * n];
        var second = new float[m * n];
        var single = new float[m * n];
        Gemm.Sgemm(Two, false, true, m, n, k, a, k, b, k, first, n);
        Gemm.Sgemm(Two, false, true, m, n, k, a, k, b, k, second, n);
        Gemm.Sgemm(One, false, true, m, n, k, a, k, b, k, single, n);
        for (int i = 0; i < m * n; i++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(first[i]), BitConverter.SingleToInt32Bits(second[i]));
            Assert.Equal(BitConverter.SingleToInt32Bits(first[i]), BitConverter.SingleToInt32Bits(single[i]));
        }
    }

    [Fact]
    public void SteadyStateCallsDoNotAllocate()
    {
        var rng = new TestRandom(3);
        var a = rng.Array(90 * 70);
        var b = rng.Array(70 * 130);
        var c = new float[90 * 130];
        foreach (int m in new[] { 90, 2 }) // packed path and small-M path
        {
            Gemm.Sgemm(One, false, false, m, 130, 70, a, 70, b, 130, c, 130); // first call sizes the scratch
            long before = GC.GetAllocatedBytesForCurrentThread();
            Gemm.Sgemm(One, false, false, m, 130, 70, a, 70, b, 130, c, 130);
            Gemm.Sgemm(One, true, true, m, 130, 70, a, m, b, 70, c, 130, accumulate: true);
            Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
        }
    }

    [Fact]
    public void PointerOverloadMatchesSpanOverload()
    {
        const int m = 33, n = 70, k = 45;
        var rng = new TestRandom(8);
        var a = rng.Array(k * m);
        var b = rng.Array(k * n);
        var viaSpan = new float[m * n];
        var viaPointer = new float[m * n];
        Gemm.Sgemm(One, true, false, m, n, k, a, m, b, n, viaSpan, n);
        unsafe
        {
            fixed (float* pa = a, pb = b, pc = viaPointer)
                Gemm.Sgemm(One, true, false, m, n, k, pa, m, pb, n, pc, n, accumulate: false);
        }
        Assert.Equal(viaSpan, viaPointer);
    }

    [Fact]
    public void BadArgumentsNameTheShapes()
    {
        var buf = new float[64];
        var e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 4, 4, 5, buf.AsSpan(0, 19), 5, buf, 4, buf, 4));
        Assert.Contains("A holds 19 floats", e.Message);
        Assert.Contains("4x5", e.Message);
        e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, true, 4, 4, 5, buf, 5, buf, 4, buf, 4));
        Assert.Contains("ldb=4", e.Message);
        e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 4, 4, 4, buf, 4, buf, 4, buf.AsSpan(0, 10), 4));
        Assert.Contains("C holds 10 floats", e.Message);
        e = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, -1, 4, 4, buf, 4, buf, 4, buf, 4));
        Assert.Contains("M=-1", e.Message);
        Assert.Throws<ArgumentNullException>(() => Gemm.Sgemm(null!, false, false, 1, 1, 1, buf, 1, buf, 1, buf, 1));
    }

    /// <summary>
    /// Runs one shape with random leading-dimension padding and checks every entry against the
    /// twin within γ·Σ|a·b| (plus |C₀| when accumulating, which adds one term to the sum). Padding
    /// between rows of C is filled with a sentinel that must survive.
    /// </summary>
    static void CheckAgainstTwin(WorkerPool pool, GemmKernelKind kind, bool transA, bool transB,
        int m, int n, int k, bool accumulate, TestRandom rng)
    {
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        int lda = Math.Max(1, aCols) + rng.Next(4), ldb = Math.Max(1, bCols) + rng.Next(4), ldc = Math.Max(1, n) + rng.Next(4);
        var a = rng.Array(Math.Max(0, (aRows - 1) * lda + aCols));
        var b = rng.Array(Math.Max(0, (bRows - 1) * ldb + bCols));
        int cLength = m == 0 ? 0 : (m - 1) * ldc + n;
        var c0 = rng.Array(cLength, -2f, 2f);
        const float sentinel = 12345.5f;
        for (int i = 0; i < cLength; i++) if (i % ldc >= n) c0[i] = sentinel;

        var expected = (float[])c0.Clone();
        var actual = (float[])c0.Clone();
        ScalarGemm.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, expected, ldc, accumulate);
        Gemm.Sgemm(pool, kind, transA, transB, m, n, k, a, lda, b, ldb, actual, ldc, accumulate);

        string what = $"{kind} tA={transA} tB={transB} acc={accumulate} {m}x{n}x{k} lda={lda} ldb={ldb} ldc={ldc} threads={pool.ThreadCount} C";
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double absSum = accumulate ? Math.Abs(c0[i * ldc + j]) : 0;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[p * lda + i] : a[i * lda + p];
                    float bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    absSum += Math.Abs((double)av * bv);
                }
                double bound = Tolerance.Dot(accumulate ? k + 1 : k, absSum);
                Tolerance.Within(expected[i * ldc + j], actual[i * ldc + j], bound, what, i * ldc + j);
            }
            for (int j = n; j < ldc && i * ldc + j < cLength; j++)
                Assert.Equal(sentinel, actual[i * ldc + j]);
        }
    }
}
