using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Inference;

/// <summary>
/// One decoder layer's weights as the inference forward pass reads them. <see cref="Qkv"/> is the
/// q, k and v projections stacked by rows (Heads·Dh + 2·KvHeads·Dh outputs), so one product per
/// layer computes all three. Exactly one of <see cref="Mlp"/> (dense) or <see cref="Router"/> +
/// <see cref="Experts"/> (mixture) is set.
/// </summary>
public sealed record LayerWeights(float[] AttentionNorm, IWeightMatrix Qkv, IWeightMatrix O,
    float[] MlpNorm, ExpertWeights? Mlp, IWeightMatrix? Router, ExpertWeights[] Experts);

/// <summary>
/// A SwiGLU block: down(silu(gate·x) ⊙ up·x); for experts gate/up/down are w1/w3/w2.
/// <see cref="GateUp"/> stacks gate over up (2·F outputs: gate first), one product for both.
/// </summary>
public sealed record ExpertWeights(IWeightMatrix GateUp, IWeightMatrix Down)
{
    /// <summary>Bytes one token streams through this block.</summary>
    public long Bytes => GateUp.Bytes + Down.Bytes;
}

/// <summary>
/// Everything the inference engine reads from a model: the embedding table (fp32, for row lookups),
/// per-layer weights, the final norm, the output head and the rotary tables. Built from a
/// <see cref="Transformer"/> (borrowing its fp32 tensors, so the model must outlive this), from a
/// GGUF file (<see cref="GgufWeights"/>, quantized tensors kept quantized), or by quantizing another
/// set (<see cref="Quantize"/>).
/// </summary>
public sealed class InferenceWeights
{
    /// <summary>Assembles the weights from their parts.</summary>
    public InferenceWeights(ModelConfig config, DenseWeights embedding, LayerWeights[] layers, float[] finalNorm, IWeightMatrix lmHead, RopeTable rope)
    {
        Config = config.Validate();
        if (layers.Length != config.Layers) throw new ArgumentException($"InferenceWeights: {layers.Length} layers for a {config.Layers}-layer config.");
        if (embedding.Rows != config.VocabSize || embedding.Cols != config.Dim || lmHead.Rows != config.VocabSize || lmHead.Cols != config.Dim)
            throw new ArgumentException("InferenceWeights: embedding or lm_head shape does not match the config.");
        int qkv = (config.Heads + 2 * config.KvHeads) * config.HeadDim;
        foreach (var l in layers)
        {
            if (l.Qkv.Rows != qkv || l.Qkv.Cols != config.Dim || l.O.Rows != config.Dim || l.O.Cols != config.Heads * config.HeadDim)
                throw new ArgumentException("InferenceWeights: attention weights do not match the config.");
            foreach (var e in l.Mlp is null ? l.Experts : [l.Mlp])
                if (e.GateUp.Rows != 2 * config.HiddenDim || e.GateUp.Cols != config.Dim || e.Down.Rows != config.Dim || e.Down.Cols != config.HiddenDim)
                    throw new ArgumentException("InferenceWeights: feed-forward weights do not match the config.");
        }
        Embedding = embedding; Layers = layers; FinalNorm = finalNorm; LmHead = lmHead; Rope = rope;
    }

    public ModelConfig Config { get; }
    public DenseWeights Embedding { get; }
    public IReadOnlyList<LayerWeights> Layers { get; }
    public float[] FinalNorm { get; }
    public IWeightMatrix LmHead { get; }
    public RopeTable Rope { get; }

    /// <summary>
    /// Every weight of <paramref name="model"/> by its Hugging Face name. With <paramref name="pack"/>
    /// (the default) the projections are copied into <see cref="PanelWeights"/> (see
    /// <see cref="Packed"/>); without it they are borrowed row-major (q/k/v and gate/up stacked
    /// without copying) and multiplied by <see cref="Tessera.Kernels.DecodeMatMul"/>/<see cref="Tessera.Kernels.Gemm"/>.
    /// </summary>
    public static InferenceWeights FromTransformer(Transformer model, bool pack = true)
    {
        var c = model.Config;
        var p = model.Parameters;
        DenseWeights M(string name) => DenseWeights.Borrow(p[name]);
        float[] V(string name) => p[name].AsSpan("InferenceWeights").ToArray();
        var layers = new LayerWeights[c.Layers];
        for (int i = 0; i < c.Layers; i++)
        {
            string l = $"model.layers.{i}.", a = l + "self_attn.";
            ExpertWeights? mlp = null;
            IWeightMatrix? router = null;
            var experts = Array.Empty<ExpertWeights>();
            if (c.IsMoe)
            {
                string m = l + "block_sparse_moe.";
                router = M(m + "gate.weight");
                experts = new ExpertWeights[c.Experts];
                for (int e = 0; e < c.Experts; e++)
                    experts[e] = new ExpertWeights(DenseWeights.Stack(M(m + $"experts.{e}.w1.weight"), M(m + $"experts.{e}.w3.weight")), M(m + $"experts.{e}.w2.weight"));
            }
            else mlp = new ExpertWeights(DenseWeights.Stack(M(l + "mlp.gate_proj.weight"), M(l + "mlp.up_proj.weight")), M(l + "mlp.down_proj.weight"));
            layers[i] = new LayerWeights(V(l + "input_layernorm.weight"), DenseWeights.Stack(M(a + "q_proj.weight"), M(a + "k_proj.weight"), M(a + "v_proj.weight")),
                M(a + "o_proj.weight"), V(l + "post_attention_layernorm.weight"), mlp, router, experts);
        }
        var embed = M("model.embed_tokens.weight");
        IWeightMatrix head = c.TiedEmbeddings ? embed : M("lm_head.weight");
        var weights = new InferenceWeights(c, embed, layers, V("model.norm.weight"), head, model.Rope);
        return pack ? weights.Packed() : weights;
    }

    /// <summary>
    /// These weights with every fp32 projection (q/k/v, o, gate/up, down, experts, the output head)
    /// repacked as <see cref="PanelWeights"/>, the form the forward pass multiplies fastest at any
    /// row count. The embedding table stays row-major for lookups (a tied head gets its own packed
    /// copy); quantized matrices are kept as they are. The router is packed too (a few rows padded
    /// to one panel), so routing is also the same for a row whatever else shares the pass.
    /// </summary>
    public InferenceWeights Packed()
    {
        static IWeightMatrix P(IWeightMatrix m) => m is DenseWeights d ? PanelWeights.Pack(d) : m;
        static ExpertWeights E(ExpertWeights e) => new(P(e.GateUp), P(e.Down));
        var layers = new LayerWeights[Layers.Count];
        for (int i = 0; i < layers.Length; i++)
        {
            var l = Layers[i];
            layers[i] = l with
            {
                Qkv = P(l.Qkv), O = P(l.O), Mlp = l.Mlp is null ? null : E(l.Mlp), Experts = Array.ConvertAll(l.Experts, E),
                Router = l.Router is null ? null : P(l.Router),
            };
        }
        return new InferenceWeights(Config, Embedding, layers, FinalNorm, P(LmHead), Rope);
    }

    /// <summary>
    /// These weights with every projection matrix (q/k/v, o, gate/up, down, experts, the output
    /// head) quantized to <paramref name="format"/>; the embedding table stays fp32 (it is read one
    /// row per token), as do the norms and the router (tiny, and routing is sensitive to it).
    /// Already-quantized matrices are dequantized first. <see cref="WeightFormat.F32"/> returns this.
    /// </summary>
    public InferenceWeights Quantize(WeightFormat format)
    {
        if (format == WeightFormat.F32) return this;
        IWeightMatrix Q(IWeightMatrix m) => QuantizedWeights.Quantize(ToFloat(m), m.Rows, m.Cols, format);
        var layers = new LayerWeights[Layers.Count];
        for (int i = 0; i < layers.Length; i++)
        {
            var l = Layers[i];
            ExpertWeights E(ExpertWeights e) => new(Q(e.GateUp), Q(e.Down));
            layers[i] = l with { Qkv = Q(l.Qkv), O = Q(l.O), Mlp = l.Mlp is null ? null : E(l.Mlp), Experts = Array.ConvertAll(l.Experts, E) };
        }
        return new InferenceWeights(Config, Embedding, layers, FinalNorm, Q(LmHead), Rope);
    }

    /// <summary>The fp32 values of any weight matrix (a copy).</summary>
    public static float[] ToFloat(IWeightMatrix m) => m switch
    {
        DenseWeights d => d.ToArray(),
        PanelWeights p => p.ToArray(),
        QuantizedWeights q => q.Dequantize(),
        _ => throw new ArgumentException($"InferenceWeights: cannot read the values of a {m.GetType().Name}."),
    };

    /// <summary>
    /// Bytes of weights one decoded token streams: every attention matrix, the router and the
    /// top-k experts of each layer (the average expert size), and the output head. Norm gains and
    /// the one embedding row are negligible and left out.
    /// </summary>
    public long BytesPerToken
    {
        get
        {
            long total = LmHead.Bytes;
            foreach (var l in Layers)
            {
                total += l.Qkv.Bytes + l.O.Bytes;
                if (l.Mlp is not null) total += l.Mlp.Bytes;
                else
                {
                    long experts = 0;
                    foreach (var e in l.Experts) experts += e.Bytes;
                    total += l.Router!.Bytes + experts / l.Experts.Length * Config.TopK;
                }
            }
            return total;
        }
    }

    /// <summary>Bytes of every weight matrix (all experts).</summary>
    public long TotalBytes
    {
        get
        {
            long total = LmHead.Bytes + (ReferenceEquals(LmHead, Embedding) || Config.TiedEmbeddings ? 0 : Embedding.Bytes);
            foreach (var l in Layers)
            {
                total += l.Qkv.Bytes + l.O.Bytes;
                if (l.Mlp is not null) total += l.Mlp.Bytes;
                else { total += l.Router!.Bytes; foreach (var e in l.Experts) total += e.Bytes; }
            }
            return total;
        }
    }
}
