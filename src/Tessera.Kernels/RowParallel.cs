namespace Tessera.Kernels;

/// <summary>A block of independent rows (or columns, or chunks) that a kernel can run on any thread.</summary>
internal interface IRowRange
{
    /// <summary>Processes items [start, end). Must not depend on which other items share the call.</summary>
    void Run(int start, int end);
}

/// <summary>
/// Runs an <see cref="IRowRange"/> body over <see cref="WorkerPool.Shared"/> when the work is large
/// enough to pay for the hand-off, else inline. Bodies are structs holding raw pointers, so the call
/// allocates nothing: each calling thread keeps one runner per body type, whose delegate is created
/// once. Every item is computed by the same code whichever worker gets it, so results do not depend
/// on the thread count.
/// </summary>
internal static class RowParallel
{
    /// <summary>Below this many touched elements the pool hand-off (~µs) costs more than it saves.</summary>
    public const long MinParallelElements = 1 << 16;

    public static void Run<TBody>(TBody body, int count, long elements) where TBody : struct, IRowRange
    {
        if (count <= 0) return;
        if (count == 1 || elements < MinParallelElements) { body.Run(0, count); return; }
        var pool = WorkerPool.Shared;
        if (pool.ThreadCount == 1) { body.Run(0, count); return; }
        Runner<TBody>.Run(pool, body, count);
    }

    sealed class Runner<TBody> where TBody : struct, IRowRange
    {
        [ThreadStatic] static Runner<TBody>? cached;

        TBody body;
        readonly Action<int, int, int> action;

        Runner() => action = (_, start, end) => body.Run(start, end);

        public static void Run(WorkerPool pool, TBody body, int count)
        {
            var runner = cached ??= new Runner<TBody>();
            runner.body = body;
            try { pool.For(count, runner.action); }
            finally { runner.body = default; }
        }
    }
}
