using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Tessera.Tensors;

/// <summary>
/// Optional wall-clock time per graph op, forward and backward separately, for finding the hot
/// spots of a training step (<c>tessera bench train --profile</c>). Off by default; switched on by
/// <see cref="Enabled"/> or the environment variable <c>TESSERA_PROFILE=1</c>. A forward op's time
/// is the lap since the previous op finished (so the few model-code lines between ops count toward
/// the next op); a backward op's time is its closure. Profiling never changes any result.
/// With <c>TESSERA_PROFILE=cpu</c> (or <see cref="UseThreadCpuTime"/>) the clock is the calling
/// thread's CPU time instead (Linux), which other processes on a busy machine do not inflate; it
/// counts all the work only when the worker pool has one thread (<c>--threads 1</c>).
/// </summary>
public static partial class OpProfile
{
    static readonly Dictionary<string, (long Ticks, long Calls)> Totals = new(StringComparer.Ordinal);
    static readonly object Gate = new();

    /// <summary>Whether graphs record op times.</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("TESSERA_PROFILE") is "1" or "cpu";

    /// <summary>Whether <see cref="Now"/> reads the calling thread's CPU time instead of the wall clock.</summary>
    public static bool UseThreadCpuTime { get; set; } = Environment.GetEnvironmentVariable("TESSERA_PROFILE") == "cpu" && OperatingSystem.IsLinux();

    /// <summary>The profile clock in Stopwatch ticks: wall time, or thread CPU time (see <see cref="UseThreadCpuTime"/>).</summary>
    public static long Now()
    {
        if (!UseThreadCpuTime) return Stopwatch.GetTimestamp();
        ClockGetTime(ThreadCpuTimeClock, out var ts);
        return (long)((ts.Seconds * 1_000_000_000L + ts.Nanoseconds) * (Stopwatch.Frequency / 1e9));
    }

    const int ThreadCpuTimeClock = 3; // CLOCK_THREAD_CPUTIME_ID

    [StructLayout(LayoutKind.Sequential)]
    struct TimeSpec { public long Seconds; public long Nanoseconds; }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>Adds <paramref name="ticks"/> (Stopwatch ticks) to the entry <paramref name="key"/>.</summary>
    public static void Add(string key, long ticks)
    {
        lock (Gate)
        {
            Totals.TryGetValue(key, out var t);
            Totals[key] = (t.Ticks + ticks, t.Calls + 1);
        }
    }

    /// <summary>Times <paramref name="body"/> under <paramref name="key"/> when enabled (e.g. the optimizer step).</summary>
    public static void Time(string key, Action body)
    {
        if (!Enabled) { body(); return; }
        long start = Now();
        body();
        Add(key, Now() - start);
    }

    /// <summary>Every entry as (key, milliseconds, calls), largest time first.</summary>
    public static List<(string Key, double Milliseconds, long Calls)> Snapshot()
    {
        var list = new List<(string, double, long)>();
        lock (Gate)
            foreach (var (k, v) in Totals) list.Add((k, v.Ticks * 1000.0 / Stopwatch.Frequency, v.Calls));
        list.Sort((a, b) => b.Item2.CompareTo(a.Item2));
        return list;
    }

    /// <summary>Clears every entry.</summary>
    public static void Reset()
    {
        lock (Gate) Totals.Clear();
    }
}
