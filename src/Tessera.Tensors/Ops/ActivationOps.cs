namespace Tessera.Tensors;

/// <summary>Pointwise activations: SiLU, GELU (tanh approximation) and the fused SwiGLU gate.</summary>
public sealed partial class Graph
{
    /// <summary>y = x·σ(x).</summary>
    public Tensor Silu(Tensor x) => Unary("Silu", x, Kernels.Activations.Silu, Kernels.Activations.SiluBackward);

    /// <summary>GELU, tanh approximation (GPT-2; torch approximate="tanh").</summary>
    public Tensor Gelu(Tensor x) => Unary("Gelu", x, Kernels.Activations.Gelu, Kernels.Activations.GeluBackward);

    /// <summary>y = silu(gate) ⊙ up (same shapes): the SwiGLU expert/MLP nonlinearity.</summary>
    public Tensor SwiGlu(Tensor gate, Tensor up)
    {
        const string op = "SwiGlu";
        SameShape(op, gate, up);
        var y = NewOutput(op, gate.Shape, false, gate, up);
        Kernels.Activations.SwiGlu(gate.AsSpan(op), up.AsSpan(op), y.AsSpan(op));
        Record(op, y, [gate, up], () =>
        {
            var dg = BeginGrad(gate, out bool sg);
            var du = BeginGrad(up, out bool su);
            Kernels.Activations.SwiGluBackward(gate.AsSpan(op), up.AsSpan(op), y.Grad!.AsSpan(op), dg.AsSpan(op), du.AsSpan(op));
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
