namespace Tessera.Tensors;

/// <summary>Pointwise activations: SiLU, GELU (tanh approximation), the fused SwiGLU and GeGLU gates, soft-capping.</summary>
public sealed partial class Graph
{
    /// <summary>y = x·σ(x).</summary>
    public Tensor Silu(Tensor x) => Unary("Silu", x, Kernels.Activations.Silu, Kernels.Activations.SiluBackward);

    /// <summary>GELU, tanh approximation (GPT-2; torch approximate="tanh").</summary>
    public Tensor Gelu(Tensor x) => Unary("Gelu", x, Kernels.Activations.Gelu, Kernels.Activations.GeluBackward);

    /// <summary>y = silu(gate) ⊙ up (same shapes): the SwiGLU expert/MLP nonlinearity.</summary>
    public Tensor SwiGlu(Tensor gate, Tensor up) => Gated("SwiGlu", gate, up, Kernels.Activations.SwiGlu, Kernels.Activations.SwiGluBackward);

    /// <summary>y = gelu_tanh(gate) ⊙ up (same shapes): Gemma's GeGLU (HF <c>gelu_pytorch_tanh</c>).</summary>
    public Tensor GeGlu(Tensor gate, Tensor up) => Gated("GeGlu", gate, up, Kernels.Activations.GeGlu, Kernels.Activations.GeGluBackward);

    /// <summary>
    /// y = cap·tanh(x / cap) (Gemma 2's final-logit soft-cap); <paramref name="cap"/> ≤ 0 means no cap
    /// and returns <paramref name="x"/> itself. The backward works from the output: dx = dy·(1 − (y/cap)²).
    /// </summary>
    public Tensor SoftCap(Tensor x, float cap)
    {
        const string op = "SoftCap";
        Usable(op, x);
        if (cap <= 0) return x;
        var y = NewOutput(op, x.Shape, false, x);
        Kernels.Activations.SoftCap(x.AsSpan(op), y.AsSpan(op), cap);
        Record(op, y, [x], () =>
        {
            var dx = BeginGrad(x, out bool scratch);
            Kernels.Activations.SoftCapBackward(y.AsSpan(op), y.Grad!.AsSpan(op), dx.AsSpan(op), cap);
            EndGrad(x, dx, scratch);
        });
        return y;
    }

    delegate void ForwardGate(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y);
    delegate void BackwardGate(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> dy, Span<float> dGate, Span<float> dUp);

    Tensor Gated(string op, Tensor gate, Tensor up, ForwardGate forward, BackwardGate backward)
    {
        SameShape(op, gate, up);
        var y = NewOutput(op, gate.Shape, false, gate, up);
        forward(gate.AsSpan(op), up.AsSpan(op), y.AsSpan(op));
        Record(op, y, [gate, up], () =>
        {
            var dg = BeginGrad(gate, out bool sg);
            var du = BeginGrad(up, out bool su);
            backward(gate.AsSpan(op), up.AsSpan(op), y.Grad!.AsSpan(op), dg.AsSpan(op), du.AsSpan(op));
            EndGrad(gate, dg, sg);
            EndGrad(up, du, su);
        });
        return y;
    }

    delegate void Forward1(ReadOnlySpan<float> x, Span<float> y);
    delegate void Backward1(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx);

    Tensor Unary(string op, Tensor x, Forward1 forward, Backward1 backward)
    {
        Usable(op, x);
        var y = NewOutput(op, x.Shape, false, x);
        forward(x.AsSpan(op), y.AsSpan(op));
        Record(op, y, [x], () =>
        {
            var dx = BeginGrad(x, out bool scratch);
            backward(x.AsSpan(op), y.Grad!.AsSpan(op), dx.AsSpan(op));
            EndGrad(x, dx, scratch);
        });
        return y;
    }
}
