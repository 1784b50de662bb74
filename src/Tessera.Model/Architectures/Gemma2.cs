using System.Text.Json.Nodes;
using Tessera.Model.Checkpoints;

namespace Tessera.Model.Architectures;

/// <summary>
/// Gemma2: Gemma plus attention-logit and final-logit soft-capping, a post-norm on each branch
/// (input_layernorm → attn → post_attention_layernorm → +; pre_feedforward_layernorm → mlp →
/// post_feedforward_layernorm → +), query scale query_pre_attn_scalar^-½, and local (sliding
/// window) and global layers alternating, layer 0 local.
/// </summary>
public sealed class Gemma2 : Architecture
{
    /// <inheritdoc/>
    public override string Name => "gemma2";
    /// <inheritdoc/>
    public override IReadOnlyList<string> HfModelTypes { get; } = ["gemma2"];
    /// <inheritdoc/>
    public override IReadOnlyList<string> GgufNames { get; } = ["gemma2"];
    /// <inheritdoc/>
    public override (string ModelType, string ClassName) HfNames(ModelConfig c) => ("gemma2", "Gemma2ForCausalLM");
    /// <inheritdoc/>
    public override string GgufName(ModelConfig c) => "gemma2";
    /// <inheritdoc/>
    protected override bool TiedByDefault => true;

    /// <inheritdoc/>
    public override ModelConfig Apply(ModelConfig c) => c with
    {
        Architecture = Name, NormGainOffset = 1f, Activation = GluActivation.GeluTanh, ScaleEmbeddings = true,
        PostNorms = true, SlidingWindowPattern = 2,
    };

    /// <inheritdoc/>
    public override ModelConfig ReadHf(HfConfig h)
    {
        GemmaKeys.CheckActivation(h);
        return base.ReadHf(h) with
        {
            QueryPreAttnScalar = GemmaKeys.Scalar(h),
            AttentionSoftCap = h.Float("attn_logit_softcapping", 0f),
            FinalSoftCap = h.Float("final_logit_softcapping", 0f),
        };
    }

    /// <inheritdoc/>
    public override void WriteHf(ModelConfig c, JsonObject o)
    {
        base.WriteHf(c, o);
        o["head_dim"] = c.HeadDim;
        o["hidden_activation"] = "gelu_pytorch_tanh";
        o["query_pre_attn_scalar"] = c.QueryPreAttnScalar > 0 ? c.QueryPreAttnScalar : c.HeadDim;
        o["attn_logit_softcapping"] = c.AttentionSoftCap > 0 ? c.AttentionSoftCap : null;
        o["final_logit_softcapping"] = c.FinalSoftCap > 0 ? c.FinalSoftCap : null;
    }

    /// <inheritdoc/>
    public override ModelConfig ReadGguf(GgufKeys k)
    {
        var c = base.ReadGguf(k);
        return c with
        {
            AttentionSoftCap = k.Float("attn_logit_softcapping", 0f), FinalSoftCap = k.Float("final_logit_softcapping", 0f),
            QueryPreAttnScalar = GemmaKeys.GgufScalar(k, c, bigLayers: 46),
        };
    }

    /// <inheritdoc/>
    public override void WriteGguf(ModelConfig c, GgufWriter w)
    {
        // llama.cpp's gemma2 loads no output tensor (a file with one is refused: "wrong number of tensors").
        if (!c.TiedEmbeddings) throw new NotSupportedException("GGUF gemma2 has no separate output tensor: an untied gemma2 model cannot be written (tie the embeddings).");
        base.WriteGguf(c, w);
        w.Set("gemma2.attention.sliding_window", (uint)c.SlidingWindow);
        if (c.AttentionSoftCap > 0) w.Set("gemma2.attn_logit_softcapping", c.AttentionSoftCap);
        if (c.FinalSoftCap > 0) w.Set("gemma2.final_logit_softcapping", c.FinalSoftCap);
        if (c.QueryPreAttnScalar > 0) w.Set("tessera.query_pre_attn_scalar", c.QueryPreAttnScalar);
    }

    /// <inheritdoc/>
    public override TensorTable Tensors(ModelConfig c)
    {
        var t = CommonTensors(c, norms: GgufTransform.AddOne);
        t.AddRange(GemmaKeys.SandwichNorms());
        return new TensorTable(t);
    }
}
