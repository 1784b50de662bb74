using Tessera.Tensors;

namespace Tessera.Model;

/// <summary>The feed-forward half of a block: a dense SwiGLU MLP or a mixture of experts.</summary>
public interface IFeedForward
{
    /// <summary>x (N, D) → (N, D). Mixtures add their router losses and load statistics to <paramref name="stats"/>.</summary>
    Tensor Forward(Graph g, Tensor x, RouterStats stats);
}

/// <summary>Dense SwiGLU MLP (Llama): down(silu(gate(x)) ⊙ up(x)).</summary>
public sealed class Mlp : IFeedForward
{
    readonly Tensor gateProj, upProj, downProj;

    /// <summary>Registers <c>{prefix}mlp.{gate,up,down}_proj.weight</c>.</summary>
    public Mlp(ModelConfig c, ModelParameters p, string prefix)
    {
        gateProj = p.Add(prefix + "mlp.gate_proj.weight", ParameterKind.Linear, c.HiddenDim, c.Dim);
        upProj = p.Add(prefix + "mlp.up_proj.weight", ParameterKind.Linear, c.HiddenDim, c.Dim);
        downProj = p.Add(prefix + "mlp.down_proj.weight", ParameterKind.ResidualOutput, c.Dim, c.HiddenDim);
    }

    /// <inheritdoc/>
    public Tensor Forward(Graph g, Tensor x, RouterStats stats)
    {
        var h = g.SwiGlu(g.Linear(x, gateProj), g.Linear(x, upProj));  // (N, F)
        return g.Linear(h, downProj);                                   // (N, D)
    }
}
