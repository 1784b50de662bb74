using Tessera.Kernels;

namespace Tessera.Tensors;

/// <summary>
/// Precomputed rotary-embedding cos/sin tables, (maxPositions, headDim/2) each, in the
/// rotate-half convention of Hugging Face Llama/Mixtral. Built once per model (or once per base,
/// where layers differ: Gemma 3's local and global layers) and shared by the layers that use it.
/// </summary>
public sealed class RopeTable
{
    /// <summary>
    /// Builds tables for positions [0, <paramref name="maxPositions"/>) with base <paramref name="theta"/>
    /// and an optional context-extension <paramref name="scaling"/> of the frequencies.
    /// </summary>
    public RopeTable(int maxPositions, int headDim, float theta = 10000f, RopeScaling? scaling = null)
    {
        RopeChecks.HeadDim(headDim);
        if (maxPositions < 0) throw new ArgumentOutOfRangeException(nameof(maxPositions), maxPositions, "RopeTable: positions must be non-negative.");
        MaxPositions = maxPositions;
        HeadDim = headDim;
        Theta = theta;
        Scaling = scaling;
        var invFreq = new double[headDim / 2];
        if (scaling is null) Rope.InverseFrequencies(headDim, theta, invFreq);
        else Rope.InverseFrequencies(headDim, theta, invFreq, scaling.Kind, scaling.Factor, scaling.LowFreqFactor, scaling.HighFreqFactor, scaling.OriginalMaxPositions);
        Cos = new float[maxPositions * headDim / 2];
        Sin = new float[maxPositions * headDim / 2];
        Rope.BuildTables(maxPositions, invFreq, Cos, Sin);
    }

    /// <summary>Number of positions covered.</summary>
    public int MaxPositions { get; }

    /// <summary>Head dimension the tables were built for.</summary>
    public int HeadDim { get; }

    /// <summary>RoPE base.</summary>
    public float Theta { get; }

    /// <summary>The frequency scaling, or null for none.</summary>
    public RopeScaling? Scaling { get; }

    /// <summary>cos(pos·f_i), (maxPositions, headDim/2), f_i = θ^(−2i/D) after scaling.</summary>
    public float[] Cos { get; }

    /// <summary>sin(pos·f_i), (maxPositions, headDim/2).</summary>
    public float[] Sin { get; }
}

/// <summary>
/// RoPE frequency scaling as HF config.json's <c>rope_scaling</c> spells it: <paramref name="Type"/>
/// "linear" (every frequency divided by <paramref name="Factor"/>) or "llama3" (Llama 3.1's remap of
/// low frequencies, with <paramref name="LowFreqFactor"/>, <paramref name="HighFreqFactor"/> and
/// <paramref name="OriginalMaxPositions"/> = original_max_position_embeddings).
/// </summary>
public sealed record RopeScaling(string Type, float Factor, float LowFreqFactor = 1, float HighFreqFactor = 4, int OriginalMaxPositions = 8192)
{
    /// <summary>The kernel's name for <see cref="Type"/>; throws naming the accepted values for any other.</summary>
    public RopeScalingKind Kind => Type.ToLowerInvariant() switch
    {
        "linear" => RopeScalingKind.Linear,
        "llama3" => RopeScalingKind.Llama3,
        _ => throw new ArgumentException($"RopeScaling: rope_scaling type '{Type}' is not supported; expected \"linear\" or \"llama3\"."),
    };
}
