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
}
