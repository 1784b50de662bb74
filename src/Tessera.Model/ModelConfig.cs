using Tessera.Tensors;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tessera.Model;

/// <summary>
/// Everything that fixes a model's shape. Immutable; derive variants with <c>with</c>.
/// <see cref="Experts"/> ≤ 1 means a dense SwiGLU MLP; otherwise each layer's MLP is a
/// mixture of <see cref="Experts"/> SwiGLU experts with top-<see cref="TopK"/> routing.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>The architecture family (a key of <see cref="Architectures.ArchitectureRegistry"/>): llama, qwen2, qwen3, gemma, gemma2, gemma3.</summary>
    public string Architecture { get; init; } = "llama";
    /// <summary>Number of token ids the embedding and output head cover.</summary>
    public int VocabSize { get; init; } = 4096;
    /// <summary>Residual stream width (hidden_size).</summary>
    public int Dim { get; init; } = 128;
    /// <summary>Number of transformer blocks.</summary>
    public int Layers { get; init; } = 4;
    /// <summary>Query heads per attention layer.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Key/value heads for grouped-query attention; equals <see cref="Heads"/> for plain multi-head.</summary>
    public int KvHeads { get; init; } = 4;
    /// <summary>GLU inner width of the dense MLP or of each expert (intermediate_size; moe_intermediate_size for Qwen3-MoE).</summary>
    public int HiddenDim { get; init; } = 384;
    /// <summary>Experts per MoE layer; 1 is a dense MLP.</summary>
    public int Experts { get; init; } = 1;
    /// <summary>Experts each token is routed to.</summary>
    public int TopK { get; init; } = 1;
    /// <summary>Longest sequence (prompt + generated) in tokens; sizes the RoPE tables and the KV cache.</summary>
    public int ContextLength { get; init; } = 256;
    /// <summary>RoPE base of global layers (and of every layer unless <see cref="RopeThetaLocal"/> is set).</summary>
    public float RopeTheta { get; init; } = 10000f;
    /// <summary>Epsilon added inside RMSNorm.</summary>
    public float NormEps { get; init; } = 1e-5f;
    /// <summary>True when the output head reuses the token embedding matrix.</summary>
    public bool TiedEmbeddings { get; init; } = true;
    /// <summary>0 attends to every earlier token; otherwise the sliding-window size of the local layers.</summary>
    public int SlidingWindow { get; init; }
    /// <summary>Expert capacity as a multiple of the even share (tokens·k/E); 0 = dropless.</summary>
    public float CapacityFactor { get; init; }
    /// <summary>Weight of the Switch load-balancing loss.</summary>
    public float LoadBalanceCoef { get; init; } = 0.01f;
    /// <summary>Weight of the router z-loss.</summary>
    public float RouterZLossCoef { get; init; } = 0.001f;
    /// <summary>Dropout probability applied during training; 0 = off. Inference ignores it.</summary>
    public float Dropout { get; init; }

    // ---- Recipe primitives (set by the architecture; defaults are Llama's) ----

    int headDim;
    /// <summary>Per-head width: head_dim when given (Gemma 256, Qwen3 128), else dim / heads.</summary>
    public int HeadDim { get => headDim > 0 ? headDim : Heads > 0 ? Dim / Heads : 0; init => headDim = value; }
    /// <summary>True when <see cref="HeadDim"/> was set explicitly rather than derived.</summary>
    public bool HasExplicitHeadDim => headDim > 0;
    /// <summary>Biases on the q, k and v projections (Qwen2).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Per-head RMSNorm on q and k before RoPE (Qwen3, Gemma3).</summary>
    public bool QkNorm { get; init; }
    /// <summary>Added to every norm gain: 0 for x·rstd·w, 1 for Gemma's x·rstd·(1 + w).</summary>
    public float NormGainOffset { get; init; }
    /// <summary>Norms on the attention and feed-forward outputs before their residual adds (Gemma2/3).</summary>
    public bool PostNorms { get; init; }
    /// <summary>The GLU activation: SwiGLU (silu) or GeGLU (tanh GELU).</summary>
    public GluActivation Activation { get; init; } = GluActivation.Silu;
    /// <summary>Multiply the input embeddings by √dim (Gemma).</summary>
    public bool ScaleEmbeddings { get; init; }
    /// <summary>Scores are scaled by this value^-½ (Gemma's query_pre_attn_scalar); 0 = HeadDim, the usual 1/√Dh.</summary>
    public float QueryPreAttnScalar { get; init; }
    /// <summary>Attention logit soft-cap c (scores → c·tanh(s/c)); 0 = none (Gemma2).</summary>
    public float AttentionSoftCap { get; init; }
    /// <summary>Final-logit soft-cap; 0 = none (Gemma2).</summary>
    public float FinalSoftCap { get; init; }
    /// <summary>Which layers use the sliding window: 0 = all (Mistral); p &gt; 1 = layer i is local iff (i + 1) mod p ≠ 0 (Gemma2: 2, Gemma3: 6).</summary>
    public int SlidingWindowPattern { get; init; }
    /// <summary>RoPE base of the local layers; 0 = <see cref="RopeTheta"/> (Gemma3: 10k local vs 1M global).</summary>
    public float RopeThetaLocal { get; init; }
    /// <summary>RoPE frequency scaling of the global layers (linear or llama3); null = none.</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>Renormalise the top-k router probabilities to sum to 1 (k &gt; 1; Mixtral, Qwen3-MoE norm_topk_prob).</summary>
    public bool NormalizeTopK { get; init; } = true;

    /// <summary>True when the MLP is a mixture of experts.</summary>
    public bool IsMoe => Experts > 1;

    /// <summary>True when layer <paramref name="layer"/> attends through the sliding window.</summary>
    public bool IsLocalLayer(int layer) => SlidingWindow > 0 && (SlidingWindowPattern <= 1 || (layer + 1) % SlidingWindowPattern != 0);

    /// <summary>The attention window of a layer (0 = global).</summary>
    public int WindowOf(int layer) => IsLocalLayer(layer) ? SlidingWindow : 0;

    /// <summary>The RoPE base and scaling of a layer: local layers with their own base use it unscaled.</summary>
    public (float Theta, RopeScaling? Scaling) RopeOf(int layer)
        => IsLocalLayer(layer) && RopeThetaLocal > 0 ? (RopeThetaLocal, null) : (RopeTheta, RopeScaling);

    /// <summary>The attention score scale actually used.</summary>
    public float EffectiveAttentionScale => 1f / MathF.Sqrt(QueryPreAttnScalar > 0 ? QueryPreAttnScalar : HeadDim);

    /// <summary>Throws one clear <see cref="ArgumentException"/> for the first impossible setting.</summary>
    public ModelConfig Validate()
    {
        void Require(bool ok, string message) { if (!ok) throw new ArgumentException($"Invalid model config: {message}."); }
        Require(Architectures.ArchitectureRegistry.TryGet(Architecture, out _), $"unknown architecture '{Architecture}' (known: {string.Join(", ", Architectures.ArchitectureRegistry.Names)})");
        Require(VocabSize >= 2, $"vocab size {VocabSize} must be at least 2");
        Require(Dim > 0 && Layers > 0 && Heads > 0 && KvHeads > 0 && HiddenDim > 0, "dim, layers, heads, kv-heads and hidden dim must be positive");
        Require(headDim > 0 || Dim % Heads == 0, $"heads ({Heads}) must divide dim ({Dim})");
        Require(HeadDim > 0 && HeadDim % 2 == 0, $"head dim {HeadDim} (= {(headDim > 0 ? "head_dim" : $"dim {Dim} / heads {Heads}")}) must be even for RoPE");
        Require(Heads % KvHeads == 0, $"kv-heads ({KvHeads}) must divide heads ({Heads})");
        Require(Experts >= 1, $"experts ({Experts}) must be at least 1");
        Require(TopK >= 1 && TopK <= Experts, $"top-k ({TopK}) must be between 1 and the number of experts ({Experts})");
        Require(ContextLength >= 1, $"context length {ContextLength} must be positive");
        Require(SlidingWindow >= 0 && SlidingWindowPattern >= 0, $"sliding window {SlidingWindow} and its pattern {SlidingWindowPattern} must be ≥ 0");
        Require(CapacityFactor == 0 || CapacityFactor >= 1f / TopK, $"capacity factor {CapacityFactor} must be 0 (dropless) or large enough to hold a token's top-k");
        Require(RopeTheta > 0 && NormEps > 0 && RopeThetaLocal >= 0, "rope theta and norm eps must be positive");
        Require(QueryPreAttnScalar >= 0 && AttentionSoftCap >= 0 && FinalSoftCap >= 0, "attention scale and soft-caps must be ≥ 0");
        Require(RopeScaling is null || RopeScaling.Factor > 0, $"rope scaling factor {RopeScaling?.Factor} must be positive");
        Require(Dropout is >= 0 and < 1, $"dropout {Dropout} must be in [0, 1)");
        return this;
    }

    /// <summary>Total parameters (all experts).</summary>
    public long ParameterCount => Count(activeOnly: false);
    /// <summary>Parameters touched per token (top-k experts only).</summary>
    public long ActiveParameterCount => Count(activeOnly: true);

    long Count(bool activeOnly)
    {
        long d = Dim, q = (long)Heads * HeadDim, kv = (long)KvHeads * HeadDim;
        long attn = d * q * 2 + d * kv * 2;                       // q, o ; k, v
        if (QkvBias) attn += q + 2 * kv;
        if (QkNorm) attn += 2L * HeadDim;
        long expert = 3 * d * HiddenDim;                          // gate, up, down
        long mlp = IsMoe ? (activeOnly ? TopK : Experts) * expert + d * Experts : expert;
        long perLayer = attn + mlp + (PostNorms ? 4 : 2) * d;     // norm gains
        long embed = (long)VocabSize * d * (TiedEmbeddings ? 1 : 2);
        return Layers * perLayer + embed + d;                     // + final norm
    }

    /// <summary>
    /// Training FLOPs per token: 6 × active matmul parameters (forward 2, backward 4; the embedding
    /// gather, norm gains and biases excluded) plus causal attention's score and value products,
    /// 6 · H·Dh · (average keys seen) per layer, where a causal layer sees T/2 keys on average
    /// and a windowed one at most its window (the Chinchilla accounting, forward 2·2, backward doubled).
    /// </summary>
    public double TrainingFlopsPerToken(int seq)
    {
        long d = Dim, q = (long)Heads * HeadDim, kv = (long)KvHeads * HeadDim;
        long expert = 3 * d * HiddenDim;
        long perLayer = d * q * 2 + d * kv * 2 + (IsMoe ? TopK * expert + d * Experts : expert);
        long matmulParams = Layers * perLayer + (long)VocabSize * d;   // + the output head
        double attention = 0;
        for (int l = 0; l < Layers; l++)
        {
            int w = WindowOf(l);
            double keys = w > 0 && w < seq ? w - w * (w - 1.0) / (2.0 * seq) : seq / 2.0;
            attention += 12.0 * q * keys;                             // (q·k + p·v) · 2 FLOPs, × 3 for forward + backward
        }
        return 6.0 * matmulParams + attention;
    }

    /// <summary>
    /// The one size dial: depth sets width (64 per layer), heads (64-wide), MLP width and
    /// context, the way nanochat derives a model from <c>--depth</c>.
    /// </summary>
    public static ModelConfig FromDepth(int depth, int vocabSize, int experts = 1, int topK = 1)
    {
        if (depth < 1) throw new ArgumentException($"Invalid model config: depth {depth} must be at least 1.");
        int dim = depth * 64;
        int heads = Math.Max(1, dim / 64);
        return new ModelConfig
        {
            VocabSize = vocabSize, Dim = dim, Layers = depth, Heads = heads, KvHeads = heads,
            HiddenDim = experts > 1 ? dim * 2 : dim * 8 / 3 / 32 * 32 + 32, Experts = experts, TopK = topK,
            ContextLength = 256,
        }.Validate();
    }

    /// <summary>
    /// Named presets: ≈1M, ≈10M, ≈28M (medium) and ≈175M (large; large-moe 279M total, 175M active)
    /// parameters, dense and MoE (4 experts, top-2).
    /// </summary>
    public static IReadOnlyDictionary<string, ModelConfig> Presets { get; } = new Dictionary<string, ModelConfig>(StringComparer.OrdinalIgnoreCase)
    {
        ["tiny"] = new() { VocabSize = 4096, Dim = 96, Layers = 4, Heads = 4, KvHeads = 2, HiddenDim = 256, ContextLength = 256 },
        ["tiny-moe"] = new() { VocabSize = 4096, Dim = 96, Layers = 4, Heads = 4, KvHeads = 2, HiddenDim = 128, Experts = 4, TopK = 2, ContextLength = 256 },
        ["small"] = new() { VocabSize = 8192, Dim = 256, Layers = 8, Heads = 8, KvHeads = 4, HiddenDim = 704, ContextLength = 512 },
        ["small-moe"] = new() { VocabSize = 8192, Dim = 256, Layers = 8, Heads = 8, KvHeads = 4, HiddenDim = 352, Experts = 4, TopK = 2, ContextLength = 512 },
        ["medium"] = new() { VocabSize = 8192, Dim = 512, Layers = 8, Heads = 8, KvHeads = 4, HiddenDim = 1408, ContextLength = 1024 },
        ["medium-moe"] = new() { VocabSize = 8192, Dim = 512, Layers = 8, Heads = 8, KvHeads = 4, HiddenDim = 704, Experts = 4, TopK = 2, ContextLength = 1024 },
        ["large"] = new() { VocabSize = 32768, Dim = 1024, Layers = 12, Heads = 16, KvHeads = 8, HiddenDim = 2816, ContextLength = 1024 },
        ["large-moe"] = new() { VocabSize = 32768, Dim = 1024, Layers = 12, Heads = 16, KvHeads = 8, HiddenDim = 1408, Experts = 4, TopK = 2, ContextLength = 1024 },
    };

    /// <summary>A preset by name; the error lists the known names.</summary>
    public static ModelConfig Preset(string name)
        => Presets.TryGetValue(name, out var c) ? c : throw new ArgumentException($"Unknown model preset '{name}'. Known presets: {string.Join(", ", Presets.Keys)}.");

    /// <summary>The config.json of this model in its family's Hugging Face keys (see <see cref="Architectures.Architecture.WriteHf"/>).</summary>
    public string ToHuggingFaceJson()
    {
        var o = new JsonObject();
        Architectures.ArchitectureRegistry.Get(Architecture).WriteHf(this, o);
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// Reads a config.json written by <see cref="ToHuggingFaceJson"/> or by Hugging Face tools: the
    /// family comes from <c>model_type</c> (or the <c>architectures</c> class name; llama when both are absent).
    /// </summary>
    public static ModelConfig FromHuggingFaceJson(string json, string source = "config.json")
    {
        JsonNode root;
        // Duplicate keys are refused at parse time: JsonNode would otherwise throw a bare
        // ArgumentException on first lookup (found by fuzzing the checkpoint loader).
        try { root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) ?? throw new JsonException("empty document"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON ({e.Message})."); }
        if (root is not JsonObject) throw new InvalidDataException($"{source}: expected a JSON object.");
        var h = new Architectures.HfConfig(root, source);
        string? type = h.String("model_type");
        if (type is null && root["architectures"] is JsonArray { Count: > 0 } classes && classes[0]?.GetValue<string>() is { } cls)
            type = cls.Replace("ForCausalLM", "", StringComparison.Ordinal).Replace("ForConditionalGeneration", "", StringComparison.Ordinal).ToLowerInvariant();
        type ??= "llama";
        var arch = Architectures.ArchitectureRegistry.ForHfModelType(type)
            ?? throw new InvalidDataException($"{source}: model_type '{type}' is not a known architecture (known: {string.Join(", ", Architectures.ArchitectureRegistry.HfModelTypes)}).");
        try { return arch.ReadHf(h).Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{source}: {e.Message}", e); }
    }
}
