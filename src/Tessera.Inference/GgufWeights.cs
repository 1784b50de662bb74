using Tessera.Kernels;
using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Tensors;

namespace Tessera.Inference;

/// <summary>
/// Inference weights straight from a llama-architecture GGUF file, keeping Q8_0, Q4_0, Q4_K, Q5_K
/// and Q6_K tensors in their stored blocks (the engine's <see cref="QuantizedWeights"/> read the GGUF bytes as they
/// are), so a quantized file decodes with its own, smaller, bytes per token. F32/F16/BF16 tensors
/// (and the rarer Q2_K/Q3_K) become fp32 (<see cref="DenseWeights.Own"/>); Tessera ternary tensors stay ternary. The token
/// embedding is always fp32 (one row is read per token); with tied embeddings the output head uses
/// the stored, possibly quantized, table. q/k rows are un-permuted from GGUF's interleaved RoPE
/// order as <see cref="GgufLlama.Load(string)"/> does — by moving whole rows of blocks, which is
/// exact; a ternary q/k (scales per flat group) is dequantized to fp32 instead.
/// </summary>
public static class GgufWeights
{
    /// <summary>Reads <paramref name="path"/>; throws <see cref="InvalidDataException"/> for a file that is not a usable llama GGUF.</summary>
    public static InferenceWeights Load(string path)
    {
        using var r = GgufReader.Open(path);
        var c = GgufLlama.ReadConfig(r);
        int D = c.Dim, F = c.HiddenDim, qW = c.Heads * c.HeadDim, kvW = c.KvHeads * c.HeadDim;
        var layers = new LayerWeights[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            string b = $"blk.{l}.";
            var qkv = StackedWeights.Of(Matrix(r, b + "attn_q.weight", qW, D, c.Heads), Matrix(r, b + "attn_k.weight", kvW, D, c.KvHeads), Matrix(r, b + "attn_v.weight", kvW, D));
            ExpertWeights? mlp = null;
            IWeightMatrix? router = null;
            var experts = Array.Empty<ExpertWeights>();
            if (c.IsMoe)
            {
                router = Matrix(r, b + "ffn_gate_inp.weight", c.Experts, D);
                experts = new ExpertWeights[c.Experts];
                for (int e = 0; e < c.Experts; e++)
                    experts[e] = new ExpertWeights(StackedWeights.Of(Expert(r, b + "ffn_gate_exps.weight", e, c.Experts, F, D), Expert(r, b + "ffn_up_exps.weight", e, c.Experts, F, D)),
                        Expert(r, b + "ffn_down_exps.weight", e, c.Experts, D, F));
            }
            else mlp = new ExpertWeights(StackedWeights.Of(Matrix(r, b + "ffn_gate.weight", F, D), Matrix(r, b + "ffn_up.weight", F, D)), Matrix(r, b + "ffn_down.weight", D, F));
            layers[l] = new LayerWeights(Vector(r, b + "attn_norm.weight", D), qkv, Matrix(r, b + "attn_output.weight", D, qW),
                Vector(r, b + "ffn_norm.weight", D), mlp, router, experts);
        }
        var embd = Info(r, "token_embd.weight", c.VocabSize, D);
        var embedding = DenseWeights.Own(r.ReadFloat32(embd), c.VocabSize, D);
        IWeightMatrix head = c.TiedEmbeddings
            ? embd.Type is GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K ? Matrix(r, "token_embd.weight", c.VocabSize, D) : embedding
            : Matrix(r, "output.weight", c.VocabSize, D);
        return new InferenceWeights(c, embedding, layers, Vector(r, "output_norm.weight", D), head, new RopeTable(c.ContextLength, c.HeadDim, c.RopeTheta)).Packed();
    }

    /// <summary>A (rows, cols) matrix; <paramref name="ropeHeads"/> &gt; 0 un-permutes q/k rows per head.</summary>
    static IWeightMatrix Matrix(GgufReader r, string name, int rows, int cols, int ropeHeads = 0)
    {
        var t = Info(r, name, rows, cols);
        switch (t.Type)
        {
            case GgmlType.Q8_0:
            {
                var bytes = Unpermute(r.Bytes(t), rows, (int)QuantFormat.Q8_0Bytes(cols), ropeHeads);
                return new QuantizedWeights(new Q8_0Matrix(rows, cols, bytes));
            }
            case GgmlType.Q4_0:
            {
                var bytes = Unpermute(r.Bytes(t), rows, (int)QuantFormat.Q4_0Bytes(cols), ropeHeads);
                return new QuantizedWeights(new Q4_0Matrix(rows, cols, bytes));
            }
            case GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K:
            {
                var k = GgmlTypes.KQuant(t.Type)!.Value;
                var bytes = Unpermute(r.Bytes(t), rows, (int)KQuantFormat.Bytes(k, cols), ropeHeads);
                return new QuantizedWeights(k, rows, cols, bytes);
            }
            case GgmlType.TesseraTernary when ropeHeads == 0:
            {
                var scales = GgufReader.SplitTernary(t, r.Bytes(t), out var codes);
                return new QuantizedWeights(new TernaryMatrix(rows, cols, t.TernaryGroup, codes, scales));
            }
            default:
            {
                var w = r.ReadFloat32(t);
                if (ropeHeads > 0) w = GgufLlama.PermuteRows(w, ropeHeads, cols, inverse: true);
                return DenseWeights.Own(w, rows, cols);
            }
        }
    }

    /// <summary>Expert <paramref name="e"/>'s (rows, cols) slice of a stacked (experts, rows, cols) tensor.</summary>
    static IWeightMatrix Expert(GgufReader r, string name, int e, int experts, int rows, int cols)
    {
        if (!r.Contains(name)) throw new InvalidDataException($"{r.Path}: no tensor named '{name}'.");
        var t = r.Tensor(name);
        if (t.Dims.Length != 3 || t.Dims[0] != cols || t.Dims[1] != rows || t.Dims[2] != experts)
            throw new InvalidDataException($"{r.Path}: tensor '{name}' has ggml dims [{string.Join(", ", t.Dims)}], expected [{cols}, {rows}, {experts}].");
        long n = (long)rows * cols;
        switch (t.Type)
        {
            case GgmlType.Q8_0:
                return new QuantizedWeights(new Q8_0Matrix(rows, cols, r.Bytes(t).Slice((int)(e * QuantFormat.Q8_0Bytes(n)), (int)QuantFormat.Q8_0Bytes(n))));
            case GgmlType.Q4_0:
                return new QuantizedWeights(new Q4_0Matrix(rows, cols, r.Bytes(t).Slice((int)(e * QuantFormat.Q4_0Bytes(n)), (int)QuantFormat.Q4_0Bytes(n))));
            case GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K:
            {
                var k = GgmlTypes.KQuant(t.Type)!.Value;
                long bytes = KQuantFormat.Bytes(k, n);
                return new QuantizedWeights(k, rows, cols, r.Bytes(t).Slice((int)(e * bytes), (int)bytes));
            }
            default:
                return DenseWeights.Own(r.ReadFloat32(t).AsSpan((int)(e * n), (int)n), rows, cols);
        }
    }

    static float[] Vector(GgufReader r, string name, int length)
    {
        if (!r.Contains(name)) throw new InvalidDataException($"{r.Path}: no tensor named '{name}'.");
        var t = r.Tensor(name);
        if (t.ElementCount != length) throw new InvalidDataException($"{r.Path}: tensor '{name}' has {t.ElementCount} elements, expected {length}.");
        return r.ReadFloat32(t);
    }

    static GgufTensorInfo Info(GgufReader r, string name, int rows, int cols)
    {
        if (!r.Contains(name)) throw new InvalidDataException($"{r.Path}: no tensor named '{name}'.");
        var t = r.Tensor(name);
        if (t.Dims.Length != 2 || t.Dims[0] != cols || t.Dims[1] != rows)
            throw new InvalidDataException($"{r.Path}: tensor '{name}' has ggml dims [{string.Join(", ", t.Dims)}], expected [{cols}, {rows}].");
        return t;
    }

    /// <summary>Rows of <paramref name="rowBytes"/> moved from GGUF's q/k order back to rotate-half order (see <see cref="GgufLlama.PermuteRows"/>).</summary>
    static byte[] Unpermute(ReadOnlySpan<byte> data, int rows, int rowBytes, int heads)
    {
        if (heads == 0) return data.ToArray();
        int d = rows / heads;
        var result = new byte[data.Length];
        for (int h = 0; h < heads; h++)
            for (int half = 0; half < 2; half++)
                for (int j = 0; j < d / 2; j++)
                {
                    int hfRow = h * d + half * (d / 2) + j, ggufRow = h * d + 2 * j + half;
                    data.Slice(ggufRow * rowBytes, rowBytes).CopyTo(result.AsSpan(hfRow * rowBytes, rowBytes));
                }
        return result;
    }
}
