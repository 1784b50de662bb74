using Tessera.Tensors;

namespace Tessera.Model;

/// <summary>One pre-norm decoder layer: x + attn(norm(x)), then + mlp(norm(x)); each branch output goes through dropout (identity unless the graph has a dropout RNG).</summary>
public sealed class TransformerBlock
{
    readonly Tensor inputNorm, postAttentionNorm;
    readonly Attention attention;
    readonly IFeedForward mlp;
    readonly float eps, dropout;

    /// <summary>Registers <c>model.layers.{layer}.*</c>.</summary>
    public TransformerBlock(ModelConfig c, ModelParameters p, int layer, RopeTable rope)
    {
        string prefix = $"model.layers.{layer}.";
        (eps, dropout) = (c.NormEps, c.Dropout);
        inputNorm = p.Add(prefix + "input_layernorm.weight", ParameterKind.NormGain, c.Dim);
        attention = new Attention(c, p, prefix, rope);
        postAttentionNorm = p.Add(prefix + "post_attention_layernorm.weight", ParameterKind.NormGain, c.Dim);
        mlp = c.IsMoe ? new MoeLayer(c, p, prefix, layer) : new Mlp(c, p, prefix);
    }

    /// <summary>x (B·T, D) → (B·T, D).</summary>
    public Tensor Forward(Graph g, Tensor x, int batch, int seq, RouterStats stats)
    {
        x = g.Add(x, g.Dropout(attention.Forward(g, g.RmsNorm(x, inputNorm, eps), batch, seq), dropout));
        x = g.Add(x, g.Dropout(mlp.Forward(g, g.RmsNorm(x, postAttentionNorm, eps), stats), dropout));
        return x;
    }
}
