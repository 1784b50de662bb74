using Tessera.Kernels;
using Tessera.Model;
using Tessera.Model.Checkpoints;

namespace Tessera.Inference.Tests;

/// <summary>
/// The engine on ggml K-quants (Q4_K, Q5_K, Q6_K) run natively: the product equals the fp32 product
/// with the dequantized matrix bit for bit and does not depend on which other rows share the call;
/// K-quant GGUF files (Tessera-written here; llama.cpp-written in LlamaCppCrossCheckTests) load
/// without expanding to fp32 and decode like their dequantized weights.
/// </summary>
public class KQuantEngineTests
{
    /// <summary>Every matrix width a multiple of 256 (the super-block); MoE to cover expert slices and a mixed-type stack.</summary>
    internal static readonly ModelConfig Dense256 = new() { VocabSize = 64, Dim = 256, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 512, ContextLength = 64 };
    internal static readonly ModelConfig Moe256 = Dense256 with { Experts = 4, TopK = 2, HiddenDim = 256, TiedEmbeddings = false };

    public static TheoryData<WeightFormat> KFormats => new() { WeightFormat.Q4_K, WeightFormat.Q5_K, WeightFormat.Q6_K };

    [Theory]
    [MemberData(nameof(KFormats))]
    public void ProductIsTheFp32ProductWithTheDequantizedWeightsForEveryRowCount(WeightFormat format) => ProductForEveryRowCount(format, int8: false);

    /// <summary>Q4_K's default int8-activation path: the same batch invariance (its bound against the fp32 product is Int8TilesTests').</summary>
    [Fact]
    public void Int8ActivationProductIsBatchInvariant() => ProductForEveryRowCount(WeightFormat.Q4_K, int8: true);

    static void ProductForEveryRowCount(WeightFormat format, bool int8)
    {
        var r = new Random(8);
        int rows = 45, cols = 512;   // a ragged last tile
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(r.NextDouble() * 2 - 1);
        var q = QuantizedWeights.Quantize(w, rows, cols, format);
        q.Int8Activations = int8;
        Assert.Equal(format, q.Format);
        var dense = DenseWeights.Own(q.Dequantize(), rows, cols);
        var x = new float[70 * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() * 4 - 2);
        // One row alone: the reference every batch must reproduce.
        var single = new float[70 * rows];
        for (int i = 0; i < 70; i++) q.MatMul(x.AsSpan(i * cols, cols), 1, single.AsSpan(i * rows, rows));
        foreach (int n in new[] { 1, 2, 3, 4, 7, 32, 64, 70 })
        {
            var got = new float[n * rows];
            q.MatMul(x.AsSpan(0, n * cols), n, got);
            Assert.Equal(single.AsSpan(0, n * rows).ToArray(), got);   // batch-invariant, bit for bit
            if (n > DecodeMatMul.MaxRows || int8) continue;
            var want = new float[n * rows];
            dense.MatMul(x.AsSpan(0, n * cols), n, want);
            Assert.Equal(want, got);   // same fp32 values, same register tile: identical sums
        }
    }

    [Fact]
    public void KQuantMatricesKeepTheirBytesAndStackExactly()
    {
        var r = new Random(9);
        var a = new float[8 * 256];
        var b = new float[12 * 256];
        for (int i = 0; i < a.Length; i++) a[i] = (float)r.NextDouble() - 0.5f;
        for (int i = 0; i < b.Length; i++) b[i] = (float)r.NextDouble() - 0.5f;
        var qa = QuantizedWeights.Quantize(a, 8, 256, WeightFormat.Q4_K);
        var qb = QuantizedWeights.Quantize(b, 12, 256, WeightFormat.Q4_K);
        qa.Int8Activations = false;
        Assert.Equal(8 * 144, qa.Bytes);   // fp32 path: 144 bytes per 256 weights, 4.5 bits, no fp32 copy
        qa.Int8Activations = true;
        Assert.Equal(8 * 148, qa.Bytes);   // int8 path: the panels (the 6-bit scales and mins unpacked to a byte each)
        var stacked = StackedWeights.Of(qa, qb);
        Assert.IsType<QuantizedWeights>(stacked);
        Assert.Equal([.. qa.Dequantize(), .. qb.Dequantize()], InferenceWeights.ToFloat(stacked));
        var e = Assert.Throws<ArgumentException>(() => QuantizedWeights.Quantize(new float[4 * 96], 4, 96, WeightFormat.Q4_K));
        Assert.Contains("256", e.Message);
    }

    [Theory]
    [InlineData("dense", GgufWeightType.Q4_K)]
    [InlineData("dense", GgufWeightType.Q5_K)]
    [InlineData("dense", GgufWeightType.Q6_K)]
    [InlineData("moe", GgufWeightType.Q4_K)]
    public void KQuantGgufRunsNativelyWithTheLogitsOfItsDequantizedWeights(string name, GgufWeightType type)
    {
        var config = name == "dense" ? Dense256 : Moe256;
        using var model = EngineModels.Build(config, seed: 31);
        string dir = Path.Combine(Path.GetTempPath(), $"tessera-kquant-{Environment.ProcessId}-{name}-{type}");
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "m.gguf");
            GgufModel.Save(model, path, new GgufExportOptions { Type = type });
            using (var r = GgufReader.Open(path))
                Assert.Equal(type.ToString(), r.Tensor("blk.0.attn_q.weight").Type.ToString());
            var weights = GgufWeights.Load(path);
            var kFormat = Enum.Parse<WeightFormat>(type.ToString());
            Assert.Equal(kFormat, Assert.IsType<QuantizedWeights>(weights.Layers[0].Qkv).Format);
            Assert.Equal(kFormat, Assert.IsType<QuantizedWeights>(weights.LmHead).Format);
            // Nothing was expanded: a token streams the stored super-blocks (plus the fp32 router).
            var fp32 = InferenceWeights.FromTransformer(model);
            double bits = type switch { GgufWeightType.Q4_K => 4.5, GgufWeightType.Q5_K => 5.5, _ => 6.5625 };
            Assert.InRange((double)weights.BytesPerToken / fp32.BytesPerToken, bits / 32 * 0.99, bits / 32 * 1.1);

            // Native K-quant decoding on the fp32-activation path == fp32 decoding of the same (dequantized) values, bit for bit.
            Assert.True(QuantizedEngineTests.UseFp32Activations(weights) > 0);
            var dequantized = QuantizedEngineTests.Dequantized(weights);
            var prompt = EngineModels.Prompt(9, config.VocabSize, 3);
            using (var a = new SequenceDecoder(weights))
            using (var b = new SequenceDecoder(dequantized))
            {
                a.Feed(prompt, allLogits: true); b.Feed(prompt, allLogits: true);
                for (int t = 0; t < prompt.Length; t++) Assert.Equal(b.Logits(t).ToArray(), a.Logits(t).ToArray());
            }
            // The training-side reader (GgufModel.Load: every tensor dequantized to fp32) gives the same tokens.
            using var loaded = GgufModel.Load(path);
            Assert.Equal(EngineModels.Greedy(InferenceWeights.FromTransformer(loaded), prompt, 12), EngineModels.Greedy(weights, prompt, 12));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task BatchingEngineRunsKQuantWeightsLikeTheSequenceDecoder()
    {
        using var model = EngineModels.Build(Moe256, seed: 33);
        var q4k = InferenceWeights.FromTransformer(model).Quantize(WeightFormat.Q4_K);
        using var engine = new BatchingEngine(q4k, new BatchingOptions { MaxSequences = 3 });
        var prompts = new[] { 1, 2, 3 }.Select(s => EngineModels.Prompt(4 + s, model.Config.VocabSize, s)).ToArray();
        var runs = prompts.Select(p => EngineModels.Collect(engine.GenerateAsync(new GenerationRequest(p, 10, SamplingOptions.Greedy)))).ToArray();
        var results = await Task.WhenAll(runs);
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(EngineModels.Greedy(q4k, prompts[i], 10), results[i].Select(e => e.Id));
    }
}
