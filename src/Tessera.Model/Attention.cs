using Tessera.Tensors;

namespace Tessera.Model;

/// <summary>
/// Causal self-attention with rotary positions and grouped-query heads (Llama layout, no biases):
/// H query heads share Hkv key/value heads, so k_proj and v_proj are Hkv·Dh wide.
/// </summary>
public sealed class Attention
{
    readonly Tensor qProj, kProj, vProj, oProj;
    readonly int heads, kvHeads, headDim, window;
    readonly RopeTable rope;

    /// <summary>Registers <c>{prefix}self_attn.{q,k,v,o}_proj.weight</c>.</summary>
    public Attention(ModelConfig c, ModelParameters p, string prefix, RopeTable rope)
    {
        heads = c.Heads; kvHeads = c.KvHeads; headDim = c.HeadDim; window = c.SlidingWindow;
        this.rope = rope;
        string a = prefix + "self_attn.";
        qProj = p.Add(a + "q_proj.weight", ParameterKind.Linear, heads * headDim, c.Dim);
        kProj = p.Add(a + "k_proj.weight", ParameterKind.Linear, kvHeads * headDim, c.Dim);
        vProj = p.Add(a + "v_proj.weight", ParameterKind.Linear, kvHeads * headDim, c.Dim);
        oProj = p.Add(a + "o_proj.weight", ParameterKind.ResidualOutput, c.Dim, heads * headDim);
    }

    /// <summary>x (B·T, D) → (B·T, D).</summary>
    public Tensor Forward(Graph g, Tensor x, int batch, int seq)
    {
        int b = batch, t = seq;
        var q = g.SplitHeads(g.Linear(x, qProj), b, t, heads, rope);       // (B, H, T, Dh), rotated
        var k = g.SplitHeads(g.Linear(x, kProj), b, t, kvHeads, rope);     // (B, Hkv, T, Dh), rotated
        var v = g.SplitHeads(g.Linear(x, vProj), b, t, kvHeads);           // (B, Hkv, T, Dh)
        var o = g.Attention(q, k, v, window: window);                      // (B, H, T, Dh)
        return g.Linear(g.MergeHeads(o), oProj);                            // (B·T, D)
    }
}
