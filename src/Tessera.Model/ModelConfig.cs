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
    public int VocabSize { get; init; } = 4096;
    /// <summary>Residual stream width (hidden_size).</summary>
    public int Dim { get; init; } = 128;
    public int Layers { get; init; } = 4;
    public int Heads { get; init; } = 4;
    /// <summary>Key/value heads for grouped-query attention; equals <see cref="Heads"/> for plain multi-head.</summary>
    public int KvHeads { get; init; } = 4;
    /// <summary>SwiGLU inner width of the dense MLP or of each expert (intermediate_size).</summary>
    public int HiddenDim { get; init; } = 384;
    public int Experts { get; init; } = 1;
    public int TopK { get; init; } = 1;
    public int ContextLength { get; init; } = 256;
    public float RopeTheta { get; init; } = 10000f;
    public float NormEps { get; init; } = 1e-5f;
    public bool TiedEmbeddings { get; init; } = true;
    /// <summary>0 attends to every earlier token; otherwise the sliding-window size.</summary>
    public int SlidingWindow { get; init; }
    /// <summary>Expert capacity as a multiple of the even share (tokens·k/E); 0 = dropless.</summary>
    public float CapacityFactor { get; init; }
    /// <summary>Weight of the Switch load-balancing loss.</summary>
    public float LoadBalanceCoef { get; init; } = 0.01f;
    /// <summary>Weight of the router z-loss.</summary>
    public float RouterZLossCoef { get; init; } = 0.001f;
    public float Dropout { get; init; }

    /// <summary>Per-head width.</summary>
    public int HeadDim => Dim / Heads;
    /// <summary>True when the MLP is a mixture of experts.</summary>
    public bool IsMoe => Experts > 1;

    /// <summary>Throws one clear <see cref="ArgumentException"/> for the first impossible setting.</summary>
    public ModelConfig Validate()
    {
        void Require(bool ok, string message) { if (!ok) throw new ArgumentException($"Invalid model config: {message}."); }
        Require(VocabSize >= 2, $"vocab size {VocabSize} must be at least 2");
        Require(Dim > 0 && Layers > 0 && Heads > 0 && KvHeads > 0 && HiddenDim > 0, "dim, layers, heads, kv-heads and hidden dim must be positive");
        Require(Dim % Heads == 0, $"heads ({Heads}) must divide dim ({Dim})");
        Require(HeadDim % 2 == 0, $"head dim {HeadDim} (= dim {Dim} / heads {Heads}) must be even for RoPE");
        Require(Heads % KvHeads == 0, $"kv-heads ({KvHeads}) must divide heads ({Heads})");
        Require(Experts >= 1, $"experts ({Experts}) must be at least 1");
        Require(TopK >= 1 && TopK <= Experts, $"top-k ({TopK}) must be between 1 and the number of experts ({Experts})");
        Require(ContextLength >= 1, $"context length {ContextLength} must be positive");
        Require(SlidingWindow >= 0, $"sliding window {SlidingWindow} must be ≥ 0");
        Require(CapacityFactor == 0 || CapacityFactor >= 1f / TopK, $"capacity factor {CapacityFactor} must be 0 (dropless) or large enough to hold a token's top-k");
        Require(RopeTheta > 0 && NormEps > 0, "rope theta and norm eps must be positive");
        Require(Dropout is >= 0 and < 1, $"dropout {Dropout} must be in [0, 1)");
        return this;
    }

    /// <summary>Total parameters (all experts).</summary>
    public long ParameterCount => Count(activeOnly: false);
    /// <summary>Parameters touched per token (top-k experts only).</summary>
    public long ActiveParameterCount => Count(activeOnly: true);

    long Count(bool activeOnly)
    {
        long d = Dim, kv = (long)KvHeads * HeadDim;
        long attn = d * d * 2 + d * kv * 2;                      // q, o ; k, v
        long expert = 3 * d * HiddenDim;                          // gate, up, down
        long mlp = IsMoe ? (activeOnly ? TopK : Experts) * expert + d * Experts : expert;
        long perLayer = attn + mlp + 2 * d;                       // two RMSNorm weights
        long embed = (long)VocabSize * d * (TiedEmbeddings ? 1 : 2);
        return Layers * perLayer + embed + d;                     // + final norm
    }

    /// <summary>
    /// Training FLOPs per token: 6 × active non-embedding-gather parameters (forward 2, backward 4)
    /// plus causal attention's score and value products, 6 · layers · T · dim (averaging the causal
    /// triangle's T/2 keys; forward 2·2, backward doubled), as in the Chinchilla accounting.
    /// </summary>
    public double TrainingFlopsPerToken(int seq)
    {
        long matmulParams = ActiveParameterCount - (long)VocabSize * Dim * (TiedEmbeddings ? 0 : 1) - (2L * Layers + 1) * Dim;
        double attention = 6.0 * Layers * seq * Dim;
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

    /// <summary>Named presets: ≈1M and ≈10M parameters, dense and MoE (4 experts, top-2).</summary>
    public static IReadOnlyDictionary<string, ModelConfig> Presets { get; } = new Dictionary<string, ModelConfig>(StringComparer.OrdinalIgnoreCase)
    {
        ["tiny"] = new() { VocabSize = 4096, Dim = 96, Layers = 4, Heads = 4, KvHeads = 2, HiddenDim = 256, ContextLength = 256 },
        ["tiny-moe"] = new() { VocabSize = 4096, Dim = 96, Layers = 4, Heads = 4, KvHeads = 2, HiddenDim = 128, Experts = 4, TopK = 2, ContextLength = 256 },
        ["small"] = new() { VocabSize = 8192, Dim = 256, Layers = 8, Heads = 8, KvHeads = 4, HiddenDim = 704, ContextLength = 512 },
        ["small-moe"] = new() { VocabSize = 8192, Dim = 256, Layers = 8, Heads = 8, KvHeads = 4, HiddenDim = 352, Experts = 4, TopK = 2, ContextLength = 512 },
    };

    /// <summary>A preset by name; the error lists the known names.</summary>
    public static ModelConfig Preset(string name)
        => Presets.TryGetValue(name, out var c) ? c : throw new ArgumentException($"Unknown model preset '{name}'. Known presets: {string.Join(", ", Presets.Keys)}.");

    /// <summary>Hugging Face config.json (Llama or Mixtral keys) so other tools can read checkpoints.</summary>
    public string ToHuggingFaceJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(IsMoe ? "MixtralForCausalLM" : "LlamaForCausalLM"),
            ["model_type"] = IsMoe ? "mixtral" : "llama",
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = Dim,
            ["intermediate_size"] = HiddenDim,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["max_position_embeddings"] = ContextLength,
            ["rope_theta"] = RopeTheta,
            ["rms_norm_eps"] = NormEps,
            ["tie_word_embeddings"] = TiedEmbeddings,
            ["hidden_act"] = "silu",
            ["torch_dtype"] = "float32",
        };
        if (IsMoe)
        {
            o["num_local_experts"] = Experts;
            o["num_experts_per_tok"] = TopK;
            o["router_aux_loss_coef"] = LoadBalanceCoef;
        }
        if (SlidingWindow > 0) o["sliding_window"] = SlidingWindow;
        o["tessera"] = new JsonObject
        {
            ["capacity_factor"] = CapacityFactor,
            ["router_z_loss_coef"] = RouterZLossCoef,
            ["dropout"] = Dropout,
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Reads a config.json written by <see cref="ToHuggingFaceJson"/> or by Hugging Face tools.</summary>
    public static ModelConfig FromHuggingFaceJson(string json, string source = "config.json")
    {
        JsonNode root;
        // Duplicate keys are refused at parse time: JsonNode would otherwise throw a bare
        // ArgumentException on first lookup (found by fuzzing the checkpoint loader).
        try { root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) ?? throw new JsonException("empty document"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON ({e.Message})."); }
        int Int(string key, int? fallback = null)
            => root[key] is JsonValue v && v.TryGetValue(out int i) ? i
               : fallback ?? throw new InvalidDataException($"{source}: missing integer '{key}'.");
        float Float(JsonNode? node, string key, float fallback)
            => node?[key] is JsonValue v && v.TryGetValue(out double d) ? (float)d : fallback;
        int heads = Int("num_attention_heads");
        var tessera = root["tessera"];
        return new ModelConfig
        {
            VocabSize = Int("vocab_size"),
            Dim = Int("hidden_size"),
            HiddenDim = Int("intermediate_size"),
            Layers = Int("num_hidden_layers"),
            Heads = heads,
            KvHeads = Int("num_key_value_heads", heads),
            ContextLength = Int("max_position_embeddings"),
            RopeTheta = Float(root, "rope_theta", 10000f),
            NormEps = Float(root, "rms_norm_eps", 1e-5f),
            TiedEmbeddings = root["tie_word_embeddings"] is JsonValue t && t.TryGetValue(out bool tied) && tied,
            Experts = Int("num_local_experts", 1),
            TopK = Int("num_experts_per_tok", 1),
            SlidingWindow = Int("sliding_window", 0),
            LoadBalanceCoef = Float(root, "router_aux_loss_coef", 0.01f),
            CapacityFactor = Float(tessera, "capacity_factor", 0f),
            RouterZLossCoef = Float(tessera, "router_z_loss_coef", 0.001f),
            Dropout = Float(tessera, "dropout", 0f),
        }.Validate();
    }
}
