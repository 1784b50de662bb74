using System.Reflection;
using System.Runtime.InteropServices;

namespace Tessera.Kernels;

/// <summary>
/// Optional CPU-time accounting of <see cref="WorkerPool.For(int, Action{int, int, int})"/> calls, for
/// finding why a step on n threads takes longer than 1/n of its one-thread time
/// (<c>tessera bench train --scaling 1,2</c>). For every parallel call it records, on the thread CPU
/// clock (which a busy machine does not inflate), each worker range's time, and sums per loop body:
/// the work (all ranges), the critical path (the longest range of each call; for chunked calls, the larger
/// of an even share and the longest chunk) and the caller's CPU time
/// from entering to leaving the call (its own range plus spinning while it waits). Off by default;
/// when off it costs one static read per range.
/// </summary>
public sealed partial class WorkerPool
{
    static volatile bool accounting;
    static readonly object AccountLock = new();
    static readonly Dictionary<MethodInfo, (string Name, long Calls, long Work, long Critical, long Caller)> Accounts = [];

    /// <summary>Whether parallel calls record their per-range CPU time (see <see cref="AccountEntries"/>).</summary>
    public static bool Accounting
    {
        get => accounting;
        set => accounting = value;
    }

    /// <summary>The calling thread's CPU time in nanoseconds (Linux <c>CLOCK_THREAD_CPUTIME_ID</c>); 0 elsewhere.</summary>
    public static long ThreadCpuNanoseconds()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        ClockGetTime(3, out var ts);
        return ts.Seconds * 1_000_000_000L + ts.Nanoseconds;
    }

    [StructLayout(LayoutKind.Sequential)]
    struct TimeSpec { public long Seconds; public long Nanoseconds; }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    void Record(Delegate body, long callerNs, long longestChunkNs)
    {
        long work = 0, critical = 0;
        foreach (long ns in rangeCpu) { work += ns; critical = Math.Max(critical, ns); }
        // A chunked call's ranges are "claim until none are left", so how much each thread ran says who
        // was scheduled, not how the work divides: unhindered, it lasts its share or its longest chunk.
        if (longestChunkNs >= 0) critical = Math.Max((work + ThreadCount - 1) / ThreadCount, longestChunkNs);
        var method = body.Method;
        lock (AccountLock)
        {
            Accounts.TryGetValue(method, out var a);
            a.Name ??= NameOf(method);
            Accounts[method] = (a.Name, a.Calls + 1, a.Work + work, a.Critical + critical, a.Caller + callerNs);
        }
    }

    /// <summary>A readable name for a loop body: its declaring type (generic arguments included, which names the row body) and method.</summary>
    static string NameOf(MethodInfo method)
    {
        var type = method.DeclaringType;
        string TypeName(Type t)
        {
            string n = t.Name;
            int tick = n.IndexOf('`');
            if (tick > 0) n = n[..tick];
            if (t.DeclaringType is { } outer && n.StartsWith('<')) n = TypeName(outer);
            return t.IsGenericType ? $"{n}<{string.Join(",", Array.ConvertAll(t.GetGenericArguments(), TypeName))}>" : n;
        }
        string name = method.Name;
        // Lambdas are compiled as <Outer>b__3_0: keep the enclosing method's name.
        if (name.StartsWith('<') && name.IndexOf('>') is > 1 and var close) name = name[1..close] + "(λ)";
        return type is null ? name : $"{TypeName(type)}.{name}";
    }

    /// <summary>Every body's account since the last <see cref="ResetAccounts"/>, largest work first.</summary>
    public static List<WorkerPoolAccount> AccountEntries()
    {
        var list = new List<WorkerPoolAccount>();
        lock (AccountLock)
            foreach (var a in Accounts.Values)
                list.Add(new WorkerPoolAccount(a.Name, a.Calls, a.Work / 1e6, a.Critical / 1e6, a.Caller / 1e6));
        list.Sort((x, y) => y.WorkMs.CompareTo(x.WorkMs));
        return list;
    }

    /// <summary>Clears the accounts.</summary>
    public static void ResetAccounts()
    {
        lock (AccountLock) Accounts.Clear();
    }
}

/// <summary>One loop body's CPU-time account (see <see cref="WorkerPool.Accounting"/>).</summary>
/// <param name="Body">Declaring type and method of the loop body.</param>
/// <param name="Calls">Parallel calls recorded.</param>
/// <param name="WorkMs">CPU ms of all ranges together.</param>
/// <param name="CriticalMs">Sum over calls of the longest range's CPU ms (chunked calls: the larger of an even share and the longest chunk): the call's time if every thread ran unhindered.</param>
/// <param name="CallerMs">CPU ms the calling thread spent inside the calls (its range, other ranges it took over, spinning).</param>
public readonly record struct WorkerPoolAccount(string Body, long Calls, double WorkMs, double CriticalMs, double CallerMs);
