using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Bench;

/// <summary>
/// The system OpenBLAS, loaded at run time so the benchmark still runs (without the comparison)
/// where it is not installed. Only what the GEMM comparison needs: <c>cblas_sgemm</c>, the
/// thread-count setter and the build/core description.
/// <para>A DYNAMIC_ARCH build picks its kernels when the library is loaded, from the CPU model. A
/// release that predates the CPU (0.3.21 on a family 6 model 207 Xeon) falls back to "Prescott" (SSE3)
/// kernels on an AVX-512 machine, and a comparison with those says nothing about OpenBLAS's best code.
/// <see cref="TryLoad"/> therefore reloads such a library with <c>OPENBLAS_CORETYPE</c> set to its
/// AVX-512 kernels, unless the user set that variable.</para>
/// </summary>
public sealed unsafe partial class OpenBlas
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

    /// <summary>Kernel families that use 512-bit vectors (OpenBLAS core names).</summary>
    static readonly string[] Avx512Cores = ["SkylakeX", "Cooperlake", "SapphireRapids"];

    readonly IntPtr handle;

    OpenBlas(string path, IntPtr handle, string? detected, string? target)
    {
        Path = path;
        this.handle = handle;
        sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)
            NativeLibrary.GetExport(handle, "cblas_sgemm");
        setThreads = NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out var st)
            ? (delegate* unmanaged<int, void>)st : null;
        Core = NativeLibrary.TryGetExport(handle, "openblas_get_corename", out var cn)
            ? Marshal.PtrToStringAnsi(((delegate* unmanaged<IntPtr>)cn)()) ?? "?" : "?";
        ForcedFrom = target is not null && Core == target ? detected : null;
        string config = NativeLibrary.TryGetExport(handle, "openblas_get_config", out var cfg)
            ? Marshal.PtrToStringAnsi(((delegate* unmanaged<IntPtr>)cfg)()) ?? "" : "OpenBLAS";
        Description = $"{config.Trim()} (kernels: {Core}" + (target is null ? ")"
            : ForcedFrom is not null ? $", forced with OPENBLAS_CORETYPE={target}: its own CPU detection chose {detected} on this AVX-512 CPU)"
            : $"; reloading it with OPENBLAS_CORETYPE={target} did not take effect)");
    }

    /// <summary>File the library was loaded from.</summary>
    public string Path { get; }

    /// <summary>Build configuration and the kernel family it runs, e.g. "OpenBLAS 0.3.21 … (kernels: Cooperlake, forced …)".</summary>
    public string Description { get; }

    /// <summary>The kernel family the library runs (<c>openblas_get_corename</c>), e.g. "Cooperlake"; "?" when it does not say.</summary>
    public string Core { get; }

    /// <summary>The family its own CPU detection chose when <see cref="TryLoad"/> overrode it with <c>OPENBLAS_CORETYPE</c>; otherwise null.</summary>
    public string? ForcedFrom { get; }

    /// <summary>Whether this CPU runs AVX-512, i.e. whether OpenBLAS has AVX-512 kernels to run here.</summary>
    public static bool CpuHasAvx512 => Avx512F.IsSupported;

    /// <summary>Whether <see cref="Core"/> is one of OpenBLAS's AVX-512 kernel families.</summary>
    public bool RunsAvx512Kernels => Array.IndexOf(Avx512Cores, Core) >= 0;

    /// <summary>
    /// Loads the first library found, or returns null when none is installed or it lacks <c>cblas_sgemm</c>.
    /// On an AVX-512 CPU where the library chose non-AVX-512 kernels and <c>OPENBLAS_CORETYPE</c> is unset,
    /// the library is unloaded and loaded again with that variable set (through libc, which is what the
    /// library reads: .NET's own environment block does not reach native code on Linux) to "Cooperlake"
    /// when the CPU has AVX-512 BF16, else "SkylakeX"; the variable is cleared again afterwards. Where the
    /// reload cannot take effect (the library stays loaded), the result says so through <see cref="Core"/>.
    /// </summary>
    public static OpenBlas? TryLoad()
    {
        var blas = LoadFirst(null, null);
        if (blas is null || blas.RunsAvx512Kernels || !CpuHasAvx512 || !OperatingSystem.IsLinux()
            || Getenv("OPENBLAS_CORETYPE") != IntPtr.Zero)
            return blas;
        string detected = blas.Core;
        string target = HasAvx512Bf16() ? "Cooperlake" : "SkylakeX";
        // The kernel table is chosen by the library's load-time constructor, so the library has to be
        // unloaded (dlclose runs its destructor, which stops its threads) and loaded again.
        NativeLibrary.Free(blas.handle);
        if (Setenv("OPENBLAS_CORETYPE", target, 1) != 0) return LoadFirst(null, null);
        try { return LoadFirst(detected, target); }
        finally { Unsetenv("OPENBLAS_CORETYPE"); }
    }

    static OpenBlas? LoadFirst(string? detected, string? target)
    {
        foreach (var path in Candidates)
        {
            if (!NativeLibrary.TryLoad(path, out var handle)) continue;
            if (NativeLibrary.TryGetExport(handle, "cblas_sgemm", out _)) return new OpenBlas(path, handle, detected, target);
            NativeLibrary.Free(handle);
        }
        return null;
    }

    /// <summary>CPUID leaf 7 subleaf 1, EAX bit 5: AVX512_BF16 (OpenBLAS's Cooperlake kernels use it).</summary>
    static bool HasAvx512Bf16() => X86Base.IsSupported && (X86Base.CpuId(7, 1).Eax & (1 << 5)) != 0;

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr Getenv(string name);

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Setenv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Unsetenv(string name);

    /// <summary>Sets OpenBLAS's own thread count (it keeps its own pool, separate from ours).</summary>
    public void SetThreads(int threads)
    {
        if (setThreads != null) setThreads(threads);
    }

    /// <summary>C = op(A)·op(B), row-major, same argument meaning as <c>Gemm.Sgemm</c>.</summary>
    public void Sgemm(bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
        => sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, 1f, a, lda, b, ldb, accumulate ? 1f : 0f, c, ldc);
}
