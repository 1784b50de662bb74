using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Tessera.Kernels.Reference;

[assembly: InternalsVisibleTo("Tessera.Kernels.Tests")]

namespace Tessera.Kernels;

/// <summary>
/// fp32 GEMM: C = op(A)·op(B) (+ C when accumulating), row-major. Same contract as
/// <see cref="ScalarGemm"/>: op(A) is M×K (A stored K×M when <c>transA</c>), op(B) is K×N
/// (B stored N×K when <c>transB</c>); K = 0 zeroes C (or leaves it when accumulating).
/// Packed, cache-blocked and multithreaded (see <see cref="GemmDriver"/>). For a given thread
/// count — in fact for any thread count — results are bit-identical run to run, because every
/// C entry is summed in the same order however the work is split.
/// </summary>
public static unsafe class Gemm
{
    /// <summary>Computes C = op(A)·op(B) (+ C) on <see cref="WorkerPool.Shared"/>.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        Span<float> c, int ldc, bool accumulate = false)
        => Sgemm(WorkerPool.Shared, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);

    /// <summary>Computes C = op(A)·op(B) (+ C) on the given pool (small problems run on the caller alone).</summary>
    public static void Sgemm(WorkerPool pool, bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        Span<float> c, int ldc, bool accumulate = false)
        => Sgemm(pool, BestKernel, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);

    /// <summary>
    /// Pointer form for callers that hold native buffers (tensors). Sizes and leading dimensions
    /// are checked; buffer extents cannot be, so the caller guarantees A, B and C are large enough.
    /// </summary>
    public static void Sgemm(WorkerPool pool, bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        ArgumentNullException.ThrowIfNull(pool);
        GemmShape.Check(transA, transB, m, n, k, int.MaxValue, lda, int.MaxValue, ldb, int.MaxValue, ldc);
        GemmDriver.Run(pool, BestKernel, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    }

    /// <summary>
    /// Whether multithreaded calls hand out blocks of rows (or columns) that threads claim as they
    /// finish (default), rather than one fixed range per thread. Results are bit-identical either way;
    /// the switch exists for same-process A/B timing (<c>tessera bench train --split-ab</c>).
    /// </summary>
    public static bool DynamicSplit { get; set; } = true;

    /// <summary>
    /// Whether the dynamic split cuts a phase into a multiple of the thread count of near-equal
    /// blocks (default), so equally fast threads claim equal shares, rather than into blocks of the
    /// nominal size whatever their count. Results are bit-identical either way; the switch exists
    /// for same-process A/B timing (<c>tessera bench gemm --paired --ab even-chunks</c>).
    /// </summary>
    public static bool EvenChunks { get; set; } = true;

    /// <summary>Which micro-kernel and register tile this machine runs, e.g. "AVX-512 6x64" (for benchmark output).</summary>
    public static string KernelDescription => BestKernel switch
    {
        GemmKernelKind.Avx512 => $"AVX-512 {GemmMicroKernels.Avx512Mr}x{GemmMicroKernels.Avx512Nr}",
        GemmKernelKind.Avx2 => $"AVX2+FMA {GemmMicroKernels.Avx2Mr}x{GemmMicroKernels.Avx2Nr}",
        _ => $"scalar {GemmMicroKernels.ScalarMr}x{GemmMicroKernels.ScalarNr}",
    };

    /// <summary>The micro-kernel this machine runs: AVX-512, else AVX2+FMA, else scalar.</summary>
    internal static GemmKernelKind BestKernel { get; } =
        Avx512F.IsSupported ? GemmKernelKind.Avx512 :
        Avx2.IsSupported && Fma.IsSupported ? GemmKernelKind.Avx2 : GemmKernelKind.Scalar;

    /// <summary>
    /// Whether the driver keeps one A micro-panel in L1 and streams the B micro-panels of an L2-sized B block
    /// past it (default), rather than keeping one B micro-panel and streaming the A micro-panels past it with
    /// the B block in L3. Results are bit-identical either way (every C entry keeps its summation order);
    /// the switch exists for same-process A/B timing (<c>tessera bench gemm --paired --ab a-stationary</c>), and
    /// <c>TESSERA_GEMM_A_STATIONARY=0</c> starts a process with it off (e.g. for <c>bench train</c> before/after).
    /// </summary>
    public static bool AStationary { get; set; } = Environment.GetEnvironmentVariable("TESSERA_GEMM_A_STATIONARY") != "0";

    /// <summary>
    /// Whether, in the A-stationary order (<see cref="AStationary"/>), a row-split call whose N spans more than one
    /// L2-sized B block packs each K block of A once into a buffer shared by the workers and reuses it for every
    /// column block (K blocks outer, column blocks inner; default), rather than packing the A block again for each
    /// column block (N/NC_L2 packings of A: 2 at 2048³, 8 for the LM head's N = 8192). Results are bit-identical either
    /// way (each C entry still adds its K blocks in order); the switch exists for same-process A/B timing
    /// (<c>tessera bench gemm --paired --ab pack-a-once</c>), and <c>TESSERA_GEMM_PACK_A_ONCE=0</c> starts a process with it off.
    /// </summary>
    public static bool PackAOnce { get; set; } = Environment.GetEnvironmentVariable("TESSERA_GEMM_PACK_A_ONCE") != "0";

    /// <summary>
    /// Whether multithreaded row-split calls in the A-stationary order hand out rows in chunks of at most
    /// <c>GemmDriver.FineRowChunkPanels</c> MR-row panels (4: 24 rows; default) rather than one MC-row A block (144 rows). In that order the B block is
    /// reused from L2 by every A micro-panel whatever the A block's height, so a smaller chunk costs no extra
    /// traffic and shortens the wait at each K block's barrier for the thread that finishes last. Results are
    /// bit-identical either way; the switch exists for same-process A/B timing (<c>tessera bench gemm --paired --ab
    /// fine-chunks</c>), and <c>TESSERA_GEMM_FINE_CHUNKS=0</c> starts a process with it off.
    /// </summary>
    public static bool FineChunks { get; set; } = Environment.GetEnvironmentVariable("TESSERA_GEMM_FINE_CHUNKS") != "0";

    /// <summary>
    /// Whether A stored K×M (<c>transA</c>: the weight gradients dW = dYᵀ·X, K = tokens) is packed by walking each
    /// source row once and scattering its 6-float pieces into the panels (default), rather than panel by panel, one
    /// 24-byte piece from each of KC rows per panel. The packed values are the same either way, so results are
    /// bit-identical; the switch exists for same-process A/B timing (<c>tessera bench gemm --paired --ab
    /// pack-a-rows</c>), and <c>TESSERA_GEMM_PACK_A_ROWS=0</c> starts a process with it off.
    /// </summary>
    public static bool PackARows { get; set; } = Environment.GetEnvironmentVariable("TESSERA_GEMM_PACK_A_ROWS") != "0";

    /// <summary>Test hook: runs with a chosen micro-kernel so every fallback is exercised on one machine.</summary>
    internal static void Sgemm(WorkerPool pool, GemmKernelKind kernel, bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        Span<float> c, int ldc, bool accumulate)
    {
        ArgumentNullException.ThrowIfNull(pool);
        GemmShape.Check(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        fixed (float* pa = a, pb = b, pc = c)
            GemmDriver.Run(pool, kernel, transA, transB, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate);
    }
}

/// <summary>Which register-tile micro-kernel <see cref="Gemm"/> uses.</summary>
internal enum GemmKernelKind { Scalar, Avx2, Avx512 }
