using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Training;

/// <summary>
/// The student's training loss as a <see cref="Trainer.Objective"/>:
/// α·T²·KL(teacher_T ‖ student_T) + (1 − α)·CE, plus the student's own router terms (load balance,
/// z-loss) at their usual weights when it is an MoE. The teacher's top-k logits for each batch row
/// come from a <see cref="DistillCache"/> by the row's window id; the teacher never runs here.
/// </summary>
public sealed class DistillObjective
{
    readonly DistillCache cache;
    readonly DistillOptions options;
    readonly ModelConfig student;
    int[] ids = [];
    float[] values = [];
    float[] tails = [];

    /// <summary>
    /// Uses <paramref name="cache"/> (not owned) with the weights of <paramref name="options"/>;
    /// <paramref name="student"/> gives the router-loss coefficients and is checked against the cache.
    /// </summary>
    public DistillObjective(DistillCache cache, DistillOptions options, ModelConfig student)
    {
        this.cache = cache;
        this.student = student;
        if (student.VocabSize != cache.VocabSize)
            throw new ArgumentException($"Distillation: the student's vocabulary ({student.VocabSize}) differs from the teacher's ({cache.VocabSize}); both must use the same tokenizer.");
        this.options = options.Validate();
        if (options.TopK != cache.TopK)
            throw new ArgumentException($"Distillation: the cache holds top-{cache.TopK} logits, the options ask for top-{options.TopK}.");
        if (options.Temperature != cache.Temperature)
            throw new ArgumentException($"Distillation: the cache was built at temperature {cache.Temperature}, the options ask for {options.Temperature}.");
    }

    /// <summary>What a checkpoint records to rebuild this objective on resume.</summary>
    public DistillReference Reference => new(Path.GetFullPath(cache.Path), options);

    /// <summary>The distillation term (T²·KL, nats) of the latest micro-batch.</summary>
    public double LastKL { get; private set; }

    /// <summary>Builds the loss for one micro-batch; pass as <c>trainer.Objective = objective.Loss</c>.</summary>
    public Tensor Loss(Graph g, ModelOutput output, TrainBatch batch)
    {
        int b = batch.BatchSize, t = batch.SequenceLength, k = cache.TopK;
        if (t != cache.SequenceLength)
            throw new InvalidOperationException($"Distillation: the student reads windows of {t} tokens, the cache was built for {cache.SequenceLength}.");
        int vocab = output.Logits.Dim(1);
        if (vocab != cache.VocabSize)
            throw new InvalidOperationException($"Distillation: the student's vocabulary ({vocab}) differs from the teacher's ({cache.VocabSize}).");
        if (ids.Length != b * t * k) { ids = new int[b * t * k]; values = new float[ids.Length]; tails = new float[b * t]; }
        cache.Read(batch.Windows.AsSpan(0, b), ids, values, tails);
        var kl = g.DistillationKL(output.Logits, ids, values, k, options.Temperature, options.TailBin ? tails : default);   // (B·T, V) → scalar
        LastKL = kl.Item();
        float a = options.Alpha;
        var loss = g.Add(g.Scale(kl, a), g.Scale(output.CrossEntropy!, 1 - a));
        if (output.LoadBalance is { } balance) loss = g.Add(loss, g.Scale(balance, student.LoadBalanceCoef));
        if (output.RouterZ is { } z) loss = g.Add(loss, g.Scale(z, student.RouterZLossCoef));
        return loss;
    }
}
