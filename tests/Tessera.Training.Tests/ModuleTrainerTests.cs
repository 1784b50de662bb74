using System.Runtime.InteropServices;
using Tessera.Data;
using Tessera.Model;
using Tessera.Model.Modules;
using Tessera.Tensors;

namespace Tessera.Training.Tests;

public class ModuleTrainerTests
{
    static readonly ModelConfig Moe = new ModelConfig
    {
        VocabSize = 32, Dim = 16, Layers = 2, Heads = 2, KvHeads = 1, HiddenDim = 24, Experts = 2, TopK = 1, ContextLength = 16,
    }.Validate();
    static readonly ModelConfig Dense = (Moe with { Experts = 1, TopK = 1 }).Validate();

    static TrainOptions Options(long steps, float lr = 1e-2f) => new TrainOptions
    {
        Steps = steps, BatchSize = 4, SequenceLength = 16, LearningRate = lr, MinLearningRate = 1e-3f, WarmupSteps = 2, EvalBatches = 4, CheckpointEvery = 0,
    }.Validate();

    static byte[][] Bytes(Transformer m) => [.. m.Parameters.All.Select(t => MemoryMarshal.AsBytes(t.AsSpan()).ToArray())];

    public static TheoryData<bool, ModuleKind> Cases => new()
    {
        { false, ModuleKind.Experts }, { false, ModuleKind.Lora }, { true, ModuleKind.Experts }, { true, ModuleKind.Lora },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ModuleTrainingLowersNewDomainLossAndLeavesEveryBaseByteUnchanged(bool moe, ModuleKind kind)
    {
        using var dir = new TempDir();
        using var train = TestData.Shard(dir.File("train.bin"), 4000, 32, seed: 5);
        using var val = TestData.Shard(dir.File("val.bin"), 1000, 32, seed: 6);
        var data = new TrainData([train], [val], 1000);
        using var model = new Transformer(moe ? Moe : Dense, seed: 2);
        var before = Bytes(model);
        var (baseLoss, _) = ModuleTrainer.HeldOut(model, data, 4, 16, 4);
        double trainedLoss;
        using (var trainer = new ModuleTrainer(model, new ModuleSpec("new", kind, [0, 1], Experts: 2, Rank: 4), Options(40, kind == ModuleKind.Lora ? 3e-2f : 1e-2f), data, null))   // adapters start at zero: a higher rate
        {
            trainer.Run();
            Assert.Equal(40, trainer.Step);
            trainedLoss = ModuleTrainer.HeldOut(model, data, 4, 16, 4).Loss;
            foreach (var t in model.Parameters.All) Assert.Null(t.Grad);   // no gradient buffer, so no optimizer state either
            Assert.DoesNotContain(trainer.Module.Parameters.All, t => model.Parameters.Contains(t.Name));
        }
        var after = Bytes(model);
        for (int i = 0; i < before.Length; i++) Assert.True(before[i].AsSpan().SequenceEqual(after[i]), $"base tensor {model.Parameters.All[i].Name} changed");
        Assert.True(trainedLoss < baseLoss - 0.02, $"held-out loss {baseLoss:F4} → {trainedLoss:F4}: the module did not learn the new domain");
        Assert.Equal(baseLoss, ModuleTrainer.HeldOut(model, data, 4, 16, 4).Loss);   // detached: the base exactly
    }

    [Fact]
    public void ResumedModuleTrainingMatchesAnUninterruptedRunBitForBit()
    {
        using var dir = new TempDir();
        using var train = TestData.Shard(dir.File("train.bin"), 4000, 32, seed: 5);
        var data = new TrainData([train]);
        byte[] Run(string outDir, long stopAt, bool resume)
        {
            using var model = new Transformer(Moe, seed: 2);
            using var t = new ModuleTrainer(model, new ModuleSpec("m", ModuleKind.Experts, [1], Experts: 2), Options(12), data, outDir, resume);
            while (t.Step < stopAt) t.TrainStep();
            t.Save();
            return File.ReadAllBytes(Path.Combine(outDir, ModuleTrainer.ModuleFolder, ModuleFile.WeightsName));
        }
        var straight = Run(dir.File("a"), 12, false);
        Run(dir.File("b"), 5, false);
        var resumed = Run(dir.File("b"), 12, true);
        Assert.True(straight.AsSpan().SequenceEqual(resumed), "a resumed module run differs from the uninterrupted one");
    }
}
