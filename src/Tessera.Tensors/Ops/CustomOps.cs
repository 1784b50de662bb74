namespace Tessera.Tensors;

/// <summary>The backward of a <see cref="Graph.Custom"/> op: read dy, add into the inputs' gradients.</summary>
public delegate void CustomBackward(ReadOnlySpan<float> dy, GradientOf dx);

/// <summary>The gradient buffer of input <paramref name="input"/> (zeroed on first use; empty when it needs none).</summary>
public delegate Span<float> GradientOf(int input);

/// <summary>
/// Ops defined outside this project: communication that must sit inside the tape, such as the
/// expert-parallel all-to-all of Tessera.Distributed, whose backward is the reverse exchange.
/// </summary>
public sealed partial class Graph
{
    /// <summary>
    /// An op with output shape <paramref name="shape"/>: <paramref name="forward"/> fills the output
    /// from <paramref name="inputs"/>; on backward, <paramref name="backward"/> gets the output's
    /// gradient and adds into the inputs' gradients. The output requires grad when any input does.
    /// </summary>
    public Tensor Custom(string op, ReadOnlySpan<int> shape, Tensor[] inputs, Action<Span<float>> forward, CustomBackward backward)
    {
        Usable(op, inputs);
        var y = NewOutput(op, shape, false, inputs);
        forward(y.AsSpan(op));
        Record(op, y, inputs, () => backward(y.Grad!.AsSpan(op), i => inputs[i].RequiresGrad ? GradSpan(inputs[i]) : Span<float>.Empty));
        return y;
    }

    /// <summary>
    /// The gradient buffer of a leaf <paramref name="t"/>, allocated (zeroed) when it has none: for
    /// code that combines gradients computed elsewhere (e.g. per-source expert copies) into it.
    /// </summary>
    public static Span<float> LeafGradient(Tensor t) => GradSpan(t);
}

/// <summary>
/// Runs the experts of one MoE layer somewhere else (expert parallelism). Given the layer's input
/// x (N, D) and, per expert, the token rows it keeps (after the capacity limit, token order),
/// returns per expert the (Mₑ, D) outputs in the same row order, as graph tensors. The router,
/// gates and combine stay with the caller, so routing and the load-balancing loss are unchanged.
/// </summary>
public interface IExpertRunner
{
    /// <summary>Expert outputs of MoE layer <paramref name="layer"/>; w1/w3/w2 are that layer's expert weights.</summary>
    Tensor[] Run(Graph g, int layer, Tensor x, int[][] keptRows, Tensor[] w1, Tensor[] w3, Tensor[] w2);
}

public sealed partial class Graph
{
    /// <summary>Where MoE layers run their experts (null: locally, every expert in this process).</summary>
    public IExpertRunner? Experts { get; set; }
}
