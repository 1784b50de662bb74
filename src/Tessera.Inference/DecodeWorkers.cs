using Tessera.Kernels;

namespace Tessera.Inference;

/// <summary>
/// The parallel loop of the decode step, built so the caller never waits for a helper that has
/// not started. A decode step is some 50 short dependent phases (per layer: q/k/v, attention, o,
/// gate/up, down), each well under a millisecond; <see cref="WorkerPool.For(int, Action{int, int, int})"/> splits work
/// statically and waits for every worker, so when the machine is shared and a helper thread is
/// descheduled, each phase stalls for a scheduler time slice. Here the work is cut into chunks that
/// threads claim from one atomic counter: the caller starts on them at once, a helper that wakes
/// late finds nothing left, and the caller waits only for chunks already claimed. Which thread runs
/// a chunk never changes what the chunk computes, so results do not depend on timing.
/// <para>Protocol: <c>state</c> packs (generation, chunk count, next chunk) in one word. A helper
/// reads it, then the job's fields, then claims with a compare-exchange on the same state. A claim
/// can only succeed while that generation has unclaimed chunks, and the caller rewrites the fields
/// only after every chunk of a generation is done, so a successful claim proves the fields it read
/// belong to that generation. (The chunk count must live in the state word: read from a field, a
/// helper holding an exhausted state could see the next call's larger count before that call is
/// published and claim a chunk of it on the stale state.)</para>
/// </summary>
public sealed class DecodeWorkers : IDisposable
{
    static DecodeWorkers? shared;
    static readonly object SharedLock = new();

    readonly Thread[] helpers;
    readonly object gate = new();
    readonly object callerLock = new();
    long state;                      // (generation << 32) | (chunk count << 16) | next chunk
    int done, sleeping;
    Action<int, int>? body;          // (start, end) of one chunk's items
    int count;
    Exception? failure;
    volatile bool disposed;
    [ThreadStatic] static bool inside;

    /// <summary>A pool running work on <paramref name="threads"/> threads, the caller included.</summary>
    public DecodeWorkers(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "DecodeWorkers needs at least one thread.");
        ThreadCount = threads;
        helpers = new Thread[threads - 1];
        for (int i = 0; i < helpers.Length; i++)
        {
            helpers[i] = new Thread(HelperLoop) { IsBackground = true, Name = $"tessera-decode-{i + 1}" };
            helpers[i].Start();
        }
    }

    /// <summary>Most chunks one call is cut into (the count shares the state word).</summary>
    const int MaxChunks = 0xFFFF;

    /// <summary>Threads sharing each call, the caller included.</summary>
    public int ThreadCount { get; }

    /// <summary>The process-wide instance, as many threads as <see cref="WorkerPool.Shared"/>.</summary>
    public static DecodeWorkers Shared
    {
        get
        {
            int n = WorkerPool.Shared.ThreadCount;
            if (shared is { } s && s.ThreadCount == n) return s;
            lock (SharedLock)
            {
                if (shared is null || shared.ThreadCount != n) { shared?.Dispose(); shared = new DecodeWorkers(n); }
                return shared;
            }
        }
    }

    /// <summary>
    /// Calls <paramref name="work"/>(start, end) over [0, <paramref name="items"/>) in
    /// <paramref name="chunkCount"/> near-equal chunks, on whichever threads are running. Nested or
    /// single-threaded calls run inline. Rethrows the first exception of any chunk.
    /// </summary>
    public void For(int items, int chunkCount, Action<int, int> work)
    {
        if (items <= 0) return;
        chunkCount = Math.Clamp(chunkCount, 1, Math.Min(items, MaxChunks));
        if (helpers.Length == 0 || chunkCount == 1 || inside) { work(0, items); return; }
        ObjectDisposedException.ThrowIf(disposed, this);
        lock (callerLock)
        {
            body = work; count = items; failure = null;
            Volatile.Write(ref done, 0);
            long generation = (Volatile.Read(ref state) >> 32) + 1;
            Interlocked.Exchange(ref state, (generation << 32) | ((long)chunkCount << 16));   // a full fence: pairs with the helper's increment of sleeping
            if (Volatile.Read(ref sleeping) > 0) lock (gate) Monitor.PulseAll(gate);
            inside = true;
            try { Drain(); }
            finally { inside = false; }
            var spin = new SpinWait();
            while (Volatile.Read(ref done) < chunkCount) spin.SpinOnce(sleep1Threshold: -1);
            body = null;
            if (failure is { } f) throw new AggregateException("A chunk failed in DecodeWorkers.For.", f);
        }
    }

    /// <summary>Claims and runs chunks of the current generation until none are left.</summary>
    void Drain()
    {
        while (true)
        {
            long s = Volatile.Read(ref state);
            int next = (int)(s & 0xFFFF), total = (int)((s >> 16) & 0xFFFF), n = count;
            var work = body;
            if (next >= total || work is null) return;
            if (Interlocked.CompareExchange(ref state, s + 1, s) != s) continue;
            try { work((int)((long)next * n / total), (int)((long)(next + 1) * n / total)); }
            catch (Exception e) { lock (gate) failure ??= e; }
            Interlocked.Increment(ref done);
        }
    }

    bool Claimable()
    {
        long s = Volatile.Read(ref state);
        return (s & 0xFFFF) < ((s >> 16) & 0xFFFF) && body is not null;
    }

    void HelperLoop()
    {
        inside = true;
        while (!disposed)
        {
            Drain();
            // Back-to-back phases are the common case: spin briefly, then sleep until the next call.
            var spin = new SpinWait();
            while (!Claimable() && !disposed && spin.Count < 200) spin.SpinOnce(sleep1Threshold: -1);
            if (Claimable()) continue;
            lock (gate)
            {
                Interlocked.Increment(ref sleeping);   // a full fence before the check: the caller either sees us asleep or we see its job
                while (!Claimable() && !disposed) Monitor.Wait(gate);
                Interlocked.Decrement(ref sleeping);
            }
        }
    }

    /// <summary>Stops the helper threads.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        lock (gate) Monitor.PulseAll(gate);
        foreach (var t in helpers) t.Join();
    }
}
