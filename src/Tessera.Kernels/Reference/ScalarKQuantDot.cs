namespace Tessera.Kernels.Reference;

/// <summary>
/// Scalar twin of <see cref="KQuantDot"/>: the row dequantized by <see cref="ScalarKQuant.Dequantize"/>,
/// dotted with x in the vector kernel's order (16 lane chains of FMAs over K, lane j taking the
/// weights j, j + 16, …), then the lanes added as <see cref="LaneSums.Sum4"/> adds them (halves, then
/// quarters, then (q0 + q1) + (q2 + q3)), so the two agree bit for bit.
/// </summary>
public static class ScalarKQuantDot
{
    /// <summary>Σₚ x[p]·w[p] for one row of <paramref name="type"/> super-blocks (x.Length = 256 × their count).</summary>
    public static float Row(KQuantType type, ReadOnlySpan<byte> blocks, ReadOnlySpan<float> x)
    {
        var w = new float[x.Length];
        ScalarKQuant.Dequantize(type, blocks, w);
        Span<float> lane = stackalloc float[16];
        lane.Clear();
        for (int p = 0; p < x.Length; p++) lane[p % 16] = MathF.FusedMultiplyAdd(x[p], w[p], lane[p % 16]);
        Span<float> h = stackalloc float[8];
        for (int i = 0; i < 8; i++) h[i] = lane[i] + lane[i + 8];
        Span<float> q = stackalloc float[4];
        for (int i = 0; i < 4; i++) q[i] = h[i] + h[i + 4];
        return (q[0] + q[1]) + (q[2] + q[3]);
    }
}
