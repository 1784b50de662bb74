using System.Text.Json.Nodes;
using Tessera.Model.Checkpoints;

namespace Tessera.Model.Architectures;

/// <summary>
/// Qwen3 (dense) and Qwen3-MoE: the llama recipe with an explicit head_dim and per-head RMSNorm on
/// q and k before RoPE; the MoE variant routes over <c>mlp.experts</c> with top-k renormalised
/// when norm_topk_prob is set. NEOX-order RoPE in GGUF (no permutation).
/// </summary>
public sealed class Qwen3 : Architecture
{
    /// <inheritdoc/>
    public override string Name => "qwen3";
    /// <inheritdoc/>
    public override IReadOnlyList<string> HfModelTypes { get; } = ["qwen3", "qwen3_moe"];
    /// <inheritdoc/>
    public override IReadOnlyList<string> GgufNames { get; } = ["qwen3", "qwen3moe"];
    /// <inheritdoc/>
    public override (string ModelType, string ClassName) HfNames(ModelConfig c)
        => c.IsMoe ? ("qwen3_moe", "Qwen3MoeForCausalLM") : ("qwen3", "Qwen3ForCausalLM");
    /// <inheritdoc/>
    public override string GgufName(ModelConfig c) => c.IsMoe ? "qwen3moe" : "qwen3";
    /// <inheritdoc/>
    public override ModelConfig Apply(ModelConfig c) => c with { Architecture = Name, QkNorm = true };

    /// <inheritdoc/>
    public override ModelConfig ReadHf(HfConfig h)
    {
        var c = base.ReadHf(h);
        if (h.Bool("attention_bias", false)) throw new InvalidDataException($"{h.Source}: attention_bias is not supported for qwen3.");
        if (h.Bool("use_sliding_window", false)) throw new InvalidDataException($"{h.Source}: use_sliding_window is not supported for qwen3.");
        c = c with { SlidingWindow = 0 };
        int experts = h.Int("num_experts", 0);
        if (experts <= 1) return c;
        if (h.Int("decoder_sparse_step", 1) != 1) throw new InvalidDataException($"{h.Source}: decoder_sparse_step ≠ 1 (dense layers between MoE layers) is not supported.");
        if (h.Root["mlp_only_layers"] is JsonArray { Count: > 0 }) throw new InvalidDataException($"{h.Source}: mlp_only_layers is not supported.");
        return c with
        {
            Experts = experts, TopK = h.Int("num_experts_per_tok"), HiddenDim = h.Int("moe_intermediate_size"),
            NormalizeTopK = h.Bool("norm_topk_prob", false),
        };
    }

    /// <inheritdoc/>
    public override void WriteHf(ModelConfig c, JsonObject o)
    {
        base.WriteHf(c, o);
        o["hidden_act"] = "silu";
        o["head_dim"] = c.HeadDim;
        o["attention_bias"] = false;
        o["use_sliding_window"] = false;
        if (!c.IsMoe) return;
        o["num_experts"] = c.Experts;
        o["num_experts_per_tok"] = c.TopK;
        o["moe_intermediate_size"] = c.HiddenDim;
        o["norm_topk_prob"] = c.NormalizeTopK;
        o["decoder_sparse_step"] = 1;
        o["mlp_only_layers"] = new JsonArray();
        o["router_aux_loss_coef"] = c.LoadBalanceCoef;
    }

    /// <inheritdoc/>
    public override ModelConfig ReadGguf(GgufKeys k)
    {
        var c = base.ReadGguf(k);
        return c.IsMoe ? c with { NormalizeTopK = k.Reader.Metadata.GetInteger("tessera.norm_topk_prob") is not 0 } : c;
    }

    /// <inheritdoc/>
    public override void WriteGguf(ModelConfig c, GgufWriter w)
    {
        base.WriteGguf(c, w);
        if (!c.IsMoe) return;
        w.Set(GgufName(c) + ".expert_feed_forward_length", (uint)c.HiddenDim);
        if (!c.NormalizeTopK) w.Set("tessera.norm_topk_prob", 0u);
    }

    /// <inheritdoc/>
    public override TensorTable Tensors(ModelConfig c)
    {
        const string L = "model.layers.{L}.", B = "blk.{L}.";
        var t = CommonTensors(c);
        t.Add(new(TensorRole.QueryNorm, L + "self_attn.q_norm.weight", B + "attn_q_norm.weight"));
        t.Add(new(TensorRole.KeyNorm, L + "self_attn.k_norm.weight", B + "attn_k_norm.weight"));
        t.Add(new(TensorRole.FeedForwardNorm, L + "post_attention_layernorm.weight", B + "ffn_norm.weight"));
        if (c.IsMoe) t.AddRange(MlpExperts());
        return new TensorTable(t);
    }
}
