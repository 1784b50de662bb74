using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>Rotary position embedding (rotate-half convention). Same contract as <see cref="ScalarRope"/>.</summary>
public static class Rope
{
    public static void BuildTables(int maxPositions, int headDim, float theta, Span<float> cos, Span<float> sin)
        => ScalarRope.BuildTables(maxPositions, headDim, theta, cos, sin);
    public static void Apply(Span<float> x, int batch, int seq, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int positionOffset = 0, bool inverse = false)
        => ScalarRope.Apply(x, batch, seq, heads, headDim, cos, sin, positionOffset, inverse);
}
