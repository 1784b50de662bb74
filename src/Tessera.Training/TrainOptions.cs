namespace Tessera.Training;

/// <summary>
/// The knobs of one training run. Immutable; derive variants with <c>with</c>. Saved in every
/// checkpoint, so a resumed run continues with exactly these values.
/// </summary>
public sealed record TrainOptions
{
    /// <summary>Optimizer steps in the whole run (the cosine schedule ends here).</summary>
    public long Steps { get; init; } = 1000;
    /// <summary>Sequences per micro-batch (B).</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Tokens per sequence (T); at most the model's context length.</summary>
    public int SequenceLength { get; init; } = 256;
    /// <summary>Micro-batches summed into one optimizer step; tokens per step = accumulation·B·T.</summary>
    public int GradAccumulation { get; init; } = 1;
    /// <summary>Peak learning rate, reached at the end of warmup.</summary>
    public float LearningRate { get; init; } = 3e-3f;
    /// <summary>Learning rate at the end of the cosine decay.</summary>
    public float MinLearningRate { get; init; } = 3e-4f;
    /// <summary>Steps of linear warmup (step 0 runs at LearningRate / WarmupSteps).</summary>
    public long WarmupSteps { get; init; } = 100;
    /// <summary>Global gradient-norm limit; 0 disables clipping.</summary>
    public float ClipNorm { get; init; } = 1f;
    /// <summary>AdamW decoupled weight decay for linear maps (never for norms or the embedding).</summary>
    public float WeightDecay { get; init; } = 0.1f;
    /// <summary>AdamW β₁.</summary>
    public float Beta1 { get; init; } = 0.9f;
    /// <summary>AdamW β₂.</summary>
    public float Beta2 { get; init; } = 0.95f;
    /// <summary>AdamW ε.</summary>
    public float AdamEpsilon { get; init; } = 1e-8f;
    /// <summary>Evaluate every this many steps (and after the last); 0 = only after the last.</summary>
    public long EvalEvery { get; init; } = 200;
    /// <summary>Validation batches per evaluation (fewer when the split is smaller).</summary>
    public int EvalBatches { get; init; } = 20;
    /// <summary>Save a checkpoint every this many steps (and after the last); 0 = only after the last.</summary>
    public long CheckpointEvery { get; init; } = 500;
    /// <summary>Complete checkpoints kept in the run folder; older ones are deleted after a newer one is complete.</summary>
    public int KeepCheckpoints { get; init; } = 2;
    /// <summary>Seeds the weights, the data order and the trainer's RNG.</summary>
    public ulong Seed { get; init; } = 1337;
    /// <summary>Visit training windows in a seeded random order each epoch (off = file order).</summary>
    public bool ShuffleData { get; init; } = true;
    /// <summary>
    /// Start every window at a document (one window per document, running on into the next ones)
    /// instead of cutting the stream into consecutive windows: prompt/completion data whose answers
    /// need their whole prompt in view (see <see cref="Tessera.Data.BatchReader"/>).
    /// </summary>
    public bool AlignDocuments { get; init; }
    /// <summary>
    /// Peak FLOP/s that MFU divides by; 0 (the default) means measured: <see cref="Kernels.GemmPeak.PeakFlops"/>
    /// of the shared pool's threads, probed once per process. Informational: no numerics depend on it.
    /// </summary>
    public double PeakFlops { get; init; }

    /// <summary>Tokens consumed by one optimizer step.</summary>
    public long TokensPerStep => (long)GradAccumulation * BatchSize * SequenceLength;

    /// <summary>Throws one clear <see cref="ArgumentException"/> for the first impossible setting.</summary>
    public TrainOptions Validate()
    {
        void Require(bool ok, string message) { if (!ok) throw new ArgumentException($"Invalid training options: {message}."); }
        Require(Steps >= 1, $"steps ({Steps}) must be at least 1");
        Require(BatchSize >= 1, $"batch size ({BatchSize}) must be at least 1");
        Require(SequenceLength >= 1, $"sequence length ({SequenceLength}) must be at least 1");
        Require(GradAccumulation >= 1, $"gradient accumulation ({GradAccumulation}) must be at least 1");
        Require(LearningRate > 0 && float.IsFinite(LearningRate), $"learning rate ({LearningRate}) must be positive");
        Require(MinLearningRate >= 0 && MinLearningRate <= LearningRate, $"min learning rate ({MinLearningRate}) must be in [0, learning rate {LearningRate}]");
        Require(WarmupSteps >= 0, $"warmup steps ({WarmupSteps}) must be ≥ 0");
        Require(ClipNorm >= 0, $"clip norm ({ClipNorm}) must be ≥ 0");
        Require(WeightDecay >= 0, $"weight decay ({WeightDecay}) must be ≥ 0");
        Require(Beta1 is >= 0 and < 1 && Beta2 is >= 0 and < 1, $"betas ({Beta1}, {Beta2}) must be in [0, 1)");
        Require(AdamEpsilon > 0, $"AdamW epsilon ({AdamEpsilon}) must be positive");
        Require(EvalEvery >= 0 && EvalBatches >= 1, $"eval every ({EvalEvery}) must be ≥ 0 and eval batches ({EvalBatches}) ≥ 1");
        Require(CheckpointEvery >= 0 && KeepCheckpoints >= 1, $"checkpoint every ({CheckpointEvery}) must be ≥ 0 and keep ({KeepCheckpoints}) ≥ 1");
        Require(PeakFlops >= 0 && double.IsFinite(PeakFlops), $"peak FLOP/s ({PeakFlops}) must be positive, or 0 to measure it");
        return this;
    }
}
