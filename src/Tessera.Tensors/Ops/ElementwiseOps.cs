using System.Numerics.Tensors;

namespace Tessera.Tensors;

/// <summary>Elementwise arithmetic (same-shape operands, no broadcasting) and reductions to a scalar.</summary>
public sealed partial class Graph
{
    /// <summary>y = a + b (same shape), e.g. a residual add.</summary>
    public Tensor Add(Tensor a, Tensor b)
    {
        const string op = "Add";
        SameShape(op, a, b);
        var y = NewOutput(op, a.Shape, false, a, b);
        ParallelSpans.Add(a.AsSpan(op), b.AsSpan(op), y.AsSpan(op));
        Record(op, y, [a, b], () =>
        {
            var dy = y.Grad!.AsSpan(op);
            if (a.RequiresGrad) AddInto(a, dy);
            if (b.RequiresGrad) AddInto(b, dy);
        });
        return y;
    }

    /// <summary>y = a ⊙ b (same shape).</summary>
    public Tensor Mul(Tensor a, Tensor b)
    {
        const string op = "Mul";
        SameShape(op, a, b);
        var y = NewOutput(op, a.Shape, false, a, b);
        TensorPrimitives.Multiply(a.AsSpan(op), b.AsSpan(op), y.AsSpan(op));
        Record(op, y, [a, b], () =>
        {
            var dy = y.Grad!.AsSpan(op);
            if (a.RequiresGrad) { var g = GradSpan(a); TensorPrimitives.FusedMultiplyAdd(dy, b.AsSpan(op), g, g); }
            if (b.RequiresGrad) { var g = GradSpan(b); TensorPrimitives.FusedMultiplyAdd(dy, a.AsSpan(op), g, g); }
        });
        return y;
    }

    /// <summary>y = s·x.</summary>
    public Tensor Scale(Tensor x, float s)
    {
        const string op = "Scale";
        Usable(op, x);
        var y = NewOutput(op, x.Shape, false, x);
        TensorPrimitives.Multiply(x.AsSpan(op), s, y.AsSpan(op));
        Record(op, y, [x], () =>
        {
            var g = GradSpan(x);
            TensorPrimitives.MultiplyAdd(y.Grad!.AsSpan(op), s, g, g);
        });
        return y;
    }

    /// <summary>Sum of all elements, a rank-0 tensor (accumulated in double).</summary>
    public Tensor Sum(Tensor x) => Reduce("Sum", x, 1.0);

    /// <summary>Mean of all elements, a rank-0 tensor (accumulated in double).</summary>
    public Tensor Mean(Tensor x) => Reduce("Mean", x, x.Length == 0 ? 0 : 1.0 / x.Length);

    Tensor Reduce(string op, Tensor x, double factor)
    {
        Usable(op, x);
        var y = NewOutput(op, [], false, x);
        var xs = x.AsSpan(op);
        double acc = 0;
        for (int i = 0; i < xs.Length; i++) acc += xs[i];
        y.AsSpan(op)[0] = (float)(acc * factor);
        Record(op, y, [x], () =>
        {
            var g = GradSpan(x);
            TensorPrimitives.Add(g, (float)(y.Grad!.AsSpan(op)[0] * factor), g);
        });
        return y;
    }

    void SameShape(string op, Tensor a, Tensor b)
    {
        Usable(op, a, b);
        if (!a.Shape.SequenceEqual(b.Shape))
            throw new ArgumentException($"{op}: shapes differ: {Describe(a)} vs {Describe(b)}.");
    }

    /// <summary>t.Grad += d; a first gradient is a copy (no zero-fill and add).</summary>
    static void AddInto(Tensor t, ReadOnlySpan<float> d)
    {
        var g = GradTarget(t, out bool accumulate);
        if (accumulate) ParallelSpans.Add(g, d, g);
        else ParallelSpans.Copy(d, g);
    }
}
