using Tessera.Model;

namespace Tessera.Training.Tests;

/// <summary>
/// Dropout in training (the repeat lab needs it): masks come from the trainer's saved RNG, so a
/// run with dropout still resumes bit-exactly; evaluation is deterministic (dropout off).
/// </summary>
public class LabDropoutTests
{
    static readonly ModelConfig Config = new()
    {
        VocabSize = 61, Dim = 16, Layers = 2, Heads = 2, KvHeads = 2, HiddenDim = 32, ContextLength = 16, Dropout = 0.2f,
    };

    static readonly TrainOptions Options = new()
    {
        Steps = 6, BatchSize = 2, SequenceLength = 16, WarmupSteps = 1, EvalEvery = 0, EvalBatches = 2, CheckpointEvery = 0, Seed = 21,
    };

    [Fact]
    public void RunWithDropoutResumesBitExactly()
    {
        using var dir = new TempDir();
        using var shard = TestData.Shard(dir.File("train.bin"), 3000, Config.VocabSize);
        var data = new TrainData([shard]);

        Dictionary<string, int[]> reference;
        var losses = new List<double>();
        using (var t = new Trainer(Config, Options, data))
        {
            t.StepCompleted = r => losses.Add(r.TotalLoss);
            t.Run();
            reference = TestData.Snapshot(t);
        }

        string run = Path.Combine(dir.Path, "run");
        using (var t = new Trainer(Config, Options, data, run))
        {
            for (int i = 0; i < 3; i++) t.TrainStep();
            t.SaveCheckpoint();
        }
        using (var t = Trainer.Resume(run, data))
        {
            Assert.Equal(3, t.Step);
            t.StepCompleted = r => Assert.Equal(BitConverter.DoubleToInt64Bits(losses[(int)r.Step - 1]), BitConverter.DoubleToInt64Bits(r.TotalLoss));
            t.Run();
            TestData.AssertSame(reference, TestData.Snapshot(t));
        }
    }

    [Fact]
    public void DropoutChangesTrainingButEvaluationIsDeterministic()
    {
        using var dir = new TempDir();
        using var shard = TestData.Shard(dir.File("train.bin"), 3000, Config.VocabSize);
        using var val = TestData.Shard(dir.File("val.bin"), 600, Config.VocabSize, seed: 9);
        var data = new TrainData([shard], [val]);
        double withDropout, without;
        using (var t = new Trainer(Config, Options, data))
        {
            withDropout = t.TrainStep().TotalLoss;
            Assert.Equal(t.Evaluate().Loss, t.Evaluate().Loss);
        }
        using (var t = new Trainer(Config with { Dropout = 0 }, Options, data)) without = t.TrainStep().TotalLoss;
        // Same weights and batch at step 1: only the dropout masks differ.
        Assert.NotEqual(without, withDropout);
        Assert.True(double.IsFinite(withDropout));
    }
}
