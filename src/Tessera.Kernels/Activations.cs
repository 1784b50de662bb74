using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>SiLU, GELU (tanh), SwiGLU forward/backward. Same contract as <see cref="ScalarActivations"/>.</summary>
public static class Activations
{
    public static void Silu(ReadOnlySpan<float> x, Span<float> y) => ScalarActivations.Silu(x, y);
    public static void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx) => ScalarActivations.SiluBackward(x, dy, dx);
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y) => ScalarActivations.Gelu(x, y);
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx) => ScalarActivations.GeluBackward(x, dy, dx);
    public static void SwiGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y) => ScalarActivations.SwiGlu(gate, up, y);
    public static void SwiGluBackward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> dy, Span<float> dGate, Span<float> dUp)
        => ScalarActivations.SwiGluBackward(gate, up, dy, dGate, dUp);
}
