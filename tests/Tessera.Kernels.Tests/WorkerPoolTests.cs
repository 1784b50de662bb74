using Tessera.Kernels;

namespace Tessera.Kernels.Tests;

public class WorkerPoolTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(1, 7)]
    [InlineData(2, 1)]
    [InlineData(2, 1001)]
    [InlineData(3, 64)]
    public void ForCoversEveryIndexExactlyOnce(int threads, int count)
    {
        using var pool = new WorkerPool(threads);
        var hits = new int[count];
        for (int rep = 0; rep < 50; rep++)
            pool.For(count, (w, start, end) => { for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]); });
        Assert.All(hits, h => Assert.Equal(50, h));
    }

    [Fact]
    public void PartitionIsStaticAndDeterministic()
    {
        using var pool = new WorkerPool(2);
        var owner = new int[10];
        pool.For(10, (w, start, end) => { for (int i = start; i < end; i++) owner[i] = w; });
        Assert.Equal(new[] { 0, 0, 0, 0, 0, 1, 1, 1, 1, 1 }, owner);
    }

    [Fact]
    public void WorkerExceptionIsRethrownOnTheCaller()
    {
        using var pool = new WorkerPool(2);
        var e = Assert.Throws<AggregateException>(() => pool.For(4, (w, s, e) => { if (w == 1) throw new InvalidOperationException("boom"); }));
        Assert.IsType<InvalidOperationException>(e.InnerException);
        // The pool stays usable afterwards.
        int sum = 0;
        pool.For(4, (w, s, e) => Interlocked.Add(ref sum, e - s));
        Assert.Equal(4, sum);
    }

    [Fact]
    public void ConcurrentCallersEachGetTheirWholeJob()
    {
        using var pool = new WorkerPool(2);
        const int callers = 4, reps = 200, count = 37;
        var sums = new long[callers];
        var threads = Enumerable.Range(0, callers).Select(c => new Thread(() =>
        {
            for (int r = 0; r < reps; r++)
                pool.For(count, (w, s, e) => { for (int i = s; i < e; i++) Interlocked.Add(ref sums[c], i + 1); });
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        long expected = (long)reps * count * (count + 1) / 2;
        Assert.All(sums, s => Assert.Equal(expected, s));
    }

    [Fact]
    public void NestedCallRunsInlineWithoutDeadlock()
    {
        using var pool = new WorkerPool(2);
        var inner = new int[2];
        pool.For(2, (w, s, e) => pool.For(10, (w2, s2, e2) => Interlocked.Add(ref inner[w], e2 - s2)));
        Assert.Equal(new[] { 10, 10 }, inner);
    }
}
