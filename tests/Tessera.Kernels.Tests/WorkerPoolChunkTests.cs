using Tessera.Kernels;

namespace Tessera.Kernels.Tests;

/// <summary>
/// <see cref="WorkerPool.For(int, int, Action{int, int})"/>, the chunk-claiming loop of the decode
/// step (formerly Tessera.Inference.DecodeWorkers): every item once, no chunk of one call running
/// during another, exceptions surfacing.
/// </summary>
public class WorkerPoolChunkTests
{
    /// <summary>
    /// With the busy spin (<see cref="WorkerPool.BusySpin"/>) on and off, calls that follow each other at once
    /// (the helper still spinning) and after a pause longer than the busy window (the helper past it, yielding or
    /// blocked) each run every item exactly once, ranged and chunked.
    /// </summary>
    [Fact]
    public void BusySpinOnAndOffRunsEveryItemOnceAfterShortAndLongGaps()
    {
        bool saved = WorkerPool.BusySpin;
        try
        {
            foreach (bool busy in new[] { true, false })
            {
                WorkerPool.BusySpin = busy;
                using var workers = new WorkerPool(3);
                var hits = new int[48];
                for (int round = 0; round < 3000; round++)
                {
                    if (round % 100 == 99) Thread.Sleep(2);   // > BusySpinMicroseconds: the helpers leave the busy spin
                    Array.Clear(hits);
                    if (round % 2 == 0) workers.For(48, (_, s, e) => { for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]); });
                    else workers.For(48, 12, (s, e) => { for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]); });
                    for (int i = 0; i < 48; i++)
                        if (hits[i] != 1) Assert.Fail($"busy spin {busy}, round {round}: item {i} ran {hits[i]} times");
                }
            }
        }
        finally { WorkerPool.BusySpin = saved; }
    }

    [Fact]
    public void BackToBackCallsWithChangingChunkCountsNeverMixUp()
    {
        // Regression: a helper that saw the previous call's exhausted state could read the next
        // call's (larger) chunk count before it was published and claim a chunk on the stale state,
        // running the next call's body early and counting it done for the wrong call.
        using var workers = new WorkerPool(2);
        var hits = new int[64];
        int call = 0;
        for (int round = 0; round < 200_000; round++)
        {
            int items = round % 2 == 0 ? 4 : 64, chunks = round % 2 == 0 ? 2 : 16;
            int mine = ++call;
            Array.Clear(hits);
            workers.For(items, chunks, (s, e) =>
            {
                if (Volatile.Read(ref call) != mine) throw new InvalidOperationException($"a chunk of call {mine} ran during call {call}");
                for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]);
            });
            for (int i = 0; i < 64; i++)
                if (hits[i] != (i < items ? 1 : 0)) Assert.Fail($"round {round}: item {i} ran {hits[i]} times ({items} items in {chunks} chunks)");
        }
    }

    [Fact]
    public void ChunkedLoopVisitsEveryItemOnceAndRethrows()
    {
        using var workers = new WorkerPool(2);
        for (int round = 0; round < 200; round++)
        {
            int items = 1 + round % 37, chunks = 1 + round % 11;
            var hits = new int[items];
            workers.For(items, chunks, (s, e) => { for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]); });
            Assert.All(hits, h => Assert.Equal(1, h));
        }
        var error = Assert.Throws<AggregateException>(() => workers.For(10, 5, (s, _) => { if (s >= 4) throw new InvalidOperationException("boom"); }));
        Assert.IsType<InvalidOperationException>(error.InnerException);
        workers.For(3, 3, (_, _) => { });   // still usable after a failure
    }

    [Fact]
    public void ChunkedCallFromInsideABodyRunsInline()
    {
        using var pool = new WorkerPool(2);
        int outerThread = -1, innerThreads = 0;
        pool.For(2, (w, _, _) =>
        {
            if (w != 0) return;
            outerThread = Environment.CurrentManagedThreadId;
            pool.For(50, 10, (_, _) => { if (Environment.CurrentManagedThreadId != outerThread) Interlocked.Increment(ref innerThreads); });
        });
        Assert.Equal(0, innerThreads);
    }
}
