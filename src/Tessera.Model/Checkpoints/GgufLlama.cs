using System.Runtime.InteropServices;
using Tessera.Kernels;
using Tessera.Kernels.Reference;
using Tessera.Tensors;
using Tessera.Text;

namespace Tessera.Model.Checkpoints;

/// <summary>How the weight matrices of a model are stored in a GGUF file.</summary>
public enum GgufWeightType { F32, F16, BF16, Q8_0, Q4_0, Ternary, Q4_K, Q5_K, Q6_K }

/// <summary>Options of <see cref="GgufLlama.Save"/>.</summary>
public sealed record GgufExportOptions
{
    /// <summary>Storage of the weight matrices (norms are always F32, the MoE router F32).</summary>
    public GgufWeightType Type { get; init; } = GgufWeightType.F16;

    /// <summary>Ternary: weights per absmean scale (a multiple of 32); 0 = one scale per tensor.</summary>
    public int TernaryGroup { get; init; } = 64;

    /// <summary>general.name.</summary>
    public string Name { get; init; } = "tessera";

    /// <summary>Extra metadata (keys must not repeat those written for the model or <see cref="Tokenizer"/>).</summary>
    public IReadOnlyList<KeyValuePair<string, object>> Metadata { get; init; } = [];

    /// <summary>
    /// Tokenizer to embed as <c>tokenizer.ggml.*</c> (llama.cpp's <c>gpt2</c> model; see
    /// <see cref="GgufTokenizerMetadata"/>) so llama.cpp can run the file and
    /// <see cref="GgufVocabulary.Load"/> gets the tokenizer back; null = none.
    /// </summary>
    public ITokenizer? Tokenizer { get; init; }
}

/// <summary>
/// The llama architecture in GGUF ↔ Tessera's Hugging Face-named <see cref="Transformer"/>:
/// tensor names (token_embd, blk.N.attn_q/k/v/output, attn_norm, ffn_norm, ffn_gate/up/down, MoE
/// ffn_gate_inp + stacked ffn_gate_exps/ffn_up_exps/ffn_down_exps, output_norm, output), the config
/// from llama.* keys, and RoPE. llama.cpp's llama arch rotates adjacent pairs (x₂ᵢ, x₂ᵢ₊₁) while HF
/// (and Tessera) rotate halves (xᵢ, xᵢ₊d/2); like convert_hf_to_gguf.py, q_proj and k_proj rows are
/// permuted within each head on write (HF row h·d + half·d/2 + j → GGUF row h·d + 2j + half) and
/// unpermuted on read, so the same attention results from both conventions and a round trip is exact.
/// </summary>
public static class GgufLlama
{
    /// <summary>GGUF tensor name of a non-expert HF parameter name; null for names without one (experts).</summary>
    public static string? ToGgufName(string hf)
    {
        switch (hf)
        {
            case "model.embed_tokens.weight": return "token_embd.weight";
            case "model.norm.weight": return "output_norm.weight";
            case "lm_head.weight": return "output.weight";
        }
        const string layers = "model.layers.";
        if (!hf.StartsWith(layers, StringComparison.Ordinal)) return null;
        int dot = hf.IndexOf('.', layers.Length);
        if (dot < 0) return null;
        string blk = "blk." + hf[layers.Length..dot] + ".";
        return hf[(dot + 1)..] switch
        {
            "self_attn.q_proj.weight" => blk + "attn_q.weight",
            "self_attn.k_proj.weight" => blk + "attn_k.weight",
            "self_attn.v_proj.weight" => blk + "attn_v.weight",
            "self_attn.o_proj.weight" => blk + "attn_output.weight",
            "input_layernorm.weight" => blk + "attn_norm.weight",
            "post_attention_layernorm.weight" => blk + "ffn_norm.weight",
            "mlp.gate_proj.weight" => blk + "ffn_gate.weight",
            "mlp.up_proj.weight" => blk + "ffn_up.weight",
            "mlp.down_proj.weight" => blk + "ffn_down.weight",
            "block_sparse_moe.gate.weight" => blk + "ffn_gate_inp.weight",
            _ => null,
        };
    }

    /// <summary>Mixtral expert weights w1/w3/w2 ↔ the stacked (experts, out, in) GGUF tensors of a layer.</summary>
    static readonly (string Hf, string Gguf)[] ExpertKinds = [("w1", "ffn_gate_exps"), ("w3", "ffn_up_exps"), ("w2", "ffn_down_exps")];

    /// <summary>Reads the model shape from llama.* metadata and the tensor shapes.</summary>
    /// <exception cref="InvalidDataException">Not the llama architecture, a missing key, or an impossible shape.</exception>
    public static ModelConfig ReadConfig(GgufReader r)
    {
        var m = r.Metadata;
        string arch = m.Values.TryGetValue("general.architecture", out var a) && a is string s ? s : "(missing)";
        if (arch != "llama") throw new InvalidDataException($"{r.Path}: general.architecture is '{arch}'; Tessera reads the llama architecture.");
        long Int(string key, long? fallback = null)
        {
            long? v;
            try { v = m.GetInteger("llama." + key); }
            catch (FormatException e) { throw new InvalidDataException(e.Message, e); }
            return v ?? fallback ?? throw new InvalidDataException($"{r.Path}: metadata 'llama.{key}' is missing.");
        }
        float Float(string key, float fallback) => m.Values.TryGetValue("llama." + key, out var v)
            ? v switch { float f => f, double d => (float)d, _ => throw new InvalidDataException($"{r.Path}: metadata 'llama.{key}' is {v.GetType().Name}, expected a float.") }
            : fallback;
        if (!r.Contains("token_embd.weight")) throw new InvalidDataException($"{r.Path}: no token_embd.weight tensor.");
        var embd = r.Tensor("token_embd.weight");
        if (embd.Dims.Length != 2) throw new InvalidDataException($"{r.Path}: token_embd.weight must be 2-D.");
        int heads = Small(Int("attention.head_count"), "attention.head_count", r);
        long experts = Int("expert_count", 0);
        ModelConfig config;
        try
        {
            config = new ModelConfig
            {
                VocabSize = Small(embd.Dims[1], "vocab size", r),
                Dim = Small(Int("embedding_length"), "embedding_length", r),
                Layers = Small(Int("block_count"), "block_count", r),
                HiddenDim = Small(Int("feed_forward_length"), "feed_forward_length", r),
                Heads = heads,
                KvHeads = Small(Int("attention.head_count_kv", heads), "attention.head_count_kv", r),
                ContextLength = Small(Int("context_length"), "context_length", r),
                RopeTheta = Float("rope.freq_base", 10000f),
                NormEps = Float("attention.layer_norm_rms_epsilon", 1e-5f),
                Experts = Math.Max(1, Small(experts, "expert_count", r)),
                TopK = Math.Max(1, Small(Int("expert_used_count", 1), "expert_used_count", r)),
                TiedEmbeddings = !r.Contains("output.weight"),
                SlidingWindow = r.Metadata.GetInteger("tessera.sliding_window") is long w ? Small(w, "tessera.sliding_window", r) : 0,
            }.Validate();
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{r.Path}: {e.Message}", e); }
        long rot = Int("rope.dimension_count", config.HeadDim);
        if (rot != config.HeadDim) throw new InvalidDataException($"{r.Path}: llama.rope.dimension_count {rot} ≠ head dim {config.HeadDim}; partial rotary embeddings are not supported.");
        return config;
    }

    static int Small(long v, string what, GgufReader r)
        => v is >= 0 and <= int.MaxValue ? (int)v : throw new InvalidDataException($"{r.Path}: {what} = {v} is out of range.");

    /// <summary>Loads a llama-architecture GGUF as an fp32 <see cref="Transformer"/> (quantized tensors are dequantized).</summary>
    public static Transformer Load(string path)
    {
        using var r = GgufReader.Open(path);
        return Load(r);
    }

    /// <summary>Loads from an open reader.</summary>
    public static Transformer Load(GgufReader r)
    {
        var c = ReadConfig(r);
        var model = new Transformer(c);
        try
        {
            foreach (var p in model.Parameters.All)
            {
                string? name = ToGgufName(p.Name);
                if (name is null) continue;       // experts: below, one stacked tensor per kind
                var data = Read(r, name, p.Shape);
                if (name.EndsWith("attn_q.weight", StringComparison.Ordinal)) data = PermuteRows(data, c.Heads, c.Dim, inverse: true);
                if (name.EndsWith("attn_k.weight", StringComparison.Ordinal)) data = PermuteRows(data, c.KvHeads, c.Dim, inverse: true);
                model.Parameters.Load(p.Name, data);
            }
            if (c.IsMoe)
                for (int l = 0; l < c.Layers; l++)
                    foreach (var (hf, gguf) in ExpertKinds)
                    {
                        var first = model.Parameters[ExpertName(l, 0, hf)];
                        int rows = first.Shape[0], cols = first.Shape[1];
                        var stacked = Read(r, $"blk.{l}.{gguf}.weight", [c.Experts, rows, cols]);
                        for (int e = 0; e < c.Experts; e++)
                            model.Parameters.Load(ExpertName(l, e, hf), stacked.AsSpan(e * rows * cols, rows * cols));
                    }
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    static string ExpertName(int layer, int expert, string kind) => $"model.layers.{layer}.block_sparse_moe.experts.{expert}.{kind}.weight";

    static float[] Read(GgufReader r, string name, ReadOnlySpan<int> torchShape)
    {
        if (!r.Contains(name)) throw new InvalidDataException($"{r.Path}: no tensor named '{name}'.");
        var t = r.Tensor(name);
        bool same = t.Dims.Length == torchShape.Length;
        for (int d = 0; same && d < torchShape.Length; d++) same = t.Dims[d] == torchShape[torchShape.Length - 1 - d];
        if (!same) throw new InvalidDataException($"{r.Path}: tensor '{name}' has ggml dims [{string.Join(", ", t.Dims)}], the model expects [{string.Join(", ", ReversedShape(torchShape))}].");
        return r.ReadFloat32(t);
    }

    static int[] ReversedShape(ReadOnlySpan<int> s) { var a = s.ToArray(); Array.Reverse(a); return a; }

    /// <summary>
    /// Permutes the rows of a q/k projection (heads·d rows of <paramref name="cols"/>) from HF's rotate-half
    /// order to GGUF's interleaved-pair order, or back with <paramref name="inverse"/>.
    /// </summary>
    public static float[] PermuteRows(ReadOnlySpan<float> w, int heads, int cols, bool inverse)
    {
        int rows = w.Length / cols, d = rows / heads;
        if (rows * cols != w.Length || heads * d != rows || d % 2 != 0) throw new ArgumentException($"PermuteRows: {w.Length} weights are not {heads} heads of an even width × {cols}.");
        var result = new float[w.Length];
        for (int h = 0; h < heads; h++)
            for (int half = 0; half < 2; half++)
                for (int j = 0; j < d / 2; j++)
                {
                    int hfRow = h * d + half * (d / 2) + j, ggufRow = h * d + 2 * j + half;
                    var (from, to) = inverse ? (ggufRow, hfRow) : (hfRow, ggufRow);
                    w.Slice(from * cols, cols).CopyTo(result.AsSpan(to * cols, cols));
                }
        return result;
    }

    /// <summary>Writes <paramref name="model"/> as a llama-architecture GGUF (atomic), weights stored as <paramref name="options"/> says.</summary>
    public static void Save(Transformer model, string path, GgufExportOptions options)
    {
        var c = model.Config;
        if (options.Type == GgufWeightType.Ternary && options.TernaryGroup != 0) QuantFormat.CheckGroup(options.TernaryGroup);
        var w = new GgufWriter();
        w.Set("general.architecture", "llama").Set("general.name", options.Name).Set("general.file_type", FileType(options.Type));
        if (options.Type is not (GgufWeightType.F32 or GgufWeightType.F16 or GgufWeightType.BF16)) w.Set("general.quantization_version", 2u);
        w.Set("llama.context_length", (uint)c.ContextLength).Set("llama.embedding_length", (uint)c.Dim)
         .Set("llama.block_count", (uint)c.Layers).Set("llama.feed_forward_length", (uint)c.HiddenDim)
         .Set("llama.rope.dimension_count", (uint)c.HeadDim).Set("llama.attention.head_count", (uint)c.Heads)
         .Set("llama.attention.head_count_kv", (uint)c.KvHeads).Set("llama.rope.freq_base", c.RopeTheta)
         .Set("llama.attention.layer_norm_rms_epsilon", c.NormEps).Set("llama.vocab_size", (uint)c.VocabSize);
        if (c.IsMoe) w.Set("llama.expert_count", (uint)c.Experts).Set("llama.expert_used_count", (uint)c.TopK);
        if (c.SlidingWindow > 0) w.Set("tessera.sliding_window", (uint)c.SlidingWindow);
        if (options.Type == GgufWeightType.Ternary) w.Set("tessera.ternary.group_size", (uint)options.TernaryGroup);
        if (options.Tokenizer is { } tokenizer)
            foreach (var (k, v) in GgufTokenizerMetadata.Build(tokenizer, c.VocabSize)) w.Set(k, v);
        foreach (var (k, v) in options.Metadata) w.Set(k, v);

        var p = model.Parameters;
        void Matrix(string gguf, ReadOnlySpan<float> data, long[] dims, GgufWeightType type)
        {
            var ggmlType = ChooseType(type, dims[0]);
            w.Add(new GgufTensor(gguf, ggmlType, dims, Encode(data, ggmlType, options.TernaryGroup)), options.TernaryGroup);
        }
        void Vector(string gguf, Tensor t) => w.Add(new GgufTensor(gguf, GgmlType.F32, [t.Shape[0]], MemoryMarshal.AsBytes(t.AsSpan("GgufLlama.Save")).ToArray()));
        var embedType = options.Type == GgufWeightType.Ternary ? GgufWeightType.Q8_0 : options.Type;   // BitNet keeps embeddings at ≥ 8 bits

        Matrix("token_embd.weight", p["model.embed_tokens.weight"].AsSpan("GgufLlama.Save"), [c.Dim, c.VocabSize], embedType);
        for (int l = 0; l < c.Layers; l++)
        {
            string hf = $"model.layers.{l}.", blk = $"blk.{l}.";
            Vector(blk + "attn_norm.weight", p[hf + "input_layernorm.weight"]);
            Matrix(blk + "attn_q.weight", PermuteRows(p[hf + "self_attn.q_proj.weight"].AsSpan("GgufLlama.Save"), c.Heads, c.Dim, inverse: false), [c.Dim, c.Heads * c.HeadDim], options.Type);
            Matrix(blk + "attn_k.weight", PermuteRows(p[hf + "self_attn.k_proj.weight"].AsSpan("GgufLlama.Save"), c.KvHeads, c.Dim, inverse: false), [c.Dim, c.KvHeads * c.HeadDim], options.Type);
            Matrix(blk + "attn_v.weight", p[hf + "self_attn.v_proj.weight"].AsSpan("GgufLlama.Save"), [c.Dim, c.KvHeads * c.HeadDim], options.Type);
            Matrix(blk + "attn_output.weight", p[hf + "self_attn.o_proj.weight"].AsSpan("GgufLlama.Save"), [c.Heads * c.HeadDim, c.Dim], options.Type);
            Vector(blk + "ffn_norm.weight", p[hf + "post_attention_layernorm.weight"]);
            if (!c.IsMoe)
            {
                Matrix(blk + "ffn_gate.weight", p[hf + "mlp.gate_proj.weight"].AsSpan("GgufLlama.Save"), [c.Dim, c.HiddenDim], options.Type);
                Matrix(blk + "ffn_up.weight", p[hf + "mlp.up_proj.weight"].AsSpan("GgufLlama.Save"), [c.Dim, c.HiddenDim], options.Type);
                Matrix(blk + "ffn_down.weight", p[hf + "mlp.down_proj.weight"].AsSpan("GgufLlama.Save"), [c.HiddenDim, c.Dim], options.Type);
                continue;
            }
            // llama.cpp keeps the router in full precision: its logits pick the experts.
            Matrix(blk + "ffn_gate_inp.weight", p[hf + "block_sparse_moe.gate.weight"].AsSpan("GgufLlama.Save"), [c.Dim, c.Experts], GgufWeightType.F32);
            foreach (var (kind, gguf) in ExpertKinds)
            {
                var first = p[ExpertName(l, 0, kind)];
                int rows = first.Shape[0], cols = first.Shape[1];
                var stacked = new float[(long)c.Experts * rows * cols];
                for (int e = 0; e < c.Experts; e++) p[ExpertName(l, e, kind)].AsSpan("GgufLlama.Save").CopyTo(stacked.AsSpan(e * rows * cols));
                Matrix($"{blk}{gguf}.weight", stacked, [cols, rows, c.Experts], options.Type);
            }
        }
        Vector("output_norm.weight", p["model.norm.weight"]);
        if (!c.TiedEmbeddings) Matrix("output.weight", p["lm_head.weight"].AsSpan("GgufLlama.Save"), [c.Dim, c.VocabSize], embedType);
        w.Write(path);
    }

    /// <summary>The ggml type for a matrix with rows of <paramref name="rowLength"/>: block formats need whole 32-blocks, else F16 (as llama.cpp falls back).</summary>
    static GgmlType ChooseType(GgufWeightType t, long rowLength) => t switch
    {
        GgufWeightType.F32 => GgmlType.F32,
        GgufWeightType.F16 => GgmlType.F16,
        GgufWeightType.BF16 => GgmlType.BF16,
        _ when rowLength % QuantFormat.BlockSize != 0 => GgmlType.F16,
        GgufWeightType.Q8_0 => GgmlType.Q8_0,
        GgufWeightType.Q4_0 => GgmlType.Q4_0,
        // K-quants need whole 256-weight super-blocks; shorter rows keep the same bit budget in 32-blocks.
        GgufWeightType.Q4_K or GgufWeightType.Q5_K when rowLength % KQuantFormat.SuperBlock != 0 => GgmlType.Q4_0,
        GgufWeightType.Q6_K when rowLength % KQuantFormat.SuperBlock != 0 => GgmlType.Q8_0,
        GgufWeightType.Q4_K => GgmlType.Q4_K,
        GgufWeightType.Q5_K => GgmlType.Q5_K,
        GgufWeightType.Q6_K => GgmlType.Q6_K,
        _ => GgmlType.TesseraTernary,
    };

    static uint FileType(GgufWeightType t) => t switch
    {
        GgufWeightType.F32 => 0, GgufWeightType.F16 => 1, GgufWeightType.Q4_0 => 2, GgufWeightType.Q8_0 => 7,
        GgufWeightType.BF16 => 32, GgufWeightType.Q4_K => 14, GgufWeightType.Q5_K => 16, GgufWeightType.Q6_K => 18, _ => 1024,
    };

    /// <summary>Encodes fp32 values (rows of a multiple of 32 for the block types) as <paramref name="type"/>.</summary>
    public static byte[] Encode(ReadOnlySpan<float> data, GgmlType type, int ternaryGroup)
    {
        switch (type)
        {
            case GgmlType.F32: return MemoryMarshal.AsBytes(data).ToArray();
            case GgmlType.F16:
            case GgmlType.BF16:
            {
                var bits = new ushort[data.Length];
                for (int i = 0; i < bits.Length; i++) bits[i] = type == GgmlType.F16 ? QuantFormat.ToHalf(data[i]) : QuantFormat.ToBFloat16(data[i]);
                return MemoryMarshal.AsBytes(bits.AsSpan()).ToArray();
            }
            case GgmlType.Q8_0: { var b = new byte[QuantFormat.Q8_0Bytes(data.Length)]; ScalarQuant.QuantizeQ8_0(data, b); return b; }
            case GgmlType.Q4_0: { var b = new byte[QuantFormat.Q4_0Bytes(data.Length)]; ScalarQuant.QuantizeQ4_0(data, b); return b; }
            case GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K:
            {
                var k = GgmlTypes.KQuant(type)!.Value;
                var b = new byte[KQuantFormat.Bytes(k, data.Length)];
                ScalarKQuant.Quantize(k, data, b);
                return b;
            }
            case GgmlType.TesseraTernary:
            {
                int group = ternaryGroup == 0 ? Math.Max(32, data.Length) : ternaryGroup;
                long groups = QuantFormat.TernaryGroups(data.Length, group);
                var b = new byte[groups * 2 + QuantFormat.TernaryPackedBytes(data.Length)];
                var scales = new ushort[groups];
                ScalarQuant.QuantizeTernary(data, group, b.AsSpan((int)(groups * 2)), scales);
                MemoryMarshal.AsBytes(scales.AsSpan()).CopyTo(b);
                return b;
            }
            default: throw new NotSupportedException($"GGUF: Tessera does not encode {type}.");
        }
    }
}
