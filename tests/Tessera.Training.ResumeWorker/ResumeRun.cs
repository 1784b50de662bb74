using Tessera.Data;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Training.ResumeWorker;

/// <summary>
/// The small run shared by the resume worker and the tests that kill it: a 2-layer 4-expert
/// top-2 MoE with a capacity limit, gradient accumulation and shuffled data that wraps into a
/// second epoch, checkpointed every step. Both sides compile this same file.
/// </summary>
public static class ResumeRun
{
    public static readonly ModelConfig Config = new ModelConfig
    {
        VocabSize = 64, Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 32, Experts = 4, TopK = 2,
        ContextLength = 16, TiedEmbeddings = false, CapacityFactor = 1.25f,
    }.Validate();

    public static readonly TrainOptions Options = new TrainOptions
    {
        Steps = 12, BatchSize = 4, SequenceLength = 16, GradAccumulation = 2, LearningRate = 5e-3f, MinLearningRate = 5e-4f,
        WarmupSteps = 3, EvalEvery = 0, CheckpointEvery = 1, KeepCheckpoints = 3, Seed = 42, ShuffleData = true,
    }.Validate();

    /// <summary>1,000 tokens (62 windows of 17: the 96 windows the run reads wrap into epoch 1) with learnable structure.</summary>
    public static void WriteShard(string path)
    {
        var rng = new Rng(123);
        var tokens = new int[1000];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = i % 7 == 0 ? rng.NextInt(64) : (tokens[Math.Max(0, i - 1)] * 5 + 3) % 64;
        TokenShard.Write(path, [tokens], 64);
    }
}
