using Tessera.Kernels;
using Tessera.Model;
using Tessera.Model.Checkpoints;

namespace Tessera.Inference.Tests;

/// <summary>The engine on quantized weights: per-matrix error bounds, greedy agreement with fp32, GGUF loading.</summary>
public class QuantizedEngineTests
{
    const double U = 1.0 / (1 << 24);

    /// <summary>Shapes whose every matrix width is a multiple of 32 (the quantized block).</summary>
    static readonly ModelConfig Dense = EngineModels.Dense with { HiddenDim = 64 };
    static readonly ModelConfig Moe = EngineModels.MoeTop2 with { HiddenDim = 32 };

    /// <summary>The same weights with every quantized matrix replaced by its fp32 values.</summary>
    internal static InferenceWeights Dequantized(InferenceWeights q)
    {
        IWeightMatrix D(IWeightMatrix m) => m is QuantizedWeights ? DenseWeights.Own(InferenceWeights.ToFloat(m), m.Rows, m.Cols) : m;
        var layers = q.Layers.Select(l => l with
        {
            Qkv = D(l.Qkv), O = D(l.O),
            Mlp = l.Mlp is null ? null : new ExpertWeights(D(l.Mlp.GateUp), D(l.Mlp.Down)),
            Experts = l.Experts.Select(e => new ExpertWeights(D(e.GateUp), D(e.Down))).ToArray(),
        }).ToArray();
        return new InferenceWeights(q.Config, q.Embedding, layers, q.FinalNorm, D(q.LmHead), q.Ropes);
    }

    /// <summary>Switches every quantized matrix of <paramref name="w"/> to the fp32-activation path (the one that is exactly the dequantized product); returns how many.</summary>
    internal static int UseFp32Activations(InferenceWeights w)
    {
        int count = 0;
        void F(IWeightMatrix m) { if (m is QuantizedWeights q) { q.Int8Activations = false; count++; } }
        foreach (var l in w.Layers)
        {
            F(l.Qkv); F(l.O);
            if (l.Mlp is { } mlp) { F(mlp.GateUp); F(mlp.Down); }
            foreach (var e in l.Experts) { F(e.GateUp); F(e.Down); }
        }
        F(w.LmHead);
        return count;
    }

    [Theory]
    [InlineData(WeightFormat.Q8_0)]
    [InlineData(WeightFormat.Q4_0)]
    [InlineData(WeightFormat.Ternary)]
    public void QuantizedProductIsWithinTheInt8ActivationBoundOfItsDequantizedWeights(WeightFormat format)
    {
        var r = new Random(3);
        int rows = 37, cols = 96;
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(r.NextDouble() * 2 - 1);
        var q = QuantizedWeights.Quantize(w, rows, cols, format);
        var wq = q.Dequantize();
        foreach (int n in new[] { 1, 2, 5 })
        {
            var x = new float[n * cols + 7];   // longer buffers, as the engine's are
            for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() * 4 - 2);
            var y = new float[n * rows + 3];
            q.MatMul(x, n, y);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < rows; j++)
                {
                    // Ternary, Q8_0 and Q4_0 (by default) quantize activations to int8 per 32-block: |x̂ − x| ≤ d/2, d = max|x_block|/127; plus fp32 summation.
                    double exact = 0, act = 0, mag = 0;
                    for (int b = 0; b < cols / 32; b++)
                    {
                        double amax = 0;
                        for (int p = 0; p < 32; p++) amax = Math.Max(amax, Math.Abs(x[i * cols + b * 32 + p]));
                        for (int p = b * 32; p < b * 32 + 32; p++)
                        {
                            double xv = x[i * cols + p], wv = wq[j * cols + p];
                            exact += xv * wv;
                            act += amax / 127 / 2 * Math.Abs(wv);
                            mag += Math.Abs((xv + amax / 254) * wv);
                        }
                    }
                    double tol = act + 2 * (cols + 2) * U * mag;
                    Assert.True(Math.Abs(y[i * rows + j] - exact) <= tol, $"{format} n={n} ({i},{j}): {y[i * rows + j]} vs {exact} (tol {tol})");
                }
        }
    }

    [Fact]
    public void Q8_0GreedyTokensEqualFp32OnADenseModel()
    {
        using var model = EngineModels.Build(Dense, seed: 21);
        var fp32 = InferenceWeights.FromTransformer(model);
        var q8 = fp32.Quantize(WeightFormat.Q8_0);
        foreach (int salt in new[] { 1, 2, 3 })
        {
            var prompt = EngineModels.Prompt(5, model.Config.VocabSize, salt);
            Assert.Equal(EngineModels.Greedy(fp32, prompt, 16), EngineModels.Greedy(q8, prompt, 16));
        }
        // A Q8_0 block is 34 bytes per 32 weights where fp32 needs 128 (the router stays fp32).
        Assert.InRange((double)q8.BytesPerToken / fp32.BytesPerToken, 34.0 / 128, 0.5);
    }

    /// <summary>Mean over teacher-forced positions of KL(p_reference ‖ p_candidate), nats.</summary>
    static double MeanKl(InferenceWeights reference, InferenceWeights candidate, int[] tokens)
    {
        using var a = new SequenceDecoder(reference);
        using var b = new SequenceDecoder(candidate);
        a.Feed(tokens, allLogits: true);
        b.Feed(tokens, allLogits: true);
        double kl = 0;
        for (int t = 0; t < tokens.Length; t++)
        {
            var la = a.Logits(t);
            var lb = b.Logits(t);
            double za = ReferenceEngine.LogSumExp(la), zb = ReferenceEngine.LogSumExp(lb);
            for (int v = 0; v < la.Length; v++) kl += Math.Exp(la[v] - za) * ((la[v] - za) - (lb[v] - zb));
        }
        return kl / tokens.Length;
    }

    /// <summary>
    /// Judged by statistics (as quantization is, llama.cpp-style): mean KL over 40 teacher-forced
    /// positions, stated bound 0.1 nats. Measured on these models: ≤ 0.003 dense, ≤ 0.05 with experts
    /// (a near-tied router choice can flip under rounding). The same statistic for a model with
    /// other weights is checked to exceed the bound, so the test can tell a broken engine from a
    /// quantized one.
    /// </summary>
    [Theory]
    [InlineData(WeightFormat.Q8_0)]
    [InlineData(WeightFormat.Q4_0)]
    public void BlockFormatsComputeTheFp32ProductWithTheDequantizedWeightsBitForBit(WeightFormat format)
    {
        var r = new Random(4);
        int rows = 45, cols = 160;   // a ragged last tile
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(r.NextDouble() * 2 - 1);
        var q = QuantizedWeights.Quantize(w, rows, cols, format);
        q.Int8Activations = false;   // the fp32-activation path (the int8 one is Int8TilesTests' and the bound test's)
        var dense = DenseWeights.Own(q.Dequantize(), rows, cols);
        foreach (int n in new[] { 1, 2, 3, 4, 7, 32, 70 })
        {
            var x = new float[n * cols];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() * 4 - 2);
            var got = new float[n * rows];
            var want = new float[n * rows];
            q.MatMul(x, n, got);
            if (n <= DecodeMatMul.MaxRows) dense.MatMul(x, n, want);
            else Tessera.Kernels.Reference.ScalarGemm.Sgemm(false, true, n, rows, cols, x, cols, q.Dequantize(), cols, want, rows);
            if (n <= DecodeMatMul.MaxRows) Assert.Equal(want, got);   // same expansion, same register tile: identical sums
            else
                for (int i = 0; i < want.Length; i++)
                    Assert.True(Math.Abs(got[i] - want[i]) <= 2 * (cols + 2) * U * cols * 2, $"n={n} [{i}]: {got[i]} vs {want[i]}");
        }
    }

    [Theory]
    [InlineData("dense", WeightFormat.Q8_0)]
    [InlineData("dense", WeightFormat.Q4_0)]
    [InlineData("moe", WeightFormat.Q8_0)]
    [InlineData("moe", WeightFormat.Q4_0)]
    [InlineData("qwen2", WeightFormat.Q8_0)]
    [InlineData("qwen3moe", WeightFormat.Q8_0)]
    [InlineData("gemma2", WeightFormat.Q8_0)]
    [InlineData("gemma2", WeightFormat.Q4_0)]
    [InlineData("gemma3", WeightFormat.Q8_0)]
    [InlineData("gemma3", WeightFormat.Q4_0)]
    public void QuantizedEngineStaysWithinAStatedKlOfItsReference(string name, WeightFormat format)
    {
        const double bound = 0.1;
        // The architecture shapes get 32-multiple MLP widths so every projection has whole quantization blocks.
        var config = name switch { "dense" => Dense, "moe" => Moe, _ => EngineModels.ByName(name) with { HiddenDim = 64 } };
        using var model = EngineModels.Build(config, seed: 25);
        using var other = EngineModels.Build(config, seed: 26);
        var fp32 = InferenceWeights.FromTransformer(model);
        var quantized = fp32.Quantize(format);
        // Q8_0 against the fp32 model (weight and activation rounding); Q4_0 against fp32 on its own
        // dequantized weights (activation rounding only), the like-for-like comparison for 4 bits.
        var reference = format == WeightFormat.Q8_0 ? fp32 : Dequantized(quantized);
        var tokens = EngineModels.Prompt(40, config.VocabSize, 9);
        Assert.InRange(MeanKl(reference, quantized, tokens), 0, bound);
        Assert.True(MeanKl(reference, InferenceWeights.FromTransformer(other), tokens) > bound, "the statistic does not separate different weights");
    }

    [Fact]
    public async Task BatchingEngineRunsQuantizedWeightsLikeTheSequenceDecoder()
    {
        using var model = EngineModels.Build(Moe, seed: 23);
        var q8 = InferenceWeights.FromTransformer(model).Quantize(WeightFormat.Q8_0);
        using var engine = new BatchingEngine(q8, new BatchingOptions { MaxSequences = 3 });
        var prompts = new[] { 1, 2, 3 }.Select(s => EngineModels.Prompt(4 + s, model.Config.VocabSize, s)).ToArray();
        var runs = prompts.Select(p => EngineModels.Collect(engine.GenerateAsync(new GenerationRequest(p, 10, SamplingOptions.Greedy)))).ToArray();
        var results = await Task.WhenAll(runs);
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(EngineModels.Greedy(q8, prompts[i], 10), results[i].Select(e => e.Id));
    }

    [Fact]
    public void GgufF32LoadsToTheSameLogitsAndQ8_0KeepsItsBlocks()
    {
        using var model = EngineModels.Build(Dense with { TiedEmbeddings = false }, seed: 24);
        string dir = Path.Combine(Path.GetTempPath(), $"tessera-engine-gguf-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            var prompt = EngineModels.Prompt(6, model.Config.VocabSize, 7);
            var fp32 = InferenceWeights.FromTransformer(model);
            string f32Path = Path.Combine(dir, "m-f32.gguf"), q8Path = Path.Combine(dir, "m-q8.gguf");
            GgufModel.Save(model, f32Path, new GgufExportOptions { Type = GgufWeightType.F32 });
            GgufModel.Save(model, q8Path, new GgufExportOptions { Type = GgufWeightType.Q8_0 });

            using (var a = new SequenceDecoder(fp32))
            using (var b = new SequenceDecoder(GgufWeights.Load(f32Path)))
            {
                a.Feed(prompt); b.Feed(prompt);
                Assert.Equal(a.Logits(0).ToArray(), b.Logits(0).ToArray());   // same fp32 weights, same kernels: bit for bit
            }

            // The file's Q8_0 blocks (q/k un-permuted row by row) are exactly what quantizing the model here gives.
            var fromFile = GgufWeights.Load(q8Path);
            var quantized = fp32.Quantize(WeightFormat.Q8_0);
            Assert.Equal(quantized.BytesPerToken, fromFile.BytesPerToken);
            for (int l = 0; l < model.Config.Layers; l++)
            {
                Assert.Equal(InferenceWeights.ToFloat(quantized.Layers[l].Qkv), InferenceWeights.ToFloat(fromFile.Layers[l].Qkv));
                Assert.Equal(InferenceWeights.ToFloat(quantized.Layers[l].Mlp!.GateUp), InferenceWeights.ToFloat(fromFile.Layers[l].Mlp!.GateUp));
            }
            Assert.Equal(EngineModels.Greedy(quantized, prompt, 12), EngineModels.Greedy(fromFile, prompt, 12));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
