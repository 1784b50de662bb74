using Tessera.Kernels;

namespace Tessera.Kernels.Tests;

/// <summary>
/// The caller may run a helper's range when the helper is late; the partition and worker indices
/// must stay exactly those of the static split, each range run exactly once per call.
/// </summary>
public class WorkerPoolClaimTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void EveryRangeRunsExactlyOnceWithItsOwnWorkerIndexAcrossManyCalls(int threads)
    {
        using var pool = new WorkerPool(threads);
        const int calls = 4000;
        for (int call = 0; call < calls; call++)
        {
            int count = 1 + call % 7;
            var hits = new int[count];
            var wrongWorker = 0;
            pool.For(count, (w, start, end) =>
            {
                if (start != (int)((long)w * count / threads) || end != (int)((long)(w + 1) * count / threads))
                    Interlocked.Increment(ref wrongWorker);
                for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
                if (call % 500 == 0) Thread.Sleep(1); // now and then a slow range, so helpers fall behind
            });
            Assert.Equal(0, wrongWorker);
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void AnExceptionInAnyRangeStillSurfacesAndThePoolKeepsWorking()
    {
        using var pool = new WorkerPool(2);
        for (int call = 0; call < 200; call++)
        {
            int thrower = call % 2;
            var e = Assert.Throws<AggregateException>(() => pool.For(2, (w, _, _) =>
            {
                if (w == thrower) throw new InvalidOperationException($"range {w}");
            }));
            Assert.Equal($"range {thrower}", e.InnerException!.Message);
            int sum = 0;
            pool.For(10, (_, s, en) => Interlocked.Add(ref sum, en - s));
            Assert.Equal(10, sum);
        }
    }
}
