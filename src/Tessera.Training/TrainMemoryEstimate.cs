using System.Globalization;
using Tessera.Model;

namespace Tessera.Training;

/// <summary>
/// The memory a training run of a model needs, estimated before anything is allocated, so a
/// preset that cannot fit is refused with the figure instead of failing (or swapping) mid-step:
/// parameters, their gradients and the two AdamW moments (fp32 each), and the activations the
/// autograd tape keeps for one B×T step (every saved op output and, during backward, its
/// gradient), with the (B·T, V) logits, their gradient and the softmax of the loss.
/// </summary>
/// <param name="ParameterBytes">fp32 parameters.</param>
/// <param name="GradientBytes">fp32 parameter gradients.</param>
/// <param name="OptimizerBytes">AdamW first and second moments.</param>
/// <param name="ActivationBytes">Tape outputs and their gradients for one step.</param>
public sealed record TrainMemoryEstimate(long ParameterBytes, long GradientBytes, long OptimizerBytes, long ActivationBytes)
{
    /// <summary>Sum of the parts.</summary>
    public long TotalBytes => ParameterBytes + GradientBytes + OptimizerBytes + ActivationBytes;

    /// <summary>The estimate for training <paramref name="config"/> on batches of <paramref name="batch"/> × <paramref name="seq"/> tokens.</summary>
    public static TrainMemoryEstimate For(ModelConfig config, int batch, int seq)
    {
        if (batch < 1 || seq < 1) throw new ArgumentException($"TrainMemoryEstimate: batch ({batch}) and sequence length ({seq}) must be ≥ 1.");
        long p = config.ParameterCount;
        long d = config.Dim, q = (long)config.Heads * config.HeadDim, kv = (long)config.KvHeads * config.HeadDim, h = config.HiddenDim;
        // Floats the tape keeps per token and layer. Attention: norm, q/k/v projections, their
        // head layouts, the output and its merged layout, o-projection, residual; log-sum-exp per head.
        long attention = 3 * d + 3 * q + 3 * kv + q + config.Heads;
        // MLP: norm, gate and up projections, the gated product, down projection, residual; MoE runs
        // top-k experts per token on gathered rows, plus the router's logits, probabilities and weights.
        long mlp = config.IsMoe
            ? 2 * d + config.TopK * (3 * h + 2 * d) + 3L * config.Experts
            : 2 * d + 3 * h + d;
        long perToken = config.Layers * (attention + mlp) + 2 * d;             // + embedding and final norm
        long tokens = (long)batch * seq;
        long activations = 2 * 4 * tokens * perToken                           // outputs and their gradients
            + 3 * 4 * tokens * config.VocabSize;                               // logits, their gradient, softmax
        return new TrainMemoryEstimate(4 * p, 4 * p, 8 * p, activations);
    }

    /// <summary>
    /// The memory this process may use: the GC's view of physical memory or the container limit,
    /// whichever is lower.
    /// </summary>
    public static long AvailableBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>
    /// Throws <see cref="InsufficientMemoryException"/>, naming <paramref name="what"/>, the estimate
    /// and its parts, when the estimate exceeds <paramref name="limitBytes"/>; call it before
    /// creating the model.
    /// </summary>
    public static TrainMemoryEstimate EnsureFits(ModelConfig config, int batch, int seq, long limitBytes, string what)
    {
        var e = For(config, batch, seq);
        if (e.TotalBytes > limitBytes)
            throw new InsufficientMemoryException(
                $"{what}: training needs about {Gb(e.TotalBytes)} GB at B×T = {batch}×{seq} (parameters {Gb(e.ParameterBytes)} + gradients {Gb(e.GradientBytes)} "
                + $"+ AdamW moments {Gb(e.OptimizerBytes)} + activations {Gb(e.ActivationBytes)} GB) but only {Gb(limitBytes)} GB are available; "
                + "use a smaller preset, batch or sequence length.");
        return e;
    }

    static string Gb(long bytes) => (bytes / 1e9).ToString("F2", CultureInfo.InvariantCulture);
}
