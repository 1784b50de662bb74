using Tessera.Kernels;
using Tessera.Model;

namespace Tessera.Training.Tests;

public class TrainerTests
{
    static readonly ModelConfig Dense = new() { VocabSize = 32, Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 48, ContextLength = 16 };

    [Fact]
    public void LossFallsOnLearnableDataAndReportsAreFilledIn()
    {
        using var dir = new TempDir();
        using var shard = TestData.Shard(dir.File("s.bin"), 3000, 32);
        var moe = Dense with { Experts = 4, TopK = 2, HiddenDim = 32, CapacityFactor = 1f };
        var options = new TrainOptions { Steps = 40, BatchSize = 4, SequenceLength = 16, LearningRate = 1e-2f, MinLearningRate = 1e-3f, WarmupSteps = 5, EvalEvery = 0 };
        using var t = new Trainer(moe, options, new TrainData([shard]));
        var reports = new List<StepReport>();
        t.StepCompleted = reports.Add;
        t.Run();
        Assert.Equal(40, reports.Count);
        double first = reports.Take(5).Average(r => r.Loss), last = reports.TakeLast(5).Average(r => r.Loss);
        Assert.True(last < first - 0.5, $"loss did not fall: {first:F3} → {last:F3}");
        var r = reports[^1];
        Assert.Equal(40 * 64, r.TokensSeen);
        Assert.True(r.TokensPerSecond > 0 && r.Mfu > 0 && r.Mfu < 1 && r.StepSeconds > 0);
        Assert.Equal(TimeSpan.Zero, r.Eta);
        Assert.True(reports[0].Eta > TimeSpan.Zero);
        Assert.True(r.TotalLoss > r.Loss);                             // router losses are positive
        Assert.Equal(2, r.ExpertLoads.Count);
        Assert.All(r.ExpertLoads, l => Assert.Equal(64 * 2, l.Assigned.Sum()));
        Assert.Equal(r.ExpertLoads.Sum(l => l.Dropped), r.DroppedAssignments);
        Assert.True(reports.Sum(x => x.DroppedAssignments) > 0, "capacity factor 1 should drop some assignments over 40 steps");
        Assert.Equal(LearningRateSchedule.From(options).At(39), r.LearningRate);   // the last step runs just above the minimum
        Assert.True(r.LearningRate > options.MinLearningRate && r.LearningRate < 1.05f * options.MinLearningRate);
    }

    [Fact]
    public void AccumulatingTwoHalfBatchesEqualsOneFullBatch()
    {
        // The reader hands out windows in the same order whatever B is, and the dense model's loss
        // is a per-token mean, so 2 × (B=2) accumulated must equal 1 × (B=4) up to fp32 rounding.
        using var dir = new TempDir();
        using var shard = TestData.Shard(dir.File("s.bin"), 1000, 32);
        var o = new TrainOptions { Steps = 3, SequenceLength = 16, WarmupSteps = 0, LearningRate = 1e-2f, MinLearningRate = 1e-2f, Seed = 3 };
        using var full = new Trainer(Dense, o with { BatchSize = 4 }, new TrainData([shard]));
        using var halves = new Trainer(Dense, o with { BatchSize = 2, GradAccumulation = 2 }, new TrainData([shard]));
        for (int s = 0; s < 3; s++)
        {
            var a = full.TrainStep(); var b = halves.TrainStep();
            Assert.Equal(a.Loss, b.Loss, 5);
            Assert.Equal(a.GradNorm, b.GradNorm, 4);
        }
        foreach (var p in full.Model.Parameters.All)
        {
            var x = p.ToArray(); var y = halves.Model.Parameters[p.Name].ToArray();
            for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs(x[i] - y[i]) < 1e-4, $"{p.Name}[{i}]: {x[i]} vs {y[i]}");
        }
        Assert.Equal(full.Cursor, halves.Cursor);
    }

    [Fact]
    public void EvaluationIsTheMeanValidationLossAndGivesBitsPerByte()
    {
        using var dir = new TempDir();
        using var train = TestData.Shard(dir.File("t.bin"), 1000, 32);
        using var val = TestData.Shard(dir.File("v.bin"), 200, 32, seed: 77);   // 12 windows of 17 → 3 batches of 4
        var o = new TrainOptions { Steps = 2, BatchSize = 4, SequenceLength = 16, WarmupSteps = 0, EvalBatches = 10, EvalEvery = 1 };
        using var t = new Trainer(Dense, o, new TrainData([train], [val], ValidationBytes: 500));
        var evals = new List<EvalReport>();
        t.Evaluated = evals.Add;
        t.Run();
        Assert.Equal(2, evals.Count);                                     // after step 1 and step 2 (the last)
        var e = evals[^1];
        Assert.Equal(3 * 4 * 16, e.Tokens);
        Assert.Equal(e.Loss, t.Evaluate().Loss);                          // same windows every time

        // Recompute by hand: windows of 17 tokens in file order, mean of the 3 batch means.
        var reader = new Tessera.Data.BatchReader([val], 4, 16, 0, shuffle: false);
        var ids = new int[64]; var tg = new int[64];
        double sum = 0;
        for (int b = 0; b < 3; b++)
        {
            reader.Next(ids, tg);
            using var g = new Tessera.Tensors.Graph(recordGradients: false);
            sum += t.Model.Forward(g, ids, 4, 16, tg).CrossEntropy!.Item();
        }
        Assert.Equal(sum / 3, e.Loss, 12);
        Assert.Equal(e.Loss * 200 / (Math.Log(2) * 500), e.BitsPerByte, 12);
        Assert.Equal(1.0, EvalReport.BitsPerByteOf(Math.Log(2), 1000, 1000), 12);
        Assert.True(double.IsNaN(EvalReport.BitsPerByteOf(1, 10, 0)));
    }

    [Fact]
    public void ThroughputHelperTimesSteps()
    {
        var r = TrainThroughput.Measure(Dense, batchSize: 2, sequenceLength: 16, steps: 3);
        Assert.True(r.MsPerStep > 0);
        Assert.Equal(2 * 16 / (r.MsPerStep / 1000), r.TokensPerSecond, 6);
        Assert.Equal(Dense.TrainingFlopsPerToken(16) * r.TokensPerSecond / GemmPeak.PeakFlops(WorkerPool.Shared.ThreadCount), r.Mfu, 12);
    }

    [Fact]
    public void MfuDividesByTheMeasuredPeak_UnlessOneIsGiven()
    {
        using var dir = new TempDir();
        using var shard = TestData.Shard(dir.File("s.bin"), 500, 32);
        var data = new TrainData([shard]);
        var options = new TrainOptions { Steps = 2, BatchSize = 2, SequenceLength = 16, EvalEvery = 0, CheckpointEvery = 0 };
        Assert.Equal(0, options.PeakFlops);                                  // no assumed figure
        using (var t = new Trainer(Dense, options, data))
        {
            double peak = GemmPeak.PeakFlops(WorkerPool.Shared.ThreadCount);
            Assert.True(peak > 1e8, $"measured peak {peak / 1e9:F2} GFLOP/s");
            Assert.Equal(peak, t.PeakFlops);
            Assert.Equal(GemmPeak.PerThreadGflops * 1e9 * WorkerPool.Shared.ThreadCount, t.PeakFlops);   // cached: the same probe
            var r = t.TrainStep();
            Assert.Equal(Dense.TrainingFlopsPerToken(16) * r.TokensPerSecond / peak, r.Mfu, 12);
            Assert.InRange(r.Mfu, double.Epsilon, 1.0);
        }
        using (var t = new Trainer(Dense, options with { PeakFlops = 5e9 }, data))
            Assert.Equal(5e9, t.PeakFlops);
    }
}
