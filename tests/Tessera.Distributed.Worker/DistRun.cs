using System.Runtime.InteropServices;
using Tessera.Data;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Distributed.Worker;

/// <summary>
/// The small runs shared by the MPI worker and the tests that compare it with one process: a
/// 2-layer MoE (4 experts, top-2, a capacity limit) and its dense twin, a global batch of 8
/// sequences (so 1, 2 and 4 ranks divide it), 2 micro-batches per step. Both sides compile this file.
/// </summary>
public static class DistRun
{
    public static readonly ModelConfig Moe = new ModelConfig
    {
        VocabSize = 64, Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 32, Experts = 4, TopK = 2,
        ContextLength = 16, TiedEmbeddings = false, CapacityFactor = 1.25f,
    }.Validate();

    public static readonly Training.TrainOptions Options = new Training.TrainOptions
    {
        Steps = 4, BatchSize = 8, SequenceLength = 16, GradAccumulation = 2, LearningRate = 5e-3f, MinLearningRate = 5e-4f,
        WarmupSteps = 2, EvalEvery = 0, CheckpointEvery = 2, KeepCheckpoints = 3, Seed = 7, ShuffleData = true,
    }.Validate();

    /// <summary>2,000 tokens with learnable structure.</summary>
    public static void WriteShard(string path)
    {
        var rng = new Rng(99);
        var tokens = new int[2000];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = i % 7 == 0 ? rng.NextInt(64) : (tokens[Math.Max(0, i - 1)] * 5 + 3) % 64;
        TokenShard.Write(path, [tokens], 64);
    }

    /// <summary>Every weight in order, as raw bytes.</summary>
    public static byte[] Weights(Transformer model)
    {
        var bytes = new List<byte>();
        foreach (var p in model.Parameters.All) bytes.AddRange(MemoryMarshal.AsBytes(p.ToArray().AsSpan()).ToArray());
        return [.. bytes];
    }

    /// <summary>Weights (in order) then the per-step losses, as raw bytes: equal files mean bit-identical runs.</summary>
    public static byte[] Snapshot(Training.Trainer t, IReadOnlyList<double> losses)
    {
        var bytes = new List<byte>();
        foreach (var p in t.Model.Parameters.All) bytes.AddRange(MemoryMarshal.AsBytes(p.ToArray().AsSpan()).ToArray());
        bytes.AddRange(MemoryMarshal.AsBytes(losses.ToArray().AsSpan()).ToArray());
        return [.. bytes];
    }
}
