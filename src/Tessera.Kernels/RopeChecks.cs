namespace Tessera.Kernels;

/// <summary>Input checks shared by the RoPE kernel and its scalar twin.</summary>
public static class RopeChecks
{
    /// <summary>RoPE rotates pairs, so the head dimension must be even and positive.</summary>
    public static void HeadDim(int headDim)
    {
        if (headDim <= 0 || headDim % 2 != 0)
            throw new ArgumentException($"Rope: head dimension must be even and positive, got {headDim}.");
    }

    /// <summary>A positive finite base and, for a scaling, parameters its formula can use.</summary>
    public static void Scaling(RopeScalingKind kind, double theta, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions)
    {
        if (!(theta > 0) || double.IsInfinity(theta))
            throw new ArgumentException($"Rope: the base theta must be positive and finite, got {theta}.");
        if (kind == RopeScalingKind.None) return;
        if (!(factor > 0) || double.IsInfinity(factor))
            throw new ArgumentException($"Rope: {kind} scaling needs a positive finite factor, got {factor}.");
        if (kind == RopeScalingKind.Llama3 && (!(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor) || originalMaxPositions <= 0))
            throw new ArgumentException(
                $"Rope: llama3 scaling needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0, got {lowFreqFactor}, {highFreqFactor}, {originalMaxPositions}.");
        if (kind is not (RopeScalingKind.Linear or RopeScalingKind.Llama3))
            throw new ArgumentException($"Rope: unknown scaling kind {(int)kind}.");
    }
}

/// <summary>How RoPE's inverse frequencies are remapped for a longer context (HF <c>rope_scaling.rope_type</c>).</summary>
public enum RopeScalingKind
{
    /// <summary>θ^(−2i/D) unchanged.</summary>
    None,
    /// <summary>Every frequency divided by the factor ("linear": positions interpolated).</summary>
    Linear,
    /// <summary>Llama 3.1's remap: low frequencies divided by the factor, high kept, a smooth blend between.</summary>
    Llama3,
}
