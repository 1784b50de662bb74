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
        var q = g.Reshape(g.Linear(x, qProj), [b, t, heads, headDim]);      // (B, T, H, Dh)
        var k = g.Reshape(g.Linear(x, kProj), [b, t, kvHeads, headDim]);    // (B, T, Hkv, Dh)
        var v = g.Reshape(g.Linear(x, vProj), [b, t, kvHeads, headDim]);    // (B, T, Hkv, Dh)
        q = g.Permute(g.Rope(q, rope), [0, 2, 1, 3]);                       // (B, H, T, Dh)
        k = g.Permute(g.Rope(k, rope), [0, 2, 1, 3]);                       // (B, Hkv, T, Dh)
        v = g.Permute(v, [0, 2, 1, 3]);                                     // (B, Hkv, T, Dh)
        var o = g.Permute(g.Attention(q, k, v, window: window), [0, 2, 1, 3]); // (B, T, H, Dh)
        return g.Linear(g.Reshape(o, [b * t, heads * headDim]), oProj);     // (B·T, D)
    }
}
