using Tessera.Model.Architectures;
using Tessera.Model.Modules;
using Tessera.Tensors;

namespace Tessera.Model;

/// <summary>
/// Causal self-attention with rotary positions and grouped-query heads: H query heads share Hkv
/// key/value heads of width Dh (independent of D). Optional per the recipe: q/k/v biases,
/// per-head RMSNorm of q and k before RoPE, a sliding window, a score scale and a logit soft-cap.
/// </summary>
public sealed class Attention
{
    readonly Tensor qProj, kProj, vProj, oProj;
    readonly Tensor? qBias, kBias, vBias, qNorm, kNorm;
    readonly int heads, kvHeads, headDim, window, layer;
    readonly float scale, softCap, eps, offset;
    readonly RopeTable rope;
    ModuleSet? adapters;   // of the forward in progress (a model runs one forward at a time)

    /// <summary>Registers layer <paramref name="layer"/>'s attention parameters.</summary>
    public Attention(ModelRecipe recipe, ModelParameters p, int layer, RopeTable rope)
    {
        var c = recipe.Config;
        var n = recipe.Names;
        heads = c.Heads; kvHeads = c.KvHeads; headDim = c.HeadDim; window = recipe.Windows[layer];
        scale = recipe.AttentionScale; softCap = c.AttentionSoftCap; eps = c.NormEps; offset = c.NormGainOffset;
        this.rope = rope;
        this.layer = layer;
        qProj = p.Add(n.Hf(TensorRole.Query, layer), ParameterKind.Linear, heads * headDim, c.Dim);
        kProj = p.Add(n.Hf(TensorRole.Key, layer), ParameterKind.Linear, kvHeads * headDim, c.Dim);
        vProj = p.Add(n.Hf(TensorRole.Value, layer), ParameterKind.Linear, kvHeads * headDim, c.Dim);
        if (c.QkvBias)
        {
            qBias = p.Add(n.Hf(TensorRole.QueryBias, layer), ParameterKind.Bias, heads * headDim);
            kBias = p.Add(n.Hf(TensorRole.KeyBias, layer), ParameterKind.Bias, kvHeads * headDim);
            vBias = p.Add(n.Hf(TensorRole.ValueBias, layer), ParameterKind.Bias, kvHeads * headDim);
        }
        if (c.QkNorm)
        {
            qNorm = p.Add(n.Hf(TensorRole.QueryNorm, layer), ParameterKind.NormGain, headDim);
            kNorm = p.Add(n.Hf(TensorRole.KeyNorm, layer), ParameterKind.NormGain, headDim);
        }
        oProj = p.Add(n.Hf(TensorRole.AttentionOutput, layer), ParameterKind.ResidualOutput, c.Dim, heads * headDim);
    }

    /// <summary>
    /// x (B·T, D) → (B·T, D); <paramref name="prefix"/>: per batch row, the bidirectional prefix length (empty: causal).
    /// <paramref name="adapters"/>: modules whose LoRA adapters add to q/k/v/o (null: the base projections only).
    /// </summary>
    public Tensor Forward(Graph g, Tensor x, int batch, int seq, ReadOnlySpan<int> prefix = default, ModuleSet? adapters = null)
    {
        this.adapters = adapters;
        int b = batch, t = seq;
        var q = Project(g, x, qProj, qBias, qNorm, heads, "q_proj");                   // (B·T, H·Dh)
        var k = Project(g, x, kProj, kBias, kNorm, kvHeads, "k_proj");                   // (B·T, Hkv·Dh)
        var v = Project(g, x, vProj, vBias, null, kvHeads, "v_proj");                    // (B·T, Hkv·Dh)
        var qh = g.SplitHeads(q, b, t, heads, rope);                           // (B, H, T, Dh), rotated
        var kh = g.SplitHeads(k, b, t, kvHeads, rope);                         // (B, Hkv, T, Dh), rotated
        var vh = g.SplitHeads(v, b, t, kvHeads);                               // (B, Hkv, T, Dh)
        var o = g.Attention(qh, kh, vh, scale, window, softCap, prefix);       // (B, H, T, Dh)
        var merged = g.MergeHeads(o);                                          // (B·T, H·Dh)
        return adapters is null ? g.Linear(merged, oProj) : adapters.Linear(g, merged, oProj, layer, "o_proj");                                // (B·T, D)
    }

    /// <summary>x·Wᵀ (+ bias), then (with a gain) RMSNorm over each head's Dh values.</summary>
    Tensor Project(Graph g, Tensor x, Tensor w, Tensor? bias, Tensor? norm, int h, string projection)
    {
        var y = adapters is null ? g.Linear(x, w) : adapters.Linear(g, x, w, layer, projection);                                                // (N, h·Dh)
        if (bias is not null) y = g.AddBias(y, bias);
        if (norm is null) return y;
        int rows = y.Dim(0);
        var perHead = g.RmsNorm(g.Reshape(y, [rows * h, headDim]), norm, eps, offset);   // (N·h, Dh)
        return g.Reshape(perHead, [rows, h * headDim]);                        // (N, h·Dh)
    }
}
