using System.Runtime.InteropServices;
using Tessera.Kernels;
using Tessera.Model.Architectures;
using Tessera.Kernels.Reference;
using Tessera.Tensors;
using Tessera.Text;

namespace Tessera.Model.Checkpoints;

/// <summary>How the weight matrices of a model are stored in a GGUF file.</summary>
public enum GgufWeightType
{
    /// <summary>32-bit floats.</summary>
    F32,
    /// <summary>IEEE half precision.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>ggml Q8_0: blocks of 32 int8 values with one fp16 scale.</summary>
    Q8_0,
    /// <summary>ggml Q4_0: blocks of 32 4-bit values with one fp16 scale.</summary>
    Q4_0,
    /// <summary>Tessera ternary: {-1, 0, +1} codes with per-group absmean scales.</summary>
    Ternary,
    /// <summary>ggml Q4_K super-blocks of 256 4-bit weights.</summary>
    Q4_K,
    /// <summary>ggml Q5_K super-blocks of 256 5-bit weights.</summary>
    Q5_K,
    /// <summary>ggml Q6_K super-blocks of 256 6-bit weights.</summary>
    Q6_K
}

/// <summary>Options of <see cref="GgufModel.Save"/>.</summary>
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
/// Any registered architecture in GGUF ↔ Tessera's Hugging Face-named <see cref="Transformer"/>:
/// the family's keys (<see cref="Architectures.Architecture.ReadGguf"/>/<see cref="Architectures.Architecture.WriteGguf"/>) and
/// its one tensor table (token_embd, blk.N.attn_q/k/v/output, …, MoE ffn_gate_inp + stacked
/// ffn_*_exps). Storage transforms follow llama.cpp: the llama arch rotates adjacent pairs
/// (x₂ᵢ, x₂ᵢ₊₁) while HF (and Tessera) rotate halves (xᵢ, xᵢ₊d/2), so like convert_hf_to_gguf.py its
/// q_proj and k_proj rows are permuted within each head on write (HF row h·d + half·d/2 + j → GGUF
/// row h·d + 2j + half) and unpermuted on read; Gemma norms are stored as 1 + w.
/// </summary>
public static class GgufModel
{
    /// <summary>Reads the model shape of whatever registered architecture the file declares.</summary>
    /// <exception cref="InvalidDataException">An unknown architecture, a missing key, or an impossible shape.</exception>
    public static ModelConfig ReadConfig(GgufReader r)
    {
        string arch = r.Metadata.Values.TryGetValue("general.architecture", out var a) && a is string s ? s : "(missing)";
        var family = ArchitectureRegistry.ForGguf(arch)
            ?? throw new InvalidDataException($"{r.Path}: general.architecture is '{arch}'; Tessera reads {string.Join(", ", ArchitectureRegistry.GgufArchitectures)}.");
        try { return family.ReadGguf(new GgufKeys(r, arch)).Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{r.Path}: {e.Message}", e); }
    }

    /// <summary>Loads a GGUF as an fp32 <see cref="Transformer"/> (quantized tensors are dequantized).</summary>
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
        var names = model.Recipe.Names;
        try
        {
            var stacked = new Dictionary<string, float[]>();
            foreach (var (role, layer, expert) in TensorInstances.Of(c, names))
            {
                var p = model.Parameters[names.Hf(role, layer, expert)];
                string name = names.Gguf(role, layer);
                var transform = names.Transform(role);
                float[] data;
                if (transform.HasFlag(GgufTransform.StackedExperts))
                {
                    int rows = p.Shape[0], cols = p.Shape[1];
                    if (!stacked.TryGetValue(name, out var all)) stacked[name] = all = Read(r, name, [c.Experts, rows, cols]);
                    data = all.AsSpan(expert * rows * cols, rows * cols).ToArray();
                }
                else data = Read(r, name, p.Shape);
                if (transform.HasFlag(GgufTransform.PermuteHeads)) data = PermuteRows(data, role == TensorRole.Query ? c.Heads : c.KvHeads, c.Dim, inverse: true);
                if (transform.HasFlag(GgufTransform.AddOne)) for (int i = 0; i < data.Length; i++) data[i] -= 1f;
                model.Parameters.Load(p.Name, data);
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

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

    /// <summary>Writes <paramref name="model"/> as a GGUF of its family (atomic), weights stored as <paramref name="options"/> says.</summary>
    public static void Save(Transformer model, string path, GgufExportOptions options)
    {
        var c = model.Config;
        var family = ArchitectureRegistry.Get(c.Architecture);
        var names = model.Recipe.Names;
        if (options.Type == GgufWeightType.Ternary && options.TernaryGroup != 0) QuantFormat.CheckGroup(options.TernaryGroup);
        if (c.RopeScaling is { Type: not "linear" } s) throw new NotSupportedException($"GGUF export: rope scaling '{s.Type}' is not written by Tessera (llama.cpp keeps it as a rope_freqs tensor).");
        var w = new GgufWriter();
        family.WriteGguf(c, w);
        w.Set("general.name", options.Name).Set("general.file_type", FileType(options.Type));
        if (options.Type is not (GgufWeightType.F32 or GgufWeightType.F16 or GgufWeightType.BF16)) w.Set("general.quantization_version", 2u);
        if (options.Type == GgufWeightType.Ternary) w.Set("tessera.ternary.group_size", (uint)options.TernaryGroup);
        if (options.Tokenizer is { } tokenizer)
            foreach (var (k, v) in GgufTokenizerMetadata.Build(tokenizer, c.VocabSize)) w.Set(k, v);
        foreach (var (k, v) in options.Metadata) w.Set(k, v);

        var p = model.Parameters;
        var embedType = options.Type == GgufWeightType.Ternary ? GgufWeightType.Q8_0 : options.Type;   // BitNet keeps embeddings at ≥ 8 bits
        var done = new HashSet<string>();
        foreach (var (role, layer, expert) in TensorInstances.Of(c, names))
        {
            string gguf = names.Gguf(role, layer);
            if (!done.Add(gguf)) continue;   // a stacked expert tensor is written once, with all experts
            var transform = names.Transform(role);
            var t = p[names.Hf(role, layer, expert)];
            if (t.Rank == 1)
            {
                var v = t.AsSpan("GgufModel.Save").ToArray();
                if (transform.HasFlag(GgufTransform.AddOne)) for (int i = 0; i < v.Length; i++) v[i] += 1f;
                w.Add(new GgufTensor(gguf, GgmlType.F32, [v.Length], MemoryMarshal.AsBytes(v.AsSpan()).ToArray()));
                continue;
            }
            int rows = t.Shape[0], cols = t.Shape[1];
            // llama.cpp keeps the router in full precision (its logits pick the experts) and the
            // embedding / output head at ≥ 8 bits for ternary files.
            var type = role == TensorRole.Router ? GgufWeightType.F32 : role is TensorRole.TokenEmbedding or TensorRole.Output ? embedType : options.Type;
            float[] data;
            long[] dims;
            if (transform.HasFlag(GgufTransform.StackedExperts))
            {
                data = new float[(long)c.Experts * rows * cols];
                for (int e = 0; e < c.Experts; e++) p[names.Hf(role, layer, e)].AsSpan("GgufModel.Save").CopyTo(data.AsSpan(e * rows * cols));
                dims = [cols, rows, c.Experts];
            }
            else
            {
                data = t.AsSpan("GgufModel.Save").ToArray();
                if (transform.HasFlag(GgufTransform.PermuteHeads)) data = PermuteRows(data, role == TensorRole.Query ? c.Heads : c.KvHeads, c.Dim, inverse: false);
                dims = [cols, rows];
            }
            var ggmlType = ChooseType(type, dims[0]);
            w.Add(new GgufTensor(gguf, ggmlType, dims, Encode(data, ggmlType, options.TernaryGroup)), options.TernaryGroup);
        }
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
