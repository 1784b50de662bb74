using Tessera.Kernels;
using Tessera.Model;
using Tessera.Model.Architectures;
using Tessera.Model.Checkpoints;
using Tessera.Tensors;

namespace Tessera.Inference;

/// <summary>
/// Inference weights straight from a GGUF file of any registered architecture, keeping Q8_0, Q4_0,
/// Q4_K, Q5_K and Q6_K tensors in their stored blocks (the engine's <see cref="QuantizedWeights"/>
/// read the GGUF bytes as they are), so a quantized file decodes with its own, smaller, bytes per
/// token. F32/F16/BF16 tensors (and the rarer Q2_K/Q3_K) become fp32 (<see cref="DenseWeights.Own"/>);
/// Tessera ternary tensors stay ternary. The token embedding is always fp32 (one row is read per token); with tied embeddings
/// the output head uses the stored, possibly quantized, table. Names and storage transforms come
/// from the family's <see cref="TensorTable"/>: q/k rows of the llama arch are un-permuted from
/// GGUF's interleaved RoPE order by moving whole rows of blocks (exact; a ternary q/k, whose
/// scales are per flat group, is dequantized to fp32 instead), and norms that llama.cpp stores
/// as 1 + w (Gemma) are used as stored with no offset.
/// </summary>
public static class GgufWeights
{
    /// <summary>Reads <paramref name="path"/>; throws <see cref="InvalidDataException"/> for a file that is not a usable model GGUF.</summary>
    public static InferenceWeights Load(string path)
    {
        using var r = GgufReader.Open(path);
        var c = GgufModel.ReadConfig(r);
        return InferenceWeights.Build(c, new Source(r, c)).Packed();
    }

    sealed class Source(GgufReader r, ModelConfig c) : IWeightSource
    {
        readonly TensorTable names = ArchitectureRegistry.Get(c.Architecture).Tensors(c);

        public IWeightMatrix Matrix(TensorRole role, int layer, int expert, int rows, int cols)
        {
            string name = names.Gguf(role, layer);
            var transform = names.Transform(role);
            if (transform.HasFlag(GgufTransform.StackedExperts)) return Expert(r, name, expert, c.Experts, rows, cols);
            int heads = !transform.HasFlag(GgufTransform.PermuteHeads) ? 0 : role == TensorRole.Query ? c.Heads : c.KvHeads;
            return GgufWeights.Matrix(r, name, rows, cols, heads);
        }

        public NormWeights Norm(TensorRole role, int layer, int length)
        {
            var w = Vector(role, layer, length);
            return names.Transform(role).HasFlag(GgufTransform.AddOne) ? new NormWeights(w, 0f) : new NormWeights(w, c.NormGainOffset);
        }

        public float[] Vector(TensorRole role, int layer, int length) => GgufWeights.Vector(r, names.Gguf(role, layer), length);

        public DenseWeights Embedding(int rows, int cols) => DenseWeights.Own(r.ReadFloat32(Info(r, "token_embd.weight", rows, cols)), rows, cols);

        public IWeightMatrix TiedHead(DenseWeights embedding)
            => r.Tensor("token_embd.weight").Type is GgmlType.Q8_0 or GgmlType.Q5_0 or GgmlType.IQ4_NL or GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K ? GgufWeights.Matrix(r, "token_embd.weight", c.VocabSize, c.Dim) : embedding;
    }

    /// <summary>A (rows, cols) matrix; <paramref name="ropeHeads"/> &gt; 0 un-permutes q/k rows per head.</summary>
    static IWeightMatrix Matrix(GgufReader r, string name, int rows, int cols, int ropeHeads = 0)
    {
        var t = Info(r, name, rows, cols);
        switch (t.Type)
        {
            case GgmlType.Q8_0 or GgmlType.Q5_0 or GgmlType.IQ4_NL:
            {
                // Q5_0 and IQ4_NL are rewritten as the Q8_0 blocks of the same values (GgmlTypes.ToQ8_0), losslessly.
                var q8 = t.Type == GgmlType.Q8_0 ? r.Bytes(t) : GgmlTypes.ToQ8_0(t.Type, r.Bytes(t));
                var bytes = Unpermute(q8, rows, (int)QuantFormat.Q8_0Bytes(cols), ropeHeads);
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
                if (ropeHeads > 0) w = GgufModel.PermuteRows(w, ropeHeads, cols, inverse: true);
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
            case GgmlType.Q5_0 or GgmlType.IQ4_NL:
            {
                long blockBytes = GgmlTypes.Geometry(t.Type)!.Value.Bytes, bytes = n / QuantFormat.BlockSize * blockBytes;
                return new QuantizedWeights(new Q8_0Matrix(rows, cols, GgmlTypes.ToQ8_0(t.Type, r.Bytes(t).Slice((int)(e * bytes), (int)bytes))));
            }
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

    /// <summary>Rows of <paramref name="rowBytes"/> moved from GGUF's q/k order back to rotate-half order (see <see cref="GgufModel.PermuteRows"/>).</summary>
    static ReadOnlySpan<byte> Unpermute(ReadOnlySpan<byte> data, int rows, int rowBytes, int heads)
    {
        if (heads == 0) return data;   // the matrix copies its blocks itself
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
