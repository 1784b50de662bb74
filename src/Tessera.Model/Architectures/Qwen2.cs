using System.Text.Json.Nodes;

namespace Tessera.Model.Architectures;

/// <summary>Qwen2: the llama recipe with biases on q, k and v (none on o); NEOX-order RoPE in GGUF (no permutation).</summary>
public sealed class Qwen2 : Architecture
{
    /// <inheritdoc/>
    public override string Name => "qwen2";
    /// <inheritdoc/>
    public override IReadOnlyList<string> HfModelTypes { get; } = ["qwen2"];
    /// <inheritdoc/>
    public override IReadOnlyList<string> GgufNames { get; } = ["qwen2"];
    /// <inheritdoc/>
    public override (string ModelType, string ClassName) HfNames(ModelConfig c) => ("qwen2", "Qwen2ForCausalLM");
    /// <inheritdoc/>
    public override string GgufName(ModelConfig c) => "qwen2";
    /// <inheritdoc/>
    public override ModelConfig Apply(ModelConfig c) => c with { Architecture = Name, QkvBias = true };

    /// <inheritdoc/>
    public override ModelConfig ReadHf(HfConfig h)
    {
        var c = base.ReadHf(h);
        if (h.Bool("use_sliding_window", false)) throw new InvalidDataException($"{h.Source}: use_sliding_window is not supported for qwen2 (max_window_layers mixes layers).");
        return c with { SlidingWindow = 0 };
    }

    /// <inheritdoc/>
    public override void WriteHf(ModelConfig c, JsonObject o)
    {
        base.WriteHf(c, o);
        o["hidden_act"] = "silu";
        o["use_sliding_window"] = false;
    }

    /// <inheritdoc/>
    public override TensorTable Tensors(ModelConfig c)
    {
        const string L = "model.layers.{L}.", B = "blk.{L}.";
        var t = CommonTensors(c);
        t.Add(new(TensorRole.QueryBias, L + "self_attn.q_proj.bias", B + "attn_q.bias"));
        t.Add(new(TensorRole.KeyBias, L + "self_attn.k_proj.bias", B + "attn_k.bias"));
        t.Add(new(TensorRole.ValueBias, L + "self_attn.v_proj.bias", B + "attn_v.bias"));
        t.Add(new(TensorRole.FeedForwardNorm, L + "post_attention_layernorm.weight", B + "ffn_norm.weight"));
        return new TensorTable(t);
    }
}
