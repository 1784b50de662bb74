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
    static readonly Dictionary<string, (long Ticks, long Calls, double Flops, double Bytes)> Totals = new(StringComparer.Ordinal);
    static readonly object Gate = new();
    static long allocationTicks;
    [ThreadStatic] static string? tag;

    /// <summary>The entry key under which tensor buffer rent/return time is recorded (and taken out of the op it happened in).</summary>
    public const string AllocationKey = "allocation";

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

    /// <summary>
    /// Adds <paramref name="ticks"/> (Stopwatch ticks) to the entry <paramref name="key"/>, with the
    /// op's work: <paramref name="flops"/> (model FLOPs: a backward counts twice its forward) and
    /// <paramref name="bytes"/> (tensor bytes read and written, an estimate), so a report can show
    /// GFLOP/s or GB/s per entry.
    /// </summary>
    public static void Add(string key, long ticks, double flops = 0, double bytes = 0)
    {
        lock (Gate)
        {
            Totals.TryGetValue(key, out var t);
            Totals[key] = (t.Ticks + ticks, t.Calls + 1, t.Flops + flops, t.Bytes + bytes);
        }
    }

    /// <summary>
    /// Total ticks spent renting and returning tensor buffers so far (<see cref="AllocationKey"/>);
    /// graph ops subtract the part that fell inside them, so allocation is its own entry.
    /// </summary>
    public static long AllocationTicks => Interlocked.Read(ref allocationTicks);

    /// <summary>Records <paramref name="ticks"/> of buffer allocation (see <see cref="AllocationTicks"/>).</summary>
    public static void AddAllocation(long ticks)
    {
        Interlocked.Add(ref allocationTicks, ticks);
        Add(AllocationKey, ticks);
    }

    /// <summary>The tag set by <see cref="Tagged"/> on this thread, appended to op keys as <c>Op[tag]</c>; null when none.</summary>
    public static string? CurrentTag => tag;

    /// <summary>
    /// Tags the ops recorded on this thread until the scope is disposed (e.g. <c>"head"</c> for the
    /// output projection, so a report can tell it from the other Linear ops). No effect on results.
    /// </summary>
    public static TagScope Tagged(string name)
    {
        var previous = tag;
        tag = name;
        return new TagScope(previous);
    }

    /// <summary>Restores the previous tag on dispose (see <see cref="Tagged"/>).</summary>
    public readonly struct TagScope(string? previous) : IDisposable
    {
        /// <summary>Restores the tag that was set before <see cref="Tagged"/>.</summary>
        public void Dispose() => tag = previous;
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
        => Entries().ConvertAll(e => (e.Key, e.Milliseconds, e.Calls));

    /// <summary>Every entry with its recorded work, largest time first.</summary>
    public static List<OpProfileEntry> Entries()
    {
        var list = new List<OpProfileEntry>();
        lock (Gate)
            foreach (var (k, v) in Totals) list.Add(new OpProfileEntry(k, v.Ticks * 1000.0 / Stopwatch.Frequency, v.Calls, v.Flops, v.Bytes));
        list.Sort((a, b) => b.Milliseconds.CompareTo(a.Milliseconds));
        return list;
    }

    /// <summary>Clears every entry.</summary>
    public static void Reset()
    {
        lock (Gate) Totals.Clear();
    }
}

/// <summary>One <see cref="OpProfile"/> entry: total time, calls and the work recorded with it.</summary>
/// <param name="Key">Op name and direction, e.g. <c>Linear fwd</c>, <c>Linear[head] bwd</c>, <c>AdamW.Step</c>.</param>
/// <param name="Milliseconds">Total time on the profile clock.</param>
/// <param name="Calls">Number of recorded calls.</param>
/// <param name="Flops">Model FLOPs recorded (0 for ops that are not products).</param>
/// <param name="Bytes">Tensor bytes read and written (estimate; 0 where not recorded).</param>
public readonly record struct OpProfileEntry(string Key, double Milliseconds, long Calls, double Flops, double Bytes);
