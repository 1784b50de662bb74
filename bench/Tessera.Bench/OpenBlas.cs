using System.Runtime.InteropServices;

namespace Tessera.Bench;

/// <summary>
/// The system OpenBLAS, loaded at run time so the benchmark still runs (without the comparison)
/// where it is not installed. Only what the GEMM comparison needs: <c>cblas_sgemm</c>, the
/// thread-count setter and the build/core description.
/// </summary>
public sealed unsafe class OpenBlas
{
    /// <summary>Where Debian/Ubuntu put the library (the alternatives link first).</summary>
    static readonly string[] Candidates =
    [
        "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/libopenblas.so",
        "libopenblas.so.0",
        "libopenblas.so",
    ];

    /// <summary>The line printed when no library is found.</summary>
    public const string NotFoundMessage = "OpenBLAS not found (apt-get install libopenblas0-pthread) — comparison skipped";

    const int RowMajor = 101, NoTrans = 111, Trans = 112;

    readonly delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> sgemm;
    readonly delegate* unmanaged<int, void> setThreads;

    OpenBlas(string path, IntPtr handle)
    {
        Path = path;
        sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)
            NativeLibrary.GetExport(handle, "cblas_sgemm");
        setThreads = NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out var st)
            ? (delegate* unmanaged<int, void>)st : null;
        Description = Describe(handle);
    }

    /// <summary>File the library was loaded from.</summary>
    public string Path { get; }

    /// <summary>Build configuration and the kernel family it picked for this CPU, e.g. "OpenBLAS 0.3.21 … core Haswell".</summary>
    public string Description { get; }

    /// <summary>Loads the first library found, or returns null when none is installed or it lacks <c>cblas_sgemm</c>.</summary>
    public static OpenBlas? TryLoad()
    {
        foreach (var path in Candidates)
        {
            if (!NativeLibrary.TryLoad(path, out var handle)) continue;
            if (NativeLibrary.TryGetExport(handle, "cblas_sgemm", out _)) return new OpenBlas(path, handle);
            NativeLibrary.Free(handle);
        }
        return null;
    }

    /// <summary>Sets OpenBLAS's own thread count (it keeps its own pool, separate from ours).</summary>
    public void SetThreads(int threads)
    {
        if (setThreads != null) setThreads(threads);
    }

    /// <summary>C = op(A)·op(B), row-major, same argument meaning as <c>Gemm.Sgemm</c>.</summary>
    public void Sgemm(bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
        => sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, 1f, a, lda, b, ldb, accumulate ? 1f : 0f, c, ldc);

    static string Describe(IntPtr handle)
    {
        string config = NativeLibrary.TryGetExport(handle, "openblas_get_config", out var cfg)
            ? Marshal.PtrToStringAnsi(((delegate* unmanaged<IntPtr>)cfg)()) ?? "" : "OpenBLAS";
        string core = NativeLibrary.TryGetExport(handle, "openblas_get_corename", out var cn)
            ? Marshal.PtrToStringAnsi(((delegate* unmanaged<IntPtr>)cn)()) ?? "?" : "?";
        return $"{config.Trim()} (kernels: {core})";
    }
}
