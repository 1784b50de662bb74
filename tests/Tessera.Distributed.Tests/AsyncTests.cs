using Tessera.Data;
using Tessera.Distributed.Worker;
using Tessera.Training;

namespace Tessera.Distributed.Tests;

/// <summary>A 4-worker asynchronous run (rank 0 serves), replayed from its log in one process.</summary>
public class AsyncTests
{
    [MpiFact]
    public void FourWorkerRunReplaysBitForBitInOneProcess()
    {
        using var dir = new TempDir();
        string shard = dir.File("s.bin"), log = dir.File("updates.jsonl");
        DistRun.WriteShard(shard);
        var job = MpiJob.Run(5, $"async {shard} {log} {dir.File("w.bin")} 10");
        Assert.True(job.ExitCode == 0, job.Output);

        var updates = AsyncTrainer.ReadLog(log);
        Assert.Equal(10, updates.Count);
        Assert.Equal(4, updates.Select(u => u.Worker).Distinct().Count());
        // Asynchronous for real: some gradients were computed on weights older than the update they made.
        Assert.Contains(updates, u => u.WeightVersion < u.Update);

        using var s = TokenShard.Open(shard);
        var options = DistRun.Options with { Steps = 10, GradAccumulation = 1, BatchSize = 2 };
        using var replayed = AsyncTrainer.Replay(DistRun.Moe, options, new TrainData([s]), log);
        var expected = DistRun.Weights(replayed);
        Assert.True(expected.AsSpan().SequenceEqual(File.ReadAllBytes(dir.File("w.bin"))), "the replay differs from the asynchronous run");

        // The log matters: applying the same updates in another order gives other weights.
        var swapped = updates.ToList();
        (swapped[1], swapped[2]) = (swapped[2] with { Update = 1 }, swapped[1] with { Update = 2 });
        string other = dir.File("swapped.jsonl");
        File.WriteAllLines(other, swapped.Select(u => System.Text.Json.JsonSerializer.Serialize(u, new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower })));
        if (swapped[1].Worker != swapped[2].Worker)
        {
            using var reordered = AsyncTrainer.Replay(DistRun.Moe, options, new TrainData([s]), other);
            Assert.False(expected.AsSpan().SequenceEqual(DistRun.Weights(reordered)), "reordering two updates should change the weights");
        }
    }
}
