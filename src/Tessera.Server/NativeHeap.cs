using System.Runtime.InteropServices;

namespace Tessera.Server;

/// <summary>
/// The C library's heap (glibc <c>malloc</c>), which holds what the runtime, the JIT and Tessera's
/// native buffers allocate outside the managed heap. A long-running server on glibc sees two slow
/// climbs there that are not leaks: every thread that contends for <c>malloc</c> gets an arena of its
/// own (up to eight per core), and memory freed inside an arena stays resident until the arena's top
/// is free. <see cref="LimitArenas"/> caps the first and <see cref="Trim"/> hands free pages back to
/// the kernel (<c>malloc_trim</c>, which since glibc 2.8 also releases whole free pages in the middle
/// of every arena). Off glibc (musl, macOS, Windows) every call is a no-op that reports false or null.
/// </summary>
public static partial class NativeHeap
{
    /// <summary>What <c>mallinfo2</c> reports, summed over all arenas.</summary>
    /// <param name="InUseBytes">Bytes handed out and not freed: arena chunks in use plus chunks served by their own <c>mmap</c>.</param>
    /// <param name="FreeBytes">Bytes free inside the arenas: resident until trimmed or reused.</param>
    /// <param name="ArenaBytes">Bytes the arenas hold from the kernel (in use plus free, excluding <c>mmap</c>ed chunks).</param>
    public readonly record struct Info(long InUseBytes, long FreeBytes, long ArenaBytes);

    // struct mallinfo2 (glibc ≥ 2.33): ten size_t fields.
    [StructLayout(LayoutKind.Sequential)]
    struct MallInfo2
    {
        public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    const int ArenaMaxParameter = -8; // M_ARENA_MAX in <malloc.h>

    [LibraryImport("libc", EntryPoint = "mallinfo2")] private static partial MallInfo2 MallInfo2Native();
    [LibraryImport("libc", EntryPoint = "malloc_trim")] private static partial int MallocTrimNative(nuint pad);
    [LibraryImport("libc", EntryPoint = "mallopt")] private static partial int MallOptNative(int parameter, int value);

    static int available = OperatingSystem.IsLinux() ? 0 : -1; // 0 unknown, 1 yes, -1 no

    static bool Try(Action call)
    {
        if (available < 0) return false;
        try { call(); available = 1; return true; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { available = -1; return false; }
    }

    /// <summary>True when the process runs on glibc and the calls above reach it (known after the first call).</summary>
    public static bool IsAvailable => available > 0 || (available == 0 && Read() is not null);

    /// <summary>The heap's figures now, or null off glibc.</summary>
    public static Info? Read()
    {
        MallInfo2 m = default;
        if (!Try(() => m = MallInfo2Native())) return null;
        return new Info((long)(m.Uordblks + m.Hblkhd), (long)m.Fordblks, (long)m.Arena);
    }

    /// <summary>Returns the free pages of every arena to the kernel; true when glibc released any.</summary>
    public static bool Trim()
    {
        int released = 0;
        return Try(() => released = MallocTrimNative(0)) && released != 0;
    }

    /// <summary>
    /// Caps the number of arenas threads can spread their allocations over from now on (the
    /// <c>MALLOC_ARENA_MAX</c> setting, made at run time); an explicit <c>MALLOC_ARENA_MAX</c> in the
    /// environment wins. True when the setting was applied.
    /// </summary>
    public static bool LimitArenas(int arenas)
    {
        if (arenas < 1) throw new ArgumentOutOfRangeException(nameof(arenas), arenas, "NativeHeap: the arena cap must be at least 1.");
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX"))) return false;
        int ok = 0;
        return Try(() => ok = MallOptNative(ArenaMaxParameter, arenas)) && ok == 1;
    }
}
