using Tessera.Data;
using Tessera.Model;
using Tessera.Text;

namespace Tessera.Training;

/// <summary>
/// The <c>tessera distill --quick</c> recipe, small enough for CI: the embedded corpus under a
/// 1,024-token BPE, a tiny MoE teacher trained on the spot, and a one-layer dense student trained
/// for a few dozen steps each way. It checks the pipeline end to end; the documented full run
/// (docs/distillation.md) is what measures the effect.
/// </summary>
public static class DistillQuick
{
    /// <summary>BPE vocabulary of the quick tokenizer.</summary>
    public const int VocabSize = 1024;

    /// <summary>The quick teacher: 2 layers, width 64, 4 experts top-2.</summary>
    public static ModelConfig Teacher(int vocab) => new()
        { VocabSize = vocab, Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 96, Experts = 4, TopK = 2, ContextLength = 64 };

    /// <summary>The quick student: 1 dense layer, width 32.</summary>
    public static ModelConfig Student(int vocab) => new()
        { VocabSize = vocab, Dim = 32, Layers = 1, Heads = 2, KvHeads = 1, HiddenDim = 64, ContextLength = 64 };

    /// <summary>How the quick teacher is trained.</summary>
    public static TrainOptions TeacherOptions { get; } = new()
        { Steps = 200, BatchSize = 16, SequenceLength = 64, LearningRate = 5e-3f, MinLearningRate = 5e-4f, WarmupSteps = 10, EvalEvery = 0, CheckpointEvery = 0, KeepCheckpoints = 1 };

    /// <summary>How each quick student is trained (the same for both).</summary>
    public static TrainOptions StudentOptions { get; } = new()
        { Steps = 60, BatchSize = 8, SequenceLength = 64, LearningRate = 5e-3f, MinLearningRate = 5e-4f, WarmupSteps = 5, EvalEvery = 15, EvalBatches = 8 };

    /// <summary>The quick distillation settings.</summary>
    public static DistillOptions Distill { get; } = new() { Alpha = 0.5f, Temperature = 1f, TopK = 64 };

    /// <summary>
    /// Trains (or reuses) the quick BPE tokenizer in <paramref name="dir"/>/tokenizer and tokenizes
    /// the embedded corpus into <paramref name="dir"/>/data (reused when already there).
    /// </summary>
    public static PreparedData PrepareEmbedded(string dir, Action<string>? log = null)
    {
        string tokDir = Path.Combine(dir, "tokenizer"), dataDir = Path.Combine(dir, "data");
        if (File.Exists(Path.Combine(dataDir, PreparedData.MetaFile)) && File.Exists(Path.Combine(tokDir, TokenizerFiles.ConfigFile))
            && PreparedData.Load(dataDir) is { VocabSize: VocabSize } ready)
            return ready;
        string corpus = EmbeddedCorpus.Materialize(Path.Combine(dir, "corpus"));
        var bpe = BpeTrainer.Train(TrainingCorpus.FromPath(corpus), new BpeTrainerOptions(VocabSize), out _);
        TokenizerFiles.Save(bpe, tokDir);
        var prepared = ShardBuilder.Prepare(EmbeddedCorpus.Read(Path.Combine(dir, "corpus")), bpe, tokDir, new DocumentSplit(), dataDir);
        log?.Invoke($"quick data: {bpe.VocabSize}-token BPE, {prepared.Train.Tokens:N0} train / {prepared.Validation.Tokens:N0} validation tokens → {dataDir}");
        return prepared;
    }

    /// <summary>Trains the quick teacher on <paramref name="data"/>; checkpoints it into <paramref name="runDir"/> when given.</summary>
    public static Transformer TrainTeacher(TrainData data, int vocab, string? runDir = null, Action<string>? log = null, Action<string>? checkpointExtras = null)
    {
        var model = new Transformer(Teacher(vocab), TeacherOptions.Seed);
        try
        {
            using var trainer = new Trainer(model, TeacherOptions, data, runDir);
            trainer.CheckpointExtras = checkpointExtras;
            long every = Math.Max(1, TeacherOptions.Steps / 4);
            trainer.StepCompleted = r => { if (r.Step % every == 0) log?.Invoke($"quick teacher step {r.Step}/{r.Steps} | ce {r.Loss:F4} | {r.TokensPerSecond:N0} tok/s"); };
            trainer.Run();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
