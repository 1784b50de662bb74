using System.Runtime.InteropServices;

namespace Tessera.Distributed;

/// <summary>Which binary interface the loaded libmpi speaks.</summary>
public enum MpiAbi
{
    /// <summary>Open MPI: handles are pointers to exported globals (<c>ompi_mpi_comm_world</c>, <c>ompi_mpi_float</c>, …).</summary>
    OpenMpi,
    /// <summary>MPICH (and its ABI-compatible derivatives): handles are 32-bit integer constants.</summary>
    Mpich,
}

/// <summary>
/// The libmpi entry points this project uses, bound at run time (no MPI headers or NuGet binding).
/// The library is found by <see cref="Load"/>: <c>TESSERA_MPI_LIBRARY</c> when set, else
/// libmpi.so.40 (Open MPI 4), libmpi.so.12 (MPICH), libmpi.so. The ABI is probed from the loaded
/// library: Open MPI exports <c>ompi_mpi_comm_world</c>, MPICH does not. Every handle is carried as
/// an <see cref="nint"/>; MPICH's are 32-bit ints, which the x86-64 and AArch64 calling conventions
/// pass in the low half of a register or stack slot, so one set of signatures serves both ABIs
/// (arrays of handles, where the width would matter, are never passed).
/// </summary>
public sealed unsafe class MpiLibrary
{
    /// <summary>The environment variable naming the library to load instead of the default list.</summary>
    public const string PathVariable = "TESSERA_MPI_LIBRARY";

    static readonly string[] Candidates = ["libmpi.so.40", "libmpi.so.12", "libmpi.so"];
    static MpiLibrary? loaded;
    static readonly Lock Gate = new();

    // Return codes and thread levels are the same in both ABIs.
    internal const int Success = 0;
    internal const int ThreadFunneled = 1;

    readonly nint lib;

    internal readonly delegate* unmanaged<int*, int> Initialized, Finalized;
    internal readonly delegate* unmanaged<int*, nint, int, int*, int> InitThread;
    internal readonly delegate* unmanaged<int> Finalize;
    internal readonly delegate* unmanaged<nint, int, int> Abort;
    internal readonly delegate* unmanaged<nint, int*, int> CommRank, CommSize;
    internal readonly delegate* unmanaged<nint, nint, int> CommSetErrhandler;
    internal readonly delegate* unmanaged<nint, nint*, int> CommDup;
    internal readonly delegate* unmanaged<nint*, int> CommFree;
    internal readonly delegate* unmanaged<int, byte*, int*, int> ErrorString;
    internal readonly delegate* unmanaged<byte*, int*, int> GetLibraryVersion;
    internal readonly delegate* unmanaged<nint, nint*, int> Ibarrier;
    internal readonly delegate* unmanaged<void*, int, nint, int, nint, nint*, int> Ibcast;
    internal readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> Iallreduce;
    internal readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> IreduceScatterBlock;
    internal readonly delegate* unmanaged<void*, int, nint, void*, int, nint, nint, nint*, int> Iallgather;
    internal readonly delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, nint*, int> Iallgatherv;
    internal readonly delegate* unmanaged<void*, int, nint, void*, int, nint, nint, nint*, int> Ialltoall;
    internal readonly delegate* unmanaged<void*, int*, int*, nint, void*, int*, int*, nint, nint, nint*, int> Ialltoallv;
    internal readonly delegate* unmanaged<nint*, int*, void*, int> Test;
    internal readonly delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int> Isend, Irecv;

    MpiLibrary(nint lib, string path, MpiAbi abi)
    {
        this.lib = lib;
        Path = path;
        Abi = abi;
        Initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        InitThread = (delegate* unmanaged<int*, nint, int, int*, int>)Export("MPI_Init_thread");
        Finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        Abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        CommRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        CommSetErrhandler = (delegate* unmanaged<nint, nint, int>)Export("MPI_Comm_set_errhandler");
        CommDup = (delegate* unmanaged<nint, nint*, int>)Export("MPI_Comm_dup");
        CommFree = (delegate* unmanaged<nint*, int>)Export("MPI_Comm_free");
        ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Export("MPI_Error_string");
        GetLibraryVersion = (delegate* unmanaged<byte*, int*, int>)Export("MPI_Get_library_version");
        Ibarrier = (delegate* unmanaged<nint, nint*, int>)Export("MPI_Ibarrier");
        Ibcast = (delegate* unmanaged<void*, int, nint, int, nint, nint*, int>)Export("MPI_Ibcast");
        Iallreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Export("MPI_Iallreduce");
        IreduceScatterBlock = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Export("MPI_Ireduce_scatter_block");
        Iallgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, nint*, int>)Export("MPI_Iallgather");
        Iallgatherv = (delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, nint*, int>)Export("MPI_Iallgatherv");
        Ialltoall = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, nint*, int>)Export("MPI_Ialltoall");
        Ialltoallv = (delegate* unmanaged<void*, int*, int*, nint, void*, int*, int*, nint, nint, nint*, int>)Export("MPI_Ialltoallv");
        Test = (delegate* unmanaged<nint*, int*, void*, int>)Export("MPI_Test");
        Isend = (delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int>)Export("MPI_Isend");
        Irecv = (delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int>)Export("MPI_Irecv");

        if (abi == MpiAbi.OpenMpi)
        {
            CommWorld = Export("ompi_mpi_comm_world");
            Float = Export("ompi_mpi_float"); Double = Export("ompi_mpi_double");
            Int32 = Export("ompi_mpi_int"); Int64 = Export("ompi_mpi_long_long_int"); Byte = Export("ompi_mpi_byte");
            OpSum = Export("ompi_mpi_op_sum"); OpMax = Export("ompi_mpi_op_max");
            ErrorsReturn = Export("ompi_mpi_errors_return");
            RequestNull = Export("ompi_request_null");
        }
        else
        {
            // mpi.h of MPICH 3.x/4.x.
            CommWorld = 0x44000000;
            Float = 0x4c00040a; Double = 0x4c00080b; Int32 = 0x4c000405; Int64 = 0x4c000809; Byte = 0x4c00010d;
            OpSum = 0x58000003; OpMax = 0x58000001;
            ErrorsReturn = 0x54000001;
            RequestNull = 0x2c000000;
        }
    }

    /// <summary>The file that was loaded.</summary>
    public string Path { get; }
    /// <summary>The probed ABI.</summary>
    public MpiAbi Abi { get; }

    internal nint CommWorld { get; }
    internal nint Float { get; }
    internal nint Double { get; }
    internal nint Int32 { get; }
    internal nint Int64 { get; }
    internal nint Byte { get; }
    internal nint OpSum { get; }
    internal nint OpMax { get; }
    internal nint ErrorsReturn { get; }
    internal nint RequestNull { get; }

    /// <summary>The library's own version line (MPI_Get_library_version), e.g. "Open MPI v4.1.4, …".</summary>
    public string Version
    {
        get
        {
            // MPI_MAX_LIBRARY_VERSION_STRING is 256 (Open MPI) or 8192 (MPICH).
            var buf = new byte[8192];
            int len = 0;
            fixed (byte* b = buf) GetLibraryVersion(b, &len);
            return System.Text.Encoding.UTF8.GetString(buf, 0, Math.Clamp(len, 0, buf.Length)).Split('\n')[0].Trim().TrimEnd('\0').Trim();
        }
    }

    /// <summary>The text of an MPI error code.</summary>
    internal string Describe(int code)
    {
        var buf = new byte[1024]; // MPI_MAX_ERROR_STRING is 256 (Open MPI) or 1024 (MPICH)
        int len = 0;
        fixed (byte* b = buf)
            if (ErrorString(code, b, &len) != Success) return $"MPI error {code}";
        return System.Text.Encoding.UTF8.GetString(buf, 0, Math.Clamp(len, 0, buf.Length)).TrimEnd('\0', ' ');
    }

    /// <summary>The datatype handle of <typeparamref name="T"/>.</summary>
    internal nint TypeOf<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Float;
        if (typeof(T) == typeof(double)) return Double;
        if (typeof(T) == typeof(int)) return Int32;
        if (typeof(T) == typeof(long)) return Int64;
        if (typeof(T) == typeof(byte)) return Byte;
        throw new NotSupportedException($"MPI: no datatype for {typeof(T).Name} (supported: float, double, int, long, byte).");
    }

    nint Export(string name)
        => NativeLibrary.TryGetExport(lib, name, out var p) ? p
            : throw new CommunicatorException($"MPI library {Path} ({Abi} ABI) has no symbol '{name}'; it is not a usable MPI-3 library.");

    /// <summary>
    /// Loads libmpi once per process. Throws <see cref="CommunicatorException"/> listing every file
    /// tried and how to install one when none loads.
    /// </summary>
    public static MpiLibrary Load()
    {
        lock (Gate)
        {
            if (loaded is not null) return loaded;
            string? forced = Environment.GetEnvironmentVariable(PathVariable);
            string[] names = string.IsNullOrEmpty(forced) ? Candidates : [forced];
            var failures = new List<string>();
            foreach (string name in names)
            {
                nint h = OpenGlobal(name, out string? why);
                if (h == 0) { failures.Add($"{name} ({why})"); continue; }
                var abi = NativeLibrary.TryGetExport(h, "ompi_mpi_comm_world", out _) ? MpiAbi.OpenMpi : MpiAbi.Mpich;
                return loaded = new MpiLibrary(h, name, abi);
            }
            throw new CommunicatorException(
                $"No MPI library could be loaded (tried {string.Join(", ", failures)}). Install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev) " +
                $"or MPICH, or set {PathVariable} to a libmpi.so.");
        }
    }

    // Open MPI's plugins (mca_*.so) resolve symbols of libmpi itself, so it must be loaded with
    // RTLD_GLOBAL; NativeLibrary.Load uses RTLD_LOCAL.
    const int RtldNow = 2, RtldGlobal = 0x100;

    [DllImport("libc", EntryPoint = "dlopen")]
    static extern nint DlOpen(string file, int mode);

    [DllImport("libc", EntryPoint = "dlerror")]
    static extern nint DlError();

    static nint OpenGlobal(string name, out string? why)
    {
        why = null;
        nint h;
        try { h = DlOpen(name, RtldNow | RtldGlobal); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return NativeLibrary.TryLoad(name, out h) ? h : Fail("not found", out why);
        }
        if (h != 0) return h;
        nint err = DlError();
        why = err == 0 ? "not found" : Marshal.PtrToStringUTF8(err);
        return 0;
    }

    static nint Fail(string reason, out string? why) { why = reason; return 0; }
}
