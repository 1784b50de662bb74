namespace Tessera.Kernels;

/// <summary>
/// One persistent pool of worker threads sized to the cores. Kernels split work statically:
/// <see cref="For(int, Action{int, int, int})"/> hands worker <c>w</c> of <c>n</c> the index range
/// <c>[w·count/n, (w+1)·count/n)</c>, so the same thread count gives the same partition and
/// therefore bit-identical results. The calling thread acts as worker 0; no threads are
/// created per call. A range whose helper thread has not started on it by the time the caller
/// finishes its own range (the helper is descheduled on a busy machine) is run by the caller
/// instead, still as worker <c>w</c>'s range: the partition and worker indices never change, only
/// which OS thread executes a range, so the caller never sits idle waiting for a thread to be scheduled.
/// <para>The decode step's short dependent phases use the other loop,
/// <see cref="For(int, int, Action{int, int})"/>: work cut into chunks that the threads claim from one
/// atomic counter, so a helper that wakes late finds nothing left. It runs on the same threads, as a
/// static job in which every worker's range is "claim chunks until none are left".</para>
/// </summary>
public sealed partial class WorkerPool : IDisposable
{
    static WorkerPool? shared;
    static readonly object SharedLock = new();

    readonly Thread[] threads;
    readonly object gate = new();
    readonly object callerLock = new();     // one For at a time per pool; other callers wait
    [ThreadStatic] static bool insideBody;   // set while this thread runs a body (any pool)
    Action<int, int, int>? job;     // (worker, start, end)
    int jobCount;
    long generation;
    int pending;
    readonly long[] claims;         // claims[w] = last generation whose range w was taken (by its helper or the caller)
    readonly long[] rangeCpu;       // CPU ns of each range of the call in flight (only while accounting)
    bool disposed;
    Exception? failure;

    // The chunked call in flight (see For(items, chunkCount, work)); written before the job is
    // published under the gate, read by a worker only after it claimed that job's range.
    Action<int, int>? chunkWork;
    int chunkItems, chunkTotal, nextChunk;
    long longestChunk;              // CPU ns of the longest chunk of the call in flight (only while accounting)
    readonly Action<int, int, int> drainChunks;
    readonly Func<bool> pendingDone;

    /// <summary>Creates a pool that runs work on <paramref name="threadCount"/> threads (the caller included).</summary>
    public WorkerPool(int threadCount)
    {
        if (threadCount < 1) throw new ArgumentOutOfRangeException(nameof(threadCount), threadCount, "A worker pool needs at least one thread.");
        ThreadCount = threadCount;
        threads = new Thread[threadCount - 1];
        claims = new long[threadCount];
        rangeCpu = new long[threadCount];
        drainChunks = (_, _, _) => DrainChunks();
        pendingDone = () => Volatile.Read(ref pending) == 0;
        for (int i = 0; i < threads.Length; i++)
        {
            int worker = i + 1;
            threads[i] = new Thread(() => WorkerLoop(worker)) { IsBackground = true, Name = $"tessera-worker-{worker}" };
            threads[i].Start();
        }
    }

    /// <summary>Number of threads that share each <see cref="For(int, Action{int, int, int})"/> call, the caller included.</summary>
    public int ThreadCount { get; }

    /// <summary>
    /// Whether a thread waiting for the next call (a helper) or for helpers to finish (the caller) first spins
    /// on the CPU without giving it up, for at most <see cref="BusySpinMicroseconds"/> (default on), before the
    /// yielding spin and then the blocking wait. A yield lets any other runnable thread on that CPU run, even a
    /// lower-priority process, and the yielding thread then gets the CPU back only at that thread's next
    /// scheduling point: on the 2-vCPU Xeon of session 11 (docs/training-performance.md), with niced jobs
    /// beside it, 16 back-to-back pairs of calls of register-only work ran at 0.64–0.72 of two threads'
    /// throughput. Results never depend on it; <c>TESSERA_POOL_BUSY_SPIN=0</c> starts a process with it off,
    /// and <c>tessera bench gemm --paired --ab busy-spin</c> times both in one process.
    /// </summary>
    public static bool BusySpin { get; set; } = Environment.GetEnvironmentVariable("TESSERA_POOL_BUSY_SPIN") != "0";

    /// <summary>
    /// How long <see cref="BusySpin"/> spins before yielding, in microseconds: 200 by default (shorter than a GEMM's
    /// K block on two threads), or <c>TESSERA_POOL_BUSY_SPIN_US</c> (1–100000) read at start-up.
    /// </summary>
    public static int BusySpinMicroseconds
    {
        get => busySpinMicroseconds;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 100_000);
            busySpinMicroseconds = value;
        }
    }

    static int busySpinMicroseconds =
        int.TryParse(Environment.GetEnvironmentVariable("TESSERA_POOL_BUSY_SPIN_US"), out int us) && us is >= 1 and <= 100_000 ? us : 200;

    /// <summary>Spins (pause instructions, the CPU kept) until <paramref name="done"/> holds or the busy-spin time is up.</summary>
    static void SpinBusy(Func<bool> done)
    {
        if (!BusySpin) return;
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency * busySpinMicroseconds / 1_000_000;
        while (!done() && System.Diagnostics.Stopwatch.GetTimestamp() < until) Thread.SpinWait(20);
    }

    /// <summary>
    /// The process-wide pool. Sized from <c>TESSERA_THREADS</c> when set, else
    /// <see cref="Environment.ProcessorCount"/>. Replace it with <see cref="SetSharedThreadCount"/>.
    /// </summary>
    public static WorkerPool Shared
    {
        get
        {
            if (shared is { } pool) return pool;
            lock (SharedLock)
            {
                shared ??= new WorkerPool(DefaultThreadCount());
                return shared;
            }
        }
    }

    /// <summary>Replaces the shared pool with one of <paramref name="threadCount"/> threads (benchmarks use 1 and 2).</summary>
    public static void SetSharedThreadCount(int threadCount)
    {
        lock (SharedLock)
        {
            if (shared is { } old && old.ThreadCount == threadCount) return;
            var previous = shared;
            shared = new WorkerPool(threadCount);
            previous?.Dispose();
        }
    }

    static int DefaultThreadCount()
    {
        var env = Environment.GetEnvironmentVariable("TESSERA_THREADS");
        if (!string.IsNullOrEmpty(env))
        {
            if (!int.TryParse(env, out int n) || n < 1)
                throw new InvalidOperationException($"TESSERA_THREADS must be a positive integer, got '{env}'.");
            return n;
        }
        return Math.Max(1, Environment.ProcessorCount);
    }

    /// <summary>
    /// Runs <paramref name="body"/>(worker, start, end) once per worker over a static split of
    /// <c>[0, count)</c>. Workers whose range is empty are not called. Blocks until all finish;
    /// the first exception thrown by any worker is rethrown here. Safe to call from several
    /// threads: calls are serialised (a server's concurrent requests queue here). A call made
    /// from inside a body runs inline on that thread as one range, so nesting cannot deadlock.
    /// </summary>
    public void For(int count, Action<int, int, int> body)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (count <= 0) return;
        if (ThreadCount == 1 || insideBody) { RunInline(body, count); return; }
        lock (callerLock) ForLocked(count, body);
    }

    /// <summary>
    /// Calls <paramref name="work"/>(start, end) over [0, <paramref name="items"/>) cut into
    /// <paramref name="chunkCount"/> near-equal chunks (chunk c is
    /// <c>[c·items/chunkCount, (c+1)·items/chunkCount)</c>), each run exactly once by whichever thread
    /// claims it first. The caller starts at once and waits only for chunks already claimed, which suits
    /// many sub-millisecond phases on a shared machine; which thread runs a chunk never changes what it
    /// computes. Nested or single-threaded calls run inline; the first exception is rethrown.
    /// </summary>
    public void For(int items, int chunkCount, Action<int, int> work)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (items <= 0) return;
        chunkCount = Math.Clamp(chunkCount, 1, items);
        if (ThreadCount == 1 || chunkCount == 1 || insideBody)
        {
            bool outer = insideBody;
            insideBody = true;
            try { work(0, items); }
            finally { insideBody = outer; }
            return;
        }
        lock (callerLock)
        {
            chunkWork = work; chunkItems = items; chunkTotal = chunkCount;
            Volatile.Write(ref nextChunk, 0);
            try { ForLocked(ThreadCount, drainChunks); }
            finally { chunkWork = null; }
        }
    }

    /// <summary>One worker's range of a chunked call: claim and run chunks until none are left.</summary>
    void DrainChunks()
    {
        var work = chunkWork!;
        int n = chunkItems, total = chunkTotal;
        while (true)
        {
            int c = Interlocked.Increment(ref nextChunk) - 1;
            if (c >= total) return;
            if (!accounting) { work((int)((long)c * n / total), (int)((long)(c + 1) * n / total)); continue; }
            long t0 = ThreadCpuNanoseconds();
            work((int)((long)c * n / total), (int)((long)(c + 1) * n / total));
            long ns = ThreadCpuNanoseconds() - t0, seen;
            while (ns > (seen = Volatile.Read(ref longestChunk)) && Interlocked.CompareExchange(ref longestChunk, ns, seen) != seen) { }
        }
    }

    static void RunInline(Action<int, int, int> body, int count)
    {
        bool outer = insideBody;
        insideBody = true;
        try { body(0, 0, count); }
        finally { insideBody = outer; }
    }

    void ForLocked(int count, Action<int, int, int> body)
    {
        bool account = accounting;
        long callerCpu0 = 0;
        if (account) { Array.Clear(rangeCpu); longestChunk = 0; callerCpu0 = ThreadCpuNanoseconds(); }
        long g;
        lock (gate)
        {
            job = body;
            jobCount = count;
            failure = null;
            pending = threads.Length;
            g = ++generation;
            Monitor.PulseAll(gate);
        }
        insideBody = true;
        try
        {
            try { RunRange(0, body, count); }
            catch (Exception e) { lock (gate) failure ??= e; }
            // Take over every range whose helper has not claimed it yet.
            for (int w = 1; w < ThreadCount; w++)
            {
                if (!TryClaim(w, g)) continue;
                try { RunRange(w, body, count); }
                catch (Exception e) { lock (gate) failure ??= e; }
                finally { Interlocked.Decrement(ref pending); }
            }
        }
        finally { insideBody = false; }
        // Wait for ranges helpers are still running: spin briefly (most jobs are short), then block.
        if (Volatile.Read(ref pending) > 0) SpinBusy(pendingDone);
        var spin = new SpinWait();
        while (Volatile.Read(ref pending) > 0)
        {
            if (spin.Count < 200) { spin.SpinOnce(sleep1Threshold: -1); continue; }
            lock (gate)
            {
                while (Volatile.Read(ref pending) > 0) Monitor.Wait(gate);
            }
        }
        job = null;
        if (account) Record(ReferenceEquals(body, drainChunks) ? chunkWork! : body, ThreadCpuNanoseconds() - callerCpu0,
            ReferenceEquals(body, drainChunks) ? longestChunk : -1);
        if (failure is { } f) throw new AggregateException("A worker failed in WorkerPool.For.", f);
    }

    /// <summary>
    /// Claims range <paramref name="worker"/> of generation <paramref name="g"/>. Every range of the
    /// previous generation was claimed before its For returned, so an unclaimed range holds g − 1;
    /// a helper that wakes late with an older generation fails here and never runs a stale job.
    /// </summary>
    bool TryClaim(int worker, long g) => Interlocked.CompareExchange(ref claims[worker], g, g - 1) == g - 1;

    void RunRange(int worker, Action<int, int, int> body, int count)
    {
        int start = (int)((long)worker * count / ThreadCount);
        int end = (int)((long)(worker + 1) * count / ThreadCount);
        if (start >= end) return;
        if (!accounting) { body(worker, start, end); return; }
        long t0 = ThreadCpuNanoseconds();
        try { body(worker, start, end); }
        finally { rangeCpu[worker] = ThreadCpuNanoseconds() - t0; }
    }

    void WorkerLoop(int worker)
    {
        long seen = 0;
        Func<bool> called = () => Volatile.Read(ref generation) != seen || Volatile.Read(ref disposed);
        while (true)
        {
            Action<int, int, int> body;
            int count;
            // Spin a little before sleeping: back-to-back kernel calls are the common case.
            SpinBusy(called);
            var spin = new SpinWait();
            while (Volatile.Read(ref generation) == seen && !Volatile.Read(ref disposed) && spin.Count < 400)
                spin.SpinOnce(sleep1Threshold: -1);
            lock (gate)
            {
                while (generation == seen && !disposed) Monitor.Wait(gate);
                if (disposed) return;
                seen = generation;
                body = job!;
                count = jobCount;
            }
            if (!TryClaim(worker, seen)) continue; // the caller already ran (or is running) this range
            insideBody = true;
            try { RunRange(worker, body, count); }
            catch (Exception e) { lock (gate) failure ??= e; }
            finally { insideBody = false; }
            if (Interlocked.Decrement(ref pending) == 0)
                lock (gate) Monitor.PulseAll(gate);
        }
    }

    /// <summary>Stops the worker threads.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            Monitor.PulseAll(gate);
        }
        foreach (var t in threads) t.Join();
    }
}
