using System.Text.Json.Nodes;
using Tessera.Model.Checkpoints;
using Tessera.Tensors;

namespace Tessera.Model.Architectures;

/// <summary>
/// One model family, declared once: its hyper-parameter keys (HF config.json and GGUF metadata),
/// its tensor-name table, and the recipe flags it sets on <see cref="ModelConfig"/> (norm style,
/// GLU, biases, QK-norm, soft-caps, local/global layers, RoPE). The training graph
/// (<see cref="Transformer"/>) and the inference engine both execute the recipe those flags
/// describe, so a family written here needs no code anywhere else.
/// <para>
/// The base class reads and writes the keys every llama-like family shares (hidden_size,
/// num_attention_heads, rope_theta, … and their GGUF twins <c>{arch}.embedding_length</c>, …);
/// a family overrides <see cref="ReadHf"/>/<see cref="WriteHf"/>/<see cref="ReadGguf"/>/<see cref="WriteGguf"/>
/// only for its own extra keys.
/// </para>
/// </summary>
public abstract class Architecture
{
    /// <summary>The registry key (also <see cref="ModelConfig.Architecture"/>).</summary>
    public abstract string Name { get; }

    /// <summary>HF <c>model_type</c> values this family reads (the first is written for a dense model).</summary>
    public abstract IReadOnlyList<string> HfModelTypes { get; }

    /// <summary>The HF <c>model_type</c> and class written for <paramref name="c"/>.</summary>
    public abstract (string ModelType, string ClassName) HfNames(ModelConfig c);

    /// <summary>GGUF <c>general.architecture</c> values this family reads.</summary>
    public abstract IReadOnlyList<string> GgufNames { get; }

    /// <summary>The GGUF <c>general.architecture</c> written for <paramref name="c"/>.</summary>
    public abstract string GgufName(ModelConfig c);

    /// <summary>The family's fixed recipe flags applied to a config (used by <c>tessera train --arch</c> and the readers).</summary>
    public abstract ModelConfig Apply(ModelConfig c);

    /// <summary>The one tensor-name table for <paramref name="c"/> (dense or MoE, with or without biases and QK-norm).</summary>
    public abstract TensorTable Tensors(ModelConfig c);

    /// <summary>Default of <c>tie_word_embeddings</c> when a config.json omits it.</summary>
    protected virtual bool TiedByDefault => false;

    // ---------------- HF config.json ----------------

    /// <summary>Reads the shared llama-like keys, then the family's own (override and call base).</summary>
    public virtual ModelConfig ReadHf(HfConfig h)
    {
        int heads = h.Int("num_attention_heads"), dim = h.Int("hidden_size"), headDim = h.Int("head_dim", 0);
        var tessera = h.Child("tessera");
        var c = new ModelConfig
        {
            Architecture = Name,
            VocabSize = h.Int("vocab_size"),
            Dim = h.Int("hidden_size"),
            HiddenDim = h.Int("intermediate_size"),
            Layers = h.Int("num_hidden_layers"),
            Heads = heads,
            KvHeads = h.Int("num_key_value_heads", heads),
            HeadDim = headDim > 0 && (long)headDim * heads != dim ? headDim : 0,   // a head_dim equal to dim/heads is the derived one
            ContextLength = h.Int("max_position_embeddings"),
            RopeTheta = h.Float("rope_theta", 10000f),
            NormEps = h.Float("rms_norm_eps", 1e-5f),
            TiedEmbeddings = h.Bool("tie_word_embeddings", TiedByDefault),
            SlidingWindow = h.Int("sliding_window", 0),
            RopeScaling = h.RopeScaling(),
            LoadBalanceCoef = h.Float("router_aux_loss_coef", 0.01f),
            CapacityFactor = tessera?.Float("capacity_factor", 0f) ?? 0f,
            RouterZLossCoef = tessera?.Float("router_z_loss_coef", 0.001f) ?? 0.001f,
            Dropout = tessera?.Float("dropout", 0f) ?? 0f,
        };
        return Apply(c);
    }

    /// <summary>Writes the shared keys, then the family's own (override and call base).</summary>
    public virtual void WriteHf(ModelConfig c, JsonObject o)
    {
        var (type, cls) = HfNames(c);
        o["architectures"] = new JsonArray(cls);
        o["model_type"] = type;
        o["vocab_size"] = c.VocabSize;
        o["hidden_size"] = c.Dim;
        o["intermediate_size"] = c.HiddenDim;
        o["num_hidden_layers"] = c.Layers;
        o["num_attention_heads"] = c.Heads;
        o["num_key_value_heads"] = c.KvHeads;
        if (c.HasExplicitHeadDim) o["head_dim"] = c.HeadDim;
        o["max_position_embeddings"] = c.ContextLength;
        o["rope_theta"] = c.RopeTheta;
        o["rms_norm_eps"] = c.NormEps;
        o["tie_word_embeddings"] = c.TiedEmbeddings;
        o["torch_dtype"] = "float32";
        if (c.SlidingWindow > 0) o["sliding_window"] = c.SlidingWindow;
        if (c.RopeScaling is { } s)
        {
            var r = new JsonObject { ["rope_type"] = s.Type, ["factor"] = s.Factor };
            if (s.Type == "llama3")
            {
                r["low_freq_factor"] = s.LowFreqFactor; r["high_freq_factor"] = s.HighFreqFactor;
                r["original_max_position_embeddings"] = s.OriginalMaxPositions;
            }
            o["rope_scaling"] = r;
        }
        o["tessera"] = new JsonObject
        {
            ["capacity_factor"] = c.CapacityFactor,
            ["router_z_loss_coef"] = c.RouterZLossCoef,
            ["dropout"] = c.Dropout,
        };
    }

    // ---------------- GGUF metadata ----------------

    /// <summary>Reads the shared <c>{arch}.*</c> keys, then the family's own (override and call base).</summary>
    public virtual ModelConfig ReadGguf(GgufKeys k)
    {
        int heads = k.Int("attention.head_count");
        int dim = k.Int("embedding_length");
        int keyLength = k.Int("attention.key_length", 0);
        int headDim = keyLength > 0 ? keyLength : dim / Math.Max(1, heads);
        var c = new ModelConfig
        {
            Architecture = Name,
            VocabSize = k.VocabSize,
            Dim = dim,
            Layers = k.Int("block_count"),
            HiddenDim = k.Int("expert_feed_forward_length", 0) is > 0 and var ef && k.Int("expert_count", 0) > 1 ? ef : k.Int("feed_forward_length"),
            Heads = heads,
            KvHeads = k.Int("attention.head_count_kv", heads),
            HeadDim = keyLength > 0 && keyLength * heads != dim ? keyLength : 0,
            ContextLength = k.Int("context_length"),
            RopeTheta = k.Float("rope.freq_base", 10000f),
            NormEps = k.Float("attention.layer_norm_rms_epsilon", 1e-5f),
            Experts = Math.Max(1, k.Int("expert_count", 0)),
            TopK = Math.Max(1, k.Int("expert_used_count", 1)),
            TiedEmbeddings = !k.HasTensor("output.weight"),
            SlidingWindow = k.Int("attention.sliding_window", 0),
            RopeScaling = k.RopeScaling(),
        };
        int rot = k.Int("rope.dimension_count", headDim);
        if (rot != headDim) throw new InvalidDataException($"{k.Path}: {k.Arch}.rope.dimension_count {rot} ≠ head dim {headDim}; partial rotary embeddings are not supported.");
        return Apply(c);
    }

    /// <summary>Writes the shared <c>{arch}.*</c> keys, then the family's own (override and call base).</summary>
    public virtual void WriteGguf(ModelConfig c, GgufWriter w)
    {
        string a = GgufName(c) + ".";
        w.Set("general.architecture", GgufName(c));
        w.Set(a + "context_length", (uint)c.ContextLength).Set(a + "embedding_length", (uint)c.Dim)
         .Set(a + "block_count", (uint)c.Layers).Set(a + "feed_forward_length", (uint)c.HiddenDim)
         .Set(a + "rope.dimension_count", (uint)c.HeadDim).Set(a + "attention.head_count", (uint)c.Heads)
         .Set(a + "attention.head_count_kv", (uint)c.KvHeads).Set(a + "rope.freq_base", c.RopeTheta)
         .Set(a + "attention.layer_norm_rms_epsilon", c.NormEps).Set(a + "vocab_size", (uint)c.VocabSize)
         .Set(a + "attention.key_length", (uint)c.HeadDim).Set(a + "attention.value_length", (uint)c.HeadDim);
        if (c.IsMoe) w.Set(a + "expert_count", (uint)c.Experts).Set(a + "expert_used_count", (uint)c.TopK);
        if (c.RopeScaling is { } s)
        {
            w.Set(a + "rope.scaling.type", s.Type).Set(a + "rope.scaling.factor", s.Factor);
            if (s.Type == "llama3") w.Set(a + "rope.scaling.original_context_length", (uint)s.OriginalMaxPositions);
        }
    }

    /// <summary>Tensor table entries every llama-like family shares (embedding, final norm, head, attention, dense GLU).</summary>
    protected static List<TensorName> CommonTensors(ModelConfig c, GgufTransform qk = GgufTransform.None, GgufTransform norms = GgufTransform.None)
    {
        const string L = "model.layers.{L}.", B = "blk.{L}.";
        var t = new List<TensorName>
        {
            new(TensorRole.TokenEmbedding, "model.embed_tokens.weight", "token_embd.weight"),
            new(TensorRole.OutputNorm, "model.norm.weight", "output_norm.weight", norms),
            new(TensorRole.AttentionNorm, L + "input_layernorm.weight", B + "attn_norm.weight", norms),
            new(TensorRole.Query, L + "self_attn.q_proj.weight", B + "attn_q.weight", qk),
            new(TensorRole.Key, L + "self_attn.k_proj.weight", B + "attn_k.weight", qk),
            new(TensorRole.Value, L + "self_attn.v_proj.weight", B + "attn_v.weight"),
            new(TensorRole.AttentionOutput, L + "self_attn.o_proj.weight", B + "attn_output.weight"),
        };
        if (!c.TiedEmbeddings) t.Add(new(TensorRole.Output, "lm_head.weight", "output.weight"));
        if (!c.IsMoe)
        {
            t.Add(new(TensorRole.Gate, L + "mlp.gate_proj.weight", B + "ffn_gate.weight"));
            t.Add(new(TensorRole.Up, L + "mlp.up_proj.weight", B + "ffn_up.weight"));
            t.Add(new(TensorRole.Down, L + "mlp.down_proj.weight", B + "ffn_down.weight"));
        }
        return t;
    }

    /// <summary>Tensor names of the Qwen/Gemma-style MoE (<c>mlp.gate</c>, <c>mlp.experts.{E}.{gate,up,down}_proj</c>).</summary>
    protected static IEnumerable<TensorName> MlpExperts()
    {
        const string L = "model.layers.{L}.mlp.", B = "blk.{L}.";
        yield return new(TensorRole.Router, L + "gate.weight", B + "ffn_gate_inp.weight");
        yield return new(TensorRole.ExpertGate, L + "experts.{E}.gate_proj.weight", B + "ffn_gate_exps.weight", GgufTransform.StackedExperts);
        yield return new(TensorRole.ExpertUp, L + "experts.{E}.up_proj.weight", B + "ffn_up_exps.weight", GgufTransform.StackedExperts);
        yield return new(TensorRole.ExpertDown, L + "experts.{E}.down_proj.weight", B + "ffn_down_exps.weight", GgufTransform.StackedExperts);
    }
}

/// <summary>Typed, error-naming access to a config.json object.</summary>
public sealed class HfConfig(JsonNode root, string source)
{
    /// <summary>Where the JSON came from (for errors).</summary>
    public string Source { get; } = source;

    /// <summary>The raw object.</summary>
    public JsonNode Root { get; } = root;

    /// <summary>True when the key is present and not null.</summary>
    public bool Has(string key) => Root[key] is not null;

    /// <summary>An integer key; a missing key without <paramref name="fallback"/> is an error naming it.</summary>
    public int Int(string key, int? fallback = null)
    {
        var node = Root[key];
        if (node is null) return fallback ?? throw new InvalidDataException($"{Source}: missing integer '{key}'.");
        if (node is JsonValue v && v.TryGetValue(out int i)) return i;
        if (node is JsonValue d && d.TryGetValue(out double x) && x == Math.Floor(x) && Math.Abs(x) < int.MaxValue) return (int)x;
        throw new InvalidDataException($"{Source}: '{key}' is {node.ToJsonString()}, expected an integer.");
    }

    /// <summary>A number key (null counts as absent).</summary>
    public float Float(string key, float fallback)
    {
        var node = Root[key];
        if (node is null) return fallback;
        return node is JsonValue v && v.TryGetValue(out double d) ? (float)d : throw new InvalidDataException($"{Source}: '{key}' is {node.ToJsonString()}, expected a number.");
    }

    /// <summary>A boolean key (null counts as absent).</summary>
    public bool Bool(string key, bool fallback)
    {
        var node = Root[key];
        if (node is null) return fallback;
        return node is JsonValue v && v.TryGetValue(out bool b) ? b : throw new InvalidDataException($"{Source}: '{key}' is {node.ToJsonString()}, expected true or false.");
    }

    /// <summary>A string key.</summary>
    public string? String(string key) => Root[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    /// <summary>A nested object, or null.</summary>
    public HfConfig? Child(string key) => Root[key] is JsonObject o ? new HfConfig(o, $"{Source}: {key}") : null;

    /// <summary><c>rope_scaling</c> (linear or llama3); other types are refused by name.</summary>
    public RopeScaling? RopeScaling()
    {
        if (Child("rope_scaling") is not { } s) return null;
        string type = s.String("rope_type") ?? s.String("type") ?? throw new InvalidDataException($"{Source}: rope_scaling has no 'rope_type'.");
        return type switch
        {
            "default" => null,
            "linear" => new RopeScaling("linear", s.Float("factor", 1f)),
            "llama3" => new RopeScaling("llama3", s.Float("factor", 1f), s.Float("low_freq_factor", 1f), s.Float("high_freq_factor", 4f), s.Int("original_max_position_embeddings", 8192)),
            _ => throw new InvalidDataException($"{Source}: rope_scaling type '{type}' is not supported (supported: linear, llama3)."),
        };
    }
}

/// <summary>Typed, error-naming access to a GGUF file's <c>{arch}.*</c> metadata and tensor list.</summary>
public sealed class GgufKeys(GgufReader reader, string arch)
{
    /// <summary>The file.</summary>
    public string Path => Reader.Path;

    /// <summary>The key prefix (general.architecture).</summary>
    public string Arch { get; } = arch;

    /// <summary>The open file.</summary>
    public GgufReader Reader { get; } = reader;

    /// <summary>Rows of token_embd.weight.</summary>
    public int VocabSize
    {
        get
        {
            if (!Reader.Contains("token_embd.weight")) throw new InvalidDataException($"{Path}: no token_embd.weight tensor.");
            var e = Reader.Tensor("token_embd.weight");
            if (e.Dims.Length != 2) throw new InvalidDataException($"{Path}: token_embd.weight must be 2-D.");
            return Small(e.Dims[1], "vocab size");
        }
    }

    /// <summary>True when the file has a tensor of that name.</summary>
    public bool HasTensor(string name) => Reader.Contains(name);

    /// <summary><c>{arch}.{key}</c> as an integer; a missing key without <paramref name="fallback"/> is an error naming it.</summary>
    public int Int(string key, int? fallback = null)
    {
        long? v;
        try { v = Reader.Metadata.GetInteger(Arch + "." + key); }
        catch (FormatException e) { throw new InvalidDataException($"{Path}: {e.Message}", e); }
        return v is { } x ? Small(x, Arch + "." + key) : fallback ?? throw new InvalidDataException($"{Path}: metadata '{Arch}.{key}' is missing.");
    }

    /// <summary><c>{arch}.{key}</c> as a float.</summary>
    public float Float(string key, float fallback) => Reader.Metadata.Values.TryGetValue(Arch + "." + key, out var v)
        ? v switch { float f => f, double d => (float)d, _ => throw new InvalidDataException($"{Path}: metadata '{Arch}.{key}' is {v.GetType().Name}, expected a float.") }
        : fallback;

    /// <summary><c>{arch}.{key}</c> as a string, or null.</summary>
    public string? String(string key) => Reader.Metadata.Values.TryGetValue(Arch + "." + key, out var v) ? v as string : null;

    /// <summary><c>{arch}.rope.scaling.*</c>.</summary>
    public RopeScaling? RopeScaling()
    {
        string? type = String("rope.scaling.type");
        if (type is null or "none") return null;
        float factor = Float("rope.scaling.factor", 1f);
        return type switch
        {
            "linear" => new RopeScaling("linear", factor),
            _ => throw new InvalidDataException($"{Path}: {Arch}.rope.scaling.type '{type}' is not supported (supported: linear)."),
        };
    }

    int Small(long v, string what) => v is >= 0 and <= int.MaxValue ? (int)v : throw new InvalidDataException($"{Path}: {what} = {v} is out of range.");
}
