using System.Text.Json.Nodes;
using Tessera.Model.Checkpoints;

namespace Tessera.Model.Architectures;

/// <summary>
/// Gemma3 (text): Gemma2's four norms without soft-caps, per-head QK-norm (1 + w), and five local
/// layers to one global (layer i is global iff (i + 1) mod 6 = 0; window 1024), local RoPE base
/// 10k against 1M global, RoPE scaling (linear) on the global layers only. Reads the text part of
/// a multimodal <c>gemma3</c> config (its <c>text_config</c>).
/// </summary>
public sealed class Gemma3 : Architecture
{
    /// <inheritdoc/>
    public override string Name => "gemma3";
    /// <inheritdoc/>
    public override IReadOnlyList<string> HfModelTypes { get; } = ["gemma3_text", "gemma3"];
    /// <inheritdoc/>
    public override IReadOnlyList<string> GgufNames { get; } = ["gemma3"];
    /// <inheritdoc/>
    public override (string ModelType, string ClassName) HfNames(ModelConfig c) => ("gemma3_text", "Gemma3ForCausalLM");
    /// <inheritdoc/>
    public override string GgufName(ModelConfig c) => "gemma3";
    /// <inheritdoc/>
    protected override bool TiedByDefault => true;

    /// <summary>llama.cpp's fixed Gemma3 values (its GGUF has no keys for them).</summary>
    const int Pattern = 6;
    const float LocalBase = 10000f;

    /// <inheritdoc/>
    public override ModelConfig Apply(ModelConfig c) => c with
    {
        Architecture = Name, NormGainOffset = 1f, Activation = GluActivation.GeluTanh, ScaleEmbeddings = true,
        PostNorms = true, QkNorm = true,
        SlidingWindowPattern = c.SlidingWindowPattern > 0 ? c.SlidingWindowPattern : Pattern,
        RopeThetaLocal = c.RopeThetaLocal > 0 ? c.RopeThetaLocal : LocalBase,
    };

    /// <inheritdoc/>
    public override ModelConfig ReadHf(HfConfig h)
    {
        if (h.Child("text_config") is { } text) h = text;   // multimodal gemma3 config: the text model
        GemmaKeys.CheckActivation(h);
        return Apply(base.ReadHf(h) with
        {
            QueryPreAttnScalar = GemmaKeys.Scalar(h),
            AttentionSoftCap = h.Float("attn_logit_softcapping", 0f),
            FinalSoftCap = h.Float("final_logit_softcapping", 0f),
            SlidingWindowPattern = PatternOf(h),
            RopeThetaLocal = h.Float("rope_local_base_freq", LocalBase),
        });
    }

    /// <summary>sliding_window_pattern, or the period of a layer_types list (…, "sliding_attention", "full_attention").</summary>
    static int PatternOf(HfConfig h)
    {
        if (h.Root["layer_types"] is not JsonArray types) return h.Int("sliding_window_pattern", Pattern);
        int period = types.Select((t, i) => (t?.GetValue<string>(), i)).FirstOrDefault(x => x.Item1 == "full_attention", (null, -1)).Item2 + 1;
        if (period <= 0) period = int.MaxValue;
        for (int i = 0; i < types.Count; i++)
        {
            string expected = period != int.MaxValue && (i + 1) % period == 0 ? "full_attention" : "sliding_attention";
            if (types[i]?.GetValue<string>() != expected)
                throw new InvalidDataException($"{h.Source}: layer_types[{i}] is '{types[i]}', which is not a periodic sliding/full pattern Tessera can run.");
        }
        return period == int.MaxValue ? 0 : period;
    }

    /// <inheritdoc/>
    public override void WriteHf(ModelConfig c, JsonObject o)
    {
        base.WriteHf(c, o);
        o["head_dim"] = c.HeadDim;
        o["hidden_activation"] = "gelu_pytorch_tanh";
        o["query_pre_attn_scalar"] = c.QueryPreAttnScalar > 0 ? c.QueryPreAttnScalar : c.HeadDim;
        o["sliding_window_pattern"] = c.SlidingWindowPattern;
        o["rope_local_base_freq"] = c.RopeThetaLocal;
        o["attn_logit_softcapping"] = c.AttentionSoftCap > 0 ? c.AttentionSoftCap : null;
        o["final_logit_softcapping"] = c.FinalSoftCap > 0 ? c.FinalSoftCap : null;
    }

    /// <inheritdoc/>
    public override ModelConfig ReadGguf(GgufKeys k)
    {
        var c = base.ReadGguf(k);
        var meta = k.Reader.Metadata;
        c = c with
        {
            SlidingWindowPattern = meta.GetInteger("tessera.sliding_window_pattern") is long p ? (int)p : Pattern,
            RopeThetaLocal = meta.Values.TryGetValue("tessera.rope_local_base_freq", out var b) && b is float f ? f : LocalBase,
        };
        return c with { QueryPreAttnScalar = GemmaKeys.GgufScalar(k, c, bigLayers: 62) };
    }

    /// <inheritdoc/>
    public override void WriteGguf(ModelConfig c, GgufWriter w)
    {
        if (c.AttentionSoftCap > 0 || c.FinalSoftCap > 0) throw new NotSupportedException("GGUF gemma3 has no soft-cap keys; this model's soft-caps cannot be written.");
        base.WriteGguf(c, w);
        w.Set("gemma3.attention.sliding_window", (uint)c.SlidingWindow);
        if (c.QueryPreAttnScalar > 0) w.Set("tessera.query_pre_attn_scalar", c.QueryPreAttnScalar);
        if (c.SlidingWindowPattern != Pattern) w.Set("tessera.sliding_window_pattern", (uint)c.SlidingWindowPattern);
        if (c.RopeThetaLocal != LocalBase) w.Set("tessera.rope_local_base_freq", c.RopeThetaLocal);
    }

    /// <inheritdoc/>
    public override TensorTable Tensors(ModelConfig c)
    {
        const string L = "model.layers.{L}.", B = "blk.{L}.";
        var t = CommonTensors(c, norms: GgufTransform.AddOne);
        t.AddRange(GemmaKeys.SandwichNorms());
        t.Add(new(TensorRole.QueryNorm, L + "self_attn.q_norm.weight", B + "attn_q_norm.weight", GgufTransform.AddOne));
        t.Add(new(TensorRole.KeyNorm, L + "self_attn.k_norm.weight", B + "attn_k_norm.weight", GgufTransform.AddOne));
        return new TensorTable(t);
    }
}
