using System.Text.Json.Nodes;
using Tessera.Model.Checkpoints;

namespace Tessera.Model.Architectures;

/// <summary>
/// Llama, with Mistral's sliding window and Mixtral's MoE: RMSNorm → GQA attention with RoPE
/// (rotate-half) → residual, RMSNorm → SwiGLU MLP or top-k mixture of SwiGLU experts → residual.
/// In GGUF (llama.cpp's <c>llama</c> arch) q and k rows are permuted to interleaved RoPE pairs.
/// </summary>
public sealed class Llama : Architecture
{
    /// <inheritdoc/>
    public override string Name => "llama";
    /// <inheritdoc/>
    public override IReadOnlyList<string> HfModelTypes { get; } = ["llama", "mistral", "mixtral"];
    /// <inheritdoc/>
    public override IReadOnlyList<string> GgufNames { get; } = ["llama"];

    /// <inheritdoc/>
    public override (string ModelType, string ClassName) HfNames(ModelConfig c)
        => c.IsMoe ? ("mixtral", "MixtralForCausalLM") : c.SlidingWindow > 0 ? ("mistral", "MistralForCausalLM") : ("llama", "LlamaForCausalLM");

    /// <inheritdoc/>
    public override string GgufName(ModelConfig c) => "llama";

    /// <inheritdoc/>
    public override ModelConfig Apply(ModelConfig c) => c with { Architecture = Name };

    /// <inheritdoc/>
    public override ModelConfig ReadHf(HfConfig h)
    {
        var c = base.ReadHf(h);
        if (h.Bool("attention_bias", false) || h.Bool("mlp_bias", false))
            throw new InvalidDataException($"{h.Source}: attention_bias / mlp_bias are not supported for llama.");
        return c with { Experts = h.Int("num_local_experts", 1), TopK = h.Int("num_experts_per_tok", 1) };
    }

    /// <inheritdoc/>
    public override void WriteHf(ModelConfig c, JsonObject o)
    {
        base.WriteHf(c, o);
        o["hidden_act"] = "silu";
        if (c.IsMoe)
        {
            o["num_local_experts"] = c.Experts;
            o["num_experts_per_tok"] = c.TopK;
            o["router_aux_loss_coef"] = c.LoadBalanceCoef;
        }
    }

    /// <inheritdoc/>
    public override ModelConfig ReadGguf(GgufKeys k)
    {
        var c = base.ReadGguf(k);
        // llama.cpp's llama arch has no sliding window; Tessera records its own.
        return k.Reader.Metadata.GetInteger("tessera.sliding_window") is long w ? c with { SlidingWindow = (int)w } : c;
    }

    /// <inheritdoc/>
    public override void WriteGguf(ModelConfig c, GgufWriter w)
    {
        base.WriteGguf(c, w);
        if (c.SlidingWindow > 0) w.Set("tessera.sliding_window", (uint)c.SlidingWindow);
    }

    /// <inheritdoc/>
    public override TensorTable Tensors(ModelConfig c)
    {
        const string L = "model.layers.{L}.", B = "blk.{L}.";
        var t = CommonTensors(c, qk: GgufTransform.PermuteHeads);
        t.Add(new(TensorRole.FeedForwardNorm, L + "post_attention_layernorm.weight", B + "ffn_norm.weight"));
        if (c.IsMoe)
        {
            const string M = L + "block_sparse_moe.";
            t.Add(new(TensorRole.Router, M + "gate.weight", B + "ffn_gate_inp.weight"));
            t.Add(new(TensorRole.ExpertGate, M + "experts.{E}.w1.weight", B + "ffn_gate_exps.weight", GgufTransform.StackedExperts));
            t.Add(new(TensorRole.ExpertUp, M + "experts.{E}.w3.weight", B + "ffn_up_exps.weight", GgufTransform.StackedExperts));
            t.Add(new(TensorRole.ExpertDown, M + "experts.{E}.w2.weight", B + "ffn_down_exps.weight", GgufTransform.StackedExperts));
        }
        return new TensorTable(t);
    }
}
