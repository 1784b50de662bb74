namespace Tessera.Tensors;

/// <summary>
/// Precomputed rotary-embedding cos/sin tables, (maxPositions, headDim/2) each, in the
/// rotate-half convention of Hugging Face Llama/Mixtral. Built once per model and shared by every layer.
/// </summary>
public sealed class RopeTable
{
    /// <summary>Builds tables for positions [0, <paramref name="maxPositions"/>) with base <paramref name="theta"/>.</summary>
    public RopeTable(int maxPositions, int headDim, float theta = 10000f)
    {
        Kernels.RopeChecks.HeadDim(headDim);
        if (maxPositions < 0) throw new ArgumentOutOfRangeException(nameof(maxPositions), maxPositions, "RopeTable: positions must be non-negative.");
        MaxPositions = maxPositions;
        HeadDim = headDim;
        Theta = theta;
        Cos = new float[maxPositions * headDim / 2];
        Sin = new float[maxPositions * headDim / 2];
        Kernels.Rope.BuildTables(maxPositions, headDim, theta, Cos, Sin);
    }

    /// <summary>Number of positions covered.</summary>
    public int MaxPositions { get; }

    /// <summary>Head dimension the tables were built for.</summary>
    public int HeadDim { get; }

    /// <summary>RoPE base.</summary>
    public float Theta { get; }

    /// <summary>cos(pos·θ^(−2i/D)), (maxPositions, headDim/2).</summary>
    public float[] Cos { get; }

    /// <summary>sin(pos·θ^(−2i/D)), (maxPositions, headDim/2).</summary>
    public float[] Sin { get; }
}
