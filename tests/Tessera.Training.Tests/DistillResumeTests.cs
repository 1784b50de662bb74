using Tessera.Data;
using Tessera.Model;

namespace Tessera.Training.Tests;

/// <summary>
/// Distilled runs resume: the checkpoint records the objective (teacher cache + loss settings),
/// plain resume refuses to drop it, and an experiment stopped midway and resumed ends with the
/// same weights, bit for bit, as one that ran straight through.
/// </summary>
public class DistillResumeTests
{
    const int Vocab = 32;
    static readonly ModelConfig TeacherConfig = new() { VocabSize = Vocab, Dim = 24, Layers = 1, Heads = 2, KvHeads = 1, HiddenDim = 48, ContextLength = 32 };
    static readonly ModelConfig StudentConfig = new() { VocabSize = Vocab, Dim = 16, Layers = 1, Heads = 2, KvHeads = 1, HiddenDim = 32, ContextLength = 32 };
    static readonly TrainOptions Options = new() { Steps = 20, BatchSize = 2, SequenceLength = 16, LearningRate = 1e-2f, MinLearningRate = 1e-3f, WarmupSteps = 2, EvalEvery = 5, EvalBatches = 2, Seed = 3 };
    static readonly DistillOptions Distill = new() { Alpha = 0.8f, Temperature = 1f, TopK = 4 };

    [Fact]
    public void StoppedAndResumedExperimentEndsBitIdenticalToAStraightOne()
    {
        using var dir = new TempDir();
        using var train = TestData.Shard(dir.File("train.bin"), 3000, Vocab, seed: 5);
        using var val = TestData.Shard(dir.File("val.bin"), 800, Vocab, seed: 6);
        var data = new TrainData([train], [val], ValidationBytes: 800 * 3);
        using var teacher = new Transformer(TeacherConfig, seed: 9);

        var straight = DistillExperiment.Run(teacher, StudentConfig, Options, Distill, data, dir.File("straight"));

        // Stop the distilled student after its step-6 checkpoint (steps/10 = 2 → checkpoints every 2 steps).
        using var stop = new CancellationTokenSource();
        DistillExperiment.Run(teacher, StudentConfig, Options, Distill, data, dir.File("stopped"),
            log: line => { if (line.StartsWith("distilled step 6/", StringComparison.Ordinal)) stop.Cancel(); }, cancel: stop.Token);
        var partial = Checkpoint.List(Path.Combine(dir.File("stopped"), "distilled"));
        Assert.NotEmpty(partial);
        Assert.True(partial[^1].EndsWith("step-00000006", StringComparison.Ordinal) || partial[^1].EndsWith("step-00000007", StringComparison.Ordinal), partial[^1]);

        var lines = new List<string>();
        var resumed = DistillExperiment.Run(teacher, StudentConfig, Options, Distill, data, dir.File("stopped"), log: lines.Add, resume: true);
        Assert.Contains(lines, l => l.StartsWith("distilled: resuming at step", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("scratch: resuming at step 20/20", StringComparison.Ordinal));

        foreach (var student in (string[])["scratch", "distilled"])
        {
            string a = Checkpoint.Resolve(Path.Combine(dir.File("straight"), student)), b = Checkpoint.Resolve(Path.Combine(dir.File("stopped"), student));
            Assert.Equal(Path.GetFileName(a), Path.GetFileName(b));
            foreach (var file in (string[])[Checkpoint.ModelFile, Checkpoint.OptimizerFile])
                Assert.True(File.ReadAllBytes(Path.Combine(a, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b, file))), $"{student}/{file} differs after stop + resume");
        }
        Assert.Equal(straight.Distilled.BitsPerByte, resumed.Distilled.BitsPerByte);
        Assert.Equal(straight.Distilled.Curve, resumed.Distilled.Curve);
    }

    [Fact]
    public void ADistilledCheckpointRecordsItsObjectiveAndPlainResumeRefusesToDropIt()
    {
        using var dir = new TempDir();
        using var train = TestData.Shard(dir.File("train.bin"), 3000, Vocab, seed: 5);
        using var val = TestData.Shard(dir.File("val.bin"), 800, Vocab, seed: 6);
        var data = new TrainData([train], [val], ValidationBytes: 800 * 3);
        using var teacher = new Transformer(TeacherConfig, seed: 9);
        DistillExperiment.Run(teacher, StudentConfig, Options with { Steps = 10 }, Distill, data, dir.File("run"));

        string ck = Checkpoint.Resolve(Path.Combine(dir.File("run"), "distilled"));
        var state = TrainerState.FromJson(File.ReadAllText(Path.Combine(ck, Checkpoint.StateFile)), "state");
        Assert.NotNull(state.Distillation);
        Assert.Equal(Path.GetFullPath(Path.Combine(dir.File("run"), "teacher-topk.bin")), state.Distillation!.CachePath);
        Assert.Equal(Distill, state.Distillation.Options);

        // Before: Trainer.Resume + Run quietly continued with plain cross-entropy.
        using var plain = Trainer.Resume(ck, data, steps: 12);
        Assert.Equal(state.Distillation, plain.ObjectiveReference);
        var e = Assert.Throws<InvalidOperationException>(() => plain.Run());
        Assert.Contains("distill --resume", e.Message);

        string scratch = Checkpoint.Resolve(Path.Combine(dir.File("run"), "scratch"));
        Assert.Null(TrainerState.FromJson(File.ReadAllText(Path.Combine(scratch, Checkpoint.StateFile)), "state").Distillation);
    }
}
