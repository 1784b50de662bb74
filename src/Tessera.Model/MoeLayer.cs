using Tessera.Model.Architectures;
using Tessera.Tensors;

namespace Tessera.Model;

/// <summary>
/// Sparse mixture of GLU experts (Mixtral / Qwen3-MoE). A linear router scores the E experts,
/// p = softmax(scores); each token goes to its top-k experts with gates = the chosen p,
/// renormalised to sum to 1 when <see cref="ModelConfig.NormalizeTopK"/> and k &gt; 1 (for k = 1 the
/// raw p is kept, as in Switch, so the router still gets a gradient from the language-model loss). The output is Σ gate · expert(x) over the
/// token's experts.
/// <para>
/// Capacity: with <see cref="ModelConfig.CapacityFactor"/> c &gt; 0 each expert processes at most
/// ⌈c·N·k/E⌉ assignments per forward pass, the first ones in token order; the rest are dropped
/// (they add zero, so the residual carries the token through). c = 0 is dropless.
/// </para>
/// </summary>
public sealed class MoeLayer : IFeedForward
{
    readonly Tensor router;
    readonly Tensor[] w1, w3, w2;
    readonly int experts, topK, layer;
    readonly float capacityFactor;
    readonly bool normalize;
    readonly GluActivation activation;

    /// <summary>Registers layer <paramref name="layer"/>'s router and experts under the family's names.</summary>
    public MoeLayer(ModelRecipe recipe, ModelParameters p, int layer)
    {
        var c = recipe.Config;
        var n = recipe.Names;
        experts = c.Experts; topK = c.TopK; capacityFactor = c.CapacityFactor; this.layer = layer;
        normalize = c.NormalizeTopK; activation = c.Activation;
        router = p.Add(n.Hf(TensorRole.Router, layer), ParameterKind.Linear, experts, c.Dim);
        w1 = new Tensor[experts]; w3 = new Tensor[experts]; w2 = new Tensor[experts];
        for (int e = 0; e < experts; e++)
        {
            w1[e] = p.Add(n.Hf(TensorRole.ExpertGate, layer, e), ParameterKind.Linear, c.HiddenDim, c.Dim);
            w3[e] = p.Add(n.Hf(TensorRole.ExpertUp, layer, e), ParameterKind.Linear, c.HiddenDim, c.Dim);
            w2[e] = p.Add(n.Hf(TensorRole.ExpertDown, layer, e), ParameterKind.ResidualOutput, c.Dim, c.HiddenDim);
        }
    }

    /// <summary>Assignments one expert may keep for <paramref name="tokens"/> tokens; 0 = unlimited.</summary>
    public static int Capacity(float capacityFactor, int tokens, int topK, int experts)
        => capacityFactor <= 0 ? 0 : (int)Math.Ceiling((double)capacityFactor * tokens * topK / experts);

    /// <inheritdoc/>
    public Tensor Forward(Graph g, Tensor x, RouterStats stats)
    {
        int n = x.Dim(0);
        var logits = g.Linear(x, router);                                   // (N, E)
        var probs = g.Softmax(logits);                                      // (N, E)
        var top = g.TopK(probs, topK);                                      // N·k expert ids, best first
        var chosen = g.GatherColumns(probs, top, topK);                     // (N, k)
        var gates = topK == 1 || !normalize ? chosen : g.NormalizeRows(chosen); // (N, k), rows sum to 1 when normalised
        var plan = ExpertDispatch.Build(top, topK, experts);
        int capacity = Capacity(capacityFactor, n, topK, experts);
        var assigned = new int[experts]; var kept = new int[experts];
        var rows = new int[experts][];
        for (int e = 0; e < experts; e++)
        {
            assigned[e] = plan.Rows[e].Length;
            kept[e] = capacity == 0 ? assigned[e] : Math.Min(assigned[e], capacity);
            rows[e] = plan.Rows[e][..kept[e]];                              // token order: the first ones win
        }
        // Expert parallelism (Tessera.Distributed) runs the experts on their owner ranks; the
        // router, gates, capacity and combine above and below are the same either way.
        if (g.Experts is not null && activation != GluActivation.Silu)
            throw new NotSupportedException($"Expert parallelism runs SwiGLU experts; this model's experts use {activation}.");
        var outputs = g.Experts?.Run(g, layer, x, rows, w1, w3, w2) ?? new Tensor[experts];
        if (g.Experts is null)
            for (int e = 0; e < experts; e++)
            {
                // Every expert runs, even with no tokens, so every parameter gets a (zero) gradient
                // each step and AdamW treats all of them alike.
                var xe = g.GatherRows(x, rows[e]);                              // (Mₑ, D)
                outputs[e] = Mlp.Glu(g, xe, w1[e], w3[e], w2[e], activation);  // (Mₑ, D)
            }
        var y = g.CombineExperts(outputs, gates, plan);                     // (N, D) = Σₑ gate·yₑ per token
        stats.Add(g.LoadBalanceLoss(probs, top), g.RouterZLoss(logits), new ExpertLoad(layer, n, assigned, kept, capacity));
        return y;
    }
}
