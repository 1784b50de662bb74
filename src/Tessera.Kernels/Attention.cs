using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>Causal attention forward/backward. Same contract as <see cref="ScalarAttention"/>.</summary>
public static class Attention
{
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        int batch, int heads, int kvHeads, int seq, int headDim, float scale, int window = 0)
        => ScalarAttention.Forward(q, k, v, o, lse, batch, heads, kvHeads, seq, headDim, scale, window);
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> o, ReadOnlySpan<float> lse, ReadOnlySpan<float> dO,
        Span<float> dq, Span<float> dk, Span<float> dv, int batch, int heads, int kvHeads, int seq, int headDim, float scale, int window = 0)
        => ScalarAttention.Backward(q, k, v, o, lse, dO, dq, dk, dv, batch, heads, kvHeads, seq, headDim, scale, window);
}
