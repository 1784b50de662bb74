using Tessera.Data;
using Tessera.Model;

namespace Tessera.Training.Tests;

public class CheckpointTests
{
    static readonly ModelConfig Config = new ModelConfig
    {
        VocabSize = 40, Dim = 16, Layers = 1, Heads = 2, KvHeads = 1, HiddenDim = 16, Experts = 4, TopK = 2, ContextLength = 8,
    }.Validate();

    static readonly TrainOptions Options = new TrainOptions
    {
        Steps = 3, BatchSize = 2, SequenceLength = 8, WarmupSteps = 1, EvalEvery = 0, CheckpointEvery = 1, KeepCheckpoints = 5, Seed = 9,
    }.Validate();

    /// <summary>Trains 3 steps with a checkpoint after each; the hook adds a tokenizer file.</summary>
    static (string Run, TokenShard Shard) TrainThree(TempDir dir)
    {
        var shard = TestData.Shard(dir.File("train.bin"), 400, 40);
        string run = Path.Combine(dir.Path, "run");
        using var t = new Trainer(Config, Options, new TrainData([shard]), run);
        t.CheckpointExtras = staging =>
        {
            Directory.CreateDirectory(Path.Combine(staging, Checkpoint.TokenizerFolder));
            File.WriteAllText(Path.Combine(staging, Checkpoint.TokenizerFolder, "tokenizer.json"), "{\"stub\": true}");
        };
        t.Run();
        return (run, shard);
    }

    [Fact]
    public void SavesHuggingFaceFilesAndLoadsThemBack()
    {
        using var dir = new TempDir();
        var shard = TestData.Shard(dir.File("train.bin"), 400, 40);
        using var t = new Trainer(Config, Options with { Steps = 1 }, new TrainData([shard]), dir.File("run"));
        t.TrainStep();
        string ck = t.SaveCheckpoint();
        shard.Dispose();
        Assert.Equal("step-00000001", Path.GetFileName(ck));
        foreach (var f in new[] { Checkpoint.ModelFile, Checkpoint.ConfigFile, Checkpoint.OptimizerFile, Checkpoint.StateFile, Checkpoint.ManifestFile })
            Assert.True(File.Exists(Path.Combine(ck, f)), f);
        Assert.Equal(Config, ModelConfig.FromHuggingFaceJson(File.ReadAllText(Path.Combine(ck, Checkpoint.ConfigFile))));
        using (var r = Tessera.Model.Checkpoints.SafetensorsReader.Open(Path.Combine(ck, Checkpoint.ModelFile)))
        {
            Assert.True(r.Contains("model.layers.0.block_sparse_moe.experts.3.w1.weight"));
            Assert.True(r.Contains("lm_head.weight") == !Config.TiedEmbeddings);
        }
        using var loaded = Checkpoint.LoadModel(dir.File("run"));
        Assert.Equal(Config, loaded.Config);
        foreach (var p in t.Model.Parameters.All)
            Assert.True(p.ToArray().AsSpan().SequenceEqual(loaded.Parameters[p.Name].ToArray()), p.Name);
    }

    [Fact]
    public void TheHookFillsTheTokenizerFolderAndOldCheckpointsArePruned()
    {
        using var dir = new TempDir();
        var (run, shard) = TrainThree(dir);
        shard.Dispose();
        Assert.Equal(3, Checkpoint.List(run).Count);
        string latest = Checkpoint.Resolve(run);
        Assert.EndsWith("step-00000003", latest);
        Assert.True(File.Exists(Path.Combine(latest, "tokenizer", "tokenizer.json")));
        Assert.Contains("tokenizer/tokenizer.json", File.ReadAllText(Path.Combine(latest, Checkpoint.ManifestFile)));
        Checkpoint.Prune(run, keep: 1);
        Assert.Equal([latest], Checkpoint.List(run));
    }

    [Fact]
    public void ATruncatedModelFileIsNamedAndThePreviousCheckpointStillWorks()
    {
        using var dir = new TempDir();
        var (run, shard) = TrainThree(dir);
        string model = Path.Combine(run, "step-00000003", Checkpoint.ModelFile);
        using (var fs = new FileStream(model, FileMode.Open)) fs.SetLength(fs.Length / 2);
        var previousBytes = File.ReadAllBytes(Path.Combine(run, "step-00000002", Checkpoint.ModelFile));

        var e = Assert.Throws<InvalidDataException>(() => Trainer.Resume(run, new TrainData([shard])));
        Assert.Contains(model, e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("step-00000002", e.Message);     // points at the intact previous checkpoint
        Assert.DoesNotContain('\n', e.Message);
        Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(run));

        using var resumed = Trainer.Resume(Path.Combine(run, "step-00000002"), new TrainData([shard]));
        Assert.Equal(2, resumed.Step);
        Assert.Equal(previousBytes, File.ReadAllBytes(Path.Combine(run, "step-00000002", Checkpoint.ModelFile)));
        shard.Dispose();
    }

    [Fact]
    public void AGarbledTrainerStateIsNamed()
    {
        using var dir = new TempDir();
        var (run, shard) = TrainThree(dir);
        string state = Path.Combine(run, "step-00000003", Checkpoint.StateFile);
        var bytes = File.ReadAllBytes(state);
        for (int i = 10; i < 30; i++) bytes[i] = (byte)'#';
        File.WriteAllBytes(state, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Trainer.Resume(run, new TrainData([shard])));
        Assert.Contains(state, e.Message);
        // Even with the manifest bypassed (a matching manifest for a broken file), parsing names the file.
        var parse = Assert.Throws<InvalidDataException>(() => TrainerState.FromJson(File.ReadAllText(state), state));
        Assert.Contains(state, parse.Message);
        shard.Dispose();
    }

    [Fact]
    public void AFailedSaveLeavesNoCheckpointAndKeepsThePreviousOne()
    {
        using var dir = new TempDir();
        var shard = TestData.Shard(dir.File("train.bin"), 400, 40);
        string run = dir.File("run");
        using var t = new Trainer(Config, Options, new TrainData([shard]), run);
        t.TrainStep();
        string first = t.SaveCheckpoint();
        var before = Directory.GetFiles(first).ToDictionary(f => f, File.ReadAllBytes);
        t.TrainStep();
        t.CheckpointExtras = _ => throw new IOException("disk full (simulated)");
        Assert.Throws<IOException>(() => t.SaveCheckpoint());
        Assert.Equal([first], Checkpoint.List(run));                  // the half-written step 2 is not a checkpoint
        Assert.Equal(first, Checkpoint.Resolve(run));
        foreach (var (f, b) in before) Assert.Equal(b, File.ReadAllBytes(f));
        t.CheckpointExtras = null;
        Assert.EndsWith("step-00000002", t.SaveCheckpoint());          // and the next save still works
        Assert.DoesNotContain(Directory.GetDirectories(run, ".staging-*"), d => !d.EndsWith("-" + Environment.ProcessId));
        shard.Dispose();
    }

    [Fact]
    public void AFolderWithoutCheckpointsGivesAClearError()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Resolve(dir.Path));
        Assert.Contains("no complete checkpoint", e.Message);
    }
}
