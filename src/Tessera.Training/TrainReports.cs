using Tessera.Model;

namespace Tessera.Training;

/// <summary>
/// One optimizer step. <see cref="Loss"/> is the language-model cross-entropy (nats/token, mean
/// over the step's micro-batches); <see cref="TotalLoss"/> adds the router losses (what was optimized).
/// <see cref="GradNorm"/> is the global norm before clipping. Throughput figures cover this step;
/// <see cref="Eta"/> extrapolates the mean step time of this session; <see cref="Mfu"/> is
/// achieved FLOP/s (ModelConfig.TrainingFlopsPerToken × tokens/s) over TrainOptions.PeakFlops.
/// <see cref="ExpertLoads"/> sums the step's micro-batches per MoE layer.
/// </summary>
public sealed record StepReport(long Step, long Steps, double Loss, double TotalLoss, float LearningRate, double GradNorm,
    long TokensSeen, double StepSeconds, double TokensPerSecond, TimeSpan Elapsed, TimeSpan Eta, double Mfu,
    IReadOnlyList<ExpertLoad> ExpertLoads)
{
    /// <summary>Assignments dropped by expert capacity this step, over all layers.</summary>
    public int DroppedAssignments
    {
        get { int d = 0; foreach (var l in ExpertLoads) d += l.Dropped; return d; }
    }
}

/// <summary>
/// A validation pass after <see cref="Step"/> steps: mean cross-entropy over <see cref="Tokens"/>
/// target tokens and bits per byte = loss / ln 2 × (split tokens / split bytes) (NaN without a byte count).
/// </summary>
public sealed record EvalReport(long Step, double Loss, double BitsPerByte, long Tokens, IReadOnlyList<ExpertLoad> ExpertLoads)
{
    /// <summary>exp(loss).</summary>
    public double Perplexity => Math.Exp(Loss);

    /// <summary>
    /// Bits per byte from a mean loss in nats per token, the token count of the evaluated split and its byte count.
    /// </summary>
    public static double BitsPerByteOf(double lossNatsPerToken, long splitTokens, long splitBytes)
        => splitBytes <= 0 ? double.NaN : lossNatsPerToken * splitTokens / (Math.Log(2) * splitBytes);
}
