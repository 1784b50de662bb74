using Tessera.Model.Architectures;
using Tessera.Model.Modules;
using Tessera.Tensors;

namespace Tessera.Model;

/// <summary>
/// One decoder layer as the training graph runs it (see <see cref="ModelRecipe"/>):
/// x + post(attn(norm(x))), then x + post(ffn(norm(x))); the post-norms exist only for
/// families with <see cref="ModelConfig.PostNorms"/>; each branch output goes through dropout
/// (identity unless the graph has a dropout RNG).
/// </summary>
public sealed class TransformerBlock
{
    readonly Tensor attentionNorm, feedForwardNorm;
    readonly Tensor? attentionPostNorm, feedForwardPostNorm;
    readonly Attention attention;
    readonly IFeedForward feedForward;
    readonly float eps, offset, dropout;
    readonly int layer;

    /// <summary>Registers layer <paramref name="layer"/>'s parameters under the family's names.</summary>
    public TransformerBlock(ModelRecipe recipe, ModelParameters p, int layer, RopeTable rope)
    {
        var c = recipe.Config;
        var n = recipe.Names;
        (eps, offset, dropout) = (c.NormEps, c.NormGainOffset, c.Dropout);
        this.layer = layer;
        attentionNorm = p.Add(n.Hf(TensorRole.AttentionNorm, layer), ParameterKind.NormGain, c.Dim);
        attention = new Attention(recipe, p, layer, rope);
        if (c.PostNorms) attentionPostNorm = p.Add(n.Hf(TensorRole.AttentionPostNorm, layer), ParameterKind.NormGain, c.Dim);
        feedForwardNorm = p.Add(n.Hf(TensorRole.FeedForwardNorm, layer), ParameterKind.NormGain, c.Dim);
        feedForward = c.IsMoe ? new MoeLayer(recipe, p, layer) : new Mlp(recipe, p, layer);
        if (c.PostNorms) feedForwardPostNorm = p.Add(n.Hf(TensorRole.FeedForwardPostNorm, layer), ParameterKind.NormGain, c.Dim);
    }

    /// <summary>
    /// x (B·T, D) → (B·T, D). <paramref name="modules"/>: adapters and experts attached to the base;
    /// when none is on for this layer the block runs the base arithmetic only.
    /// </summary>
    public Tensor Forward(Graph g, Tensor x, int batch, int seq, RouterStats stats, ReadOnlySpan<int> prefix = default, ModuleSet? modules = null)
    {
        var adapted = modules is not null && modules.HasAdapters(layer) ? modules : null;
        var a = attention.Forward(g, g.RmsNorm(x, attentionNorm, eps, offset), batch, seq, prefix, adapted);
        if (attentionPostNorm is not null) a = g.RmsNorm(a, attentionPostNorm, eps, offset);
        x = g.Add(x, g.Dropout(a, dropout));
        var h = g.RmsNorm(x, feedForwardNorm, eps, offset);
        var f = adapted is not null && feedForward is Mlp mlp ? mlp.Forward(g, h, adapted, layer) : feedForward.Forward(g, h, stats);
        if (modules is not null) f = modules.AddExperts(g, layer, h, f);
        if (feedForwardPostNorm is not null) f = g.RmsNorm(f, feedForwardPostNorm, eps, offset);
        return g.Add(x, g.Dropout(f, dropout));
    }
}
