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

    /// <summary>Two domains the routers can tell apart: ids 0..15 (the base's) and 16..31 (the new one), each with a simple recurrence.</summary>
    static TokenShard DomainShard(string path, int count, int offset, ulong seed)
    {
        var rng = new Rng(seed);
        var tokens = new int[count];
        for (int i = 0; i < count; i++) tokens[i] = offset + (i % 5 == 0 ? rng.NextInt(16) : ((tokens[i - 1] - offset) * 3 + 1) % 16);
        TokenShard.Write(path, [tokens], 32);
        return TokenShard.Open(path);
    }

    static double BaseOnlyShare(Transformer model, ModelModule module, TrainData data)
    {
        var reader = new BatchReader(data.Validation!, 4, 16, 0, shuffle: false);
        var ids = new int[64]; var tgt = new int[64];
        long zero = 0, all = 0;
        for (int b = 0; b < 4; b++)
        {
            reader.Next(ids, tgt);
            using var g = new Graph(recordGradients: false);
            model.Forward(g, ids, 4, 16);
            foreach (var (_, picks) in module.LastRouting) { foreach (int p in picks) if (p == 0) zero++; all += picks.Length; }
        }
        return (double)zero / all;
    }

    [Fact]
    public void RouterOffTrainingSendsBaseDomainTokensToTheBaseAndStillLearnsTheNewDomain()
    {
        using var dir = new TempDir();
        using var baseTrain = DomainShard(dir.File("en.bin"), 4000, 0, 5);
        using var baseVal = DomainShard(dir.File("en-val.bin"), 1000, 0, 6);
        using var newTrain = DomainShard(dir.File("cs.bin"), 4000, 16, 7);
        using var newVal = DomainShard(dir.File("cs-val.bin"), 1000, 16, 8);
        var english = new TrainData([baseTrain], [baseVal], 1000);
        var code = new TrainData([newTrain], [newVal], 1000);
        using var model = new Transformer(Moe, seed: 2);
        var before = Bytes(model);
        double enBase = ModuleTrainer.HeldOut(model, english, 4, 16, 4).Loss, csBase = ModuleTrainer.HeldOut(model, code, 4, 16, 4).Loss;
        var spec = new ModuleSpec("new", ModuleKind.Experts, [0, 1], Experts: 2);
        var results = new Dictionary<bool, (double En, double Cs, double ShareEn, double ShareCs)>();
        foreach (bool routerOff in new[] { false, true })
        {
            using var trainer = new ModuleTrainer(model, spec, Options(60), code, null, routerOff: routerOff ? new RouterOff(english) : null);
            trainer.Run();
            results[routerOff] = (ModuleTrainer.HeldOut(model, english, 4, 16, 4).Loss, ModuleTrainer.HeldOut(model, code, 4, 16, 4).Loss,
                BaseOnlyShare(model, trainer.Module, english), BaseOnlyShare(model, trainer.Module, code));
        }
        var (plain, routed) = (results[false], results[true]);
        Assert.True(routed.ShareEn > 0.7 && routed.ShareEn > plain.ShareEn + 0.4, $"base-domain tokens routed to 'base only': {routed.ShareEn:P1} with router-off training, {plain.ShareEn:P1} without");
        Assert.True(routed.ShareCs < 0.5, $"new-domain tokens routed to 'base only': {routed.ShareCs:P1}: router-off training switched the module off everywhere");
        Assert.True(routed.Cs < csBase - 0.02, $"new-domain loss {csBase:F4} → {routed.Cs:F4}: the router-off module did not learn the new domain");
        Assert.True(Math.Abs(routed.En - enBase) < Math.Abs(plain.En - enBase), $"base-domain loss {enBase:F4}: {routed.En:F4} with router-off training, {plain.En:F4} without");
        var after = Bytes(model);
        for (int i = 0; i < before.Length; i++) Assert.True(before[i].AsSpan().SequenceEqual(after[i]), $"base tensor {model.Parameters.All[i].Name} changed");

        Assert.Contains("needs an experts module", Assert.Throws<ArgumentException>(() => new ModuleTrainer(model, new ModuleSpec("l", ModuleKind.Lora, [0]), Options(2), code, null, routerOff: new RouterOff(english))).Message);
        Assert.Contains("cannot resume", Assert.Throws<ArgumentException>(() => new ModuleTrainer(model, spec, Options(2), code, dir.File("r"), resume: true, routerOff: new RouterOff(english))).Message);
        Assert.Empty(model.Modules.Attached);   // a refused trainer attaches nothing
    }
}
