using System.Text.Json.Nodes;

namespace Tessera.Model.Architectures;

/// <summary>
/// Gemma: GeGLU (tanh GELU), embeddings × √dim, RMSNorm x·rstd·(1 + w), head_dim independent of
/// dim (256 in the released models), tied head. llama.cpp stores the norms as 1 + w and runs
/// them as plain RMSNorm, so the GGUF names carry <see cref="GgufTransform.AddOne"/>.
/// </summary>
public sealed class Gemma : Architecture
{
    /// <inheritdoc/>
    public override string Name => "gemma";
    /// <inheritdoc/>
    public override IReadOnlyList<string> HfModelTypes { get; } = ["gemma"];
    /// <inheritdoc/>
    public override IReadOnlyList<string> GgufNames { get; } = ["gemma"];
    /// <inheritdoc/>
    public override (string ModelType, string ClassName) HfNames(ModelConfig c) => ("gemma", "GemmaForCausalLM");
    /// <inheritdoc/>
    public override string GgufName(ModelConfig c) => "gemma";
    /// <inheritdoc/>
    protected override bool TiedByDefault => true;

    /// <inheritdoc/>
    public override ModelConfig Apply(ModelConfig c)
        => c with { Architecture = Name, NormGainOffset = 1f, Activation = GluActivation.GeluTanh, ScaleEmbeddings = true };

    /// <inheritdoc/>
    public override ModelConfig ReadHf(HfConfig h)
    {
        GemmaKeys.CheckActivation(h);
        return base.ReadHf(h) with { SlidingWindow = 0 };
    }

    /// <inheritdoc/>
    public override void WriteHf(ModelConfig c, JsonObject o)
    {
        base.WriteHf(c, o);
        o["head_dim"] = c.HeadDim;
        o["hidden_activation"] = "gelu_pytorch_tanh";
    }

    /// <inheritdoc/>
    public override TensorTable Tensors(ModelConfig c)
    {
        var t = CommonTensors(c, norms: GgufTransform.AddOne);
        t.Add(new(TensorRole.FeedForwardNorm, "model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight", GgufTransform.AddOne));
        return new TensorTable(t);
    }
}

/// <summary>Keys the Gemma files share (activation name, query scale, four-norm tensor names).</summary>
static class GemmaKeys
{
    /// <summary>Gemma's GELU must be the tanh approximation Tessera runs.</summary>
    public static void CheckActivation(HfConfig h)
    {
        string act = h.String("hidden_activation") ?? h.String("hidden_act") ?? "gelu_pytorch_tanh";
        if (act is not ("gelu_pytorch_tanh" or "gelu_tanh" or "gelu"))
            throw new InvalidDataException($"{h.Source}: hidden_activation '{act}' is not supported (Tessera runs gelu_pytorch_tanh).");
    }

    /// <summary>query_pre_attn_scalar (absent = 0, meaning head_dim).</summary>
    public static float Scalar(HfConfig h) => h.Float("query_pre_attn_scalar", 0f);

    /// <summary>Gemma2/3's four norms per layer (HF post_attention_layernorm is the attention's post-norm here).</summary>
    public static IEnumerable<TensorName> SandwichNorms()
    {
        const string L = "model.layers.{L}.", B = "blk.{L}.";
        yield return new(TensorRole.AttentionPostNorm, L + "post_attention_layernorm.weight", B + "post_attention_norm.weight", GgufTransform.AddOne);
        yield return new(TensorRole.FeedForwardNorm, L + "pre_feedforward_layernorm.weight", B + "ffn_norm.weight", GgufTransform.AddOne);
        yield return new(TensorRole.FeedForwardPostNorm, L + "post_feedforward_layernorm.weight", B + "post_ffw_norm.weight", GgufTransform.AddOne);
    }

    /// <summary>
    /// The query scalar llama.cpp uses for Gemma2/3 GGUF files (it has no key for it): head_dim,
    /// except the 27B models (46 and 62 layers), which use dim/heads. A Tessera file records its own.
    /// </summary>
    public static float GgufScalar(GgufKeys k, ModelConfig c, int bigLayers)
    {
        float own = k.Reader.Metadata.Values.TryGetValue("tessera.query_pre_attn_scalar", out var v) && v is float f ? f : 0f;
        if (own > 0) return own;
        return c.Layers == bigLayers ? (float)c.Dim / c.Heads : 0f;
    }
}
