using Tessera.Model.Architectures;
using Tessera.Model.Modules;
using Tessera.Tensors;

namespace Tessera.Model;

/// <summary>The feed-forward half of a block: a dense GLU MLP or a mixture of experts.</summary>
public interface IFeedForward
{
    /// <summary>x (N, D) → (N, D). Mixtures add their router losses and load statistics to <paramref name="stats"/>.</summary>
    Tensor Forward(Graph g, Tensor x, RouterStats stats);
}

/// <summary>Dense gated MLP: down(act(gate·x) ⊙ up·x), act = silu (SwiGLU) or tanh-GELU (GeGLU).</summary>
public sealed class Mlp : IFeedForward
{
    readonly Tensor gateProj, upProj, downProj;
    readonly GluActivation activation;

    /// <summary>Registers layer <paramref name="layer"/>'s gate, up and down projections.</summary>
    public Mlp(ModelRecipe recipe, ModelParameters p, int layer)
    {
        var c = recipe.Config;
        var n = recipe.Names;
        activation = c.Activation;
        gateProj = p.Add(n.Hf(TensorRole.Gate, layer), ParameterKind.Linear, c.HiddenDim, c.Dim);
        upProj = p.Add(n.Hf(TensorRole.Up, layer), ParameterKind.Linear, c.HiddenDim, c.Dim);
        downProj = p.Add(n.Hf(TensorRole.Down, layer), ParameterKind.ResidualOutput, c.Dim, c.HiddenDim);
    }

    /// <inheritdoc/>
    public Tensor Forward(Graph g, Tensor x, RouterStats stats) => Glu(g, x, gateProj, upProj, downProj, activation);

    /// <summary>The GLU with <paramref name="modules"/>' LoRA adapters on layer <paramref name="layer"/>'s gate/up/down projections.</summary>
    public Tensor Forward(Graph g, Tensor x, ModuleSet modules, int layer)
    {
        var a = modules.Linear(g, x, gateProj, layer, "gate_proj"); var u = modules.Linear(g, x, upProj, layer, "up_proj");   // (N, F) each
        var h = activation == GluActivation.GeluTanh ? g.GeGlu(a, u) : g.SwiGlu(a, u);   // (N, F)
        return modules.Linear(g, h, downProj, layer, "down_proj");              // (N, D)
    }

    /// <summary>down(act(gate·x) ⊙ up·x) for x (N, D) → (N, D); the one GLU of dense layers and experts.</summary>
    public static Tensor Glu(Graph g, Tensor x, Tensor gate, Tensor up, Tensor down, GluActivation activation)
    {
        var a = g.Linear(x, gate); var u = g.Linear(x, up);                    // (N, F) each
        var h = activation == GluActivation.GeluTanh ? g.GeGlu(a, u) : g.SwiGlu(a, u);   // (N, F)
        return g.Linear(h, down);                                               // (N, D)
    }
}
