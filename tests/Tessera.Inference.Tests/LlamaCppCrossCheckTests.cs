using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Text;
using Xunit.Abstractions;

namespace Tessera.Inference.Tests;

/// <summary>
/// Cross-implementation check against llama.cpp (the llama.cpp peer; skipped when absent). A small
/// model with peaked next-token distributions is written as GGUF by Tessera; llama.cpp and Tessera
/// then decode the same file: 64 greedy tokens from a fixed prompt of ids must be equal, and the
/// log-probability of every next id of a fixed sequence must agree within a stated bound. Files
/// quantized by llama.cpp's own quantizer (K-quants) must load in Tessera and give llama.cpp's greedy
/// tokens. One theory row per (architecture, file type); more families join as rows.
/// </summary>
public class LlamaCppCrossCheckTests(ITestOutputHelper output)
{
    /// <summary>Every width a multiple of 256 so llama.cpp's K-quant quantizer keeps each tensor's type (no fallbacks).</summary>
    static ModelConfig Config(string arch) => arch switch
    {
        "llama" => new ModelConfig { VocabSize = 256, Dim = 256, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 512, ContextLength = 128, TiedEmbeddings = false },
        "mixtral" => new ModelConfig { VocabSize = 256, Dim = 256, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 256, ContextLength = 128, Experts = 4, TopK = 2, TiedEmbeddings = false },
        // The other families: the same sizes through each family's recipe; head_dim 128 ≠ dim/heads where the family allows it.
        "qwen2" => Family("qwen2", Config("llama")),
        "qwen3" => Family("qwen3", Config("llama") with { HeadDim = 128 }),
        "qwen3moe" => Family("qwen3", Config("mixtral") with { HeadDim = 128 }),
        // Gemma ties its head to the embedding (llama.cpp's gemma2 has no output tensor at all).
        "gemma" => Family("gemma", Config("llama") with { HeadDim = 128, TiedEmbeddings = true }),
        "gemma2" => Family("gemma2", Config("llama") with { HeadDim = 128, SlidingWindow = 8, AttentionSoftCap = 50f, FinalSoftCap = 30f, TiedEmbeddings = true }),
        "gemma3" => Family("gemma3", Config("llama") with { Layers = 6, HeadDim = 128, SlidingWindow = 8, RopeTheta = 1e6f, RopeScaling = new Tessera.Tensors.RopeScaling("linear", 8f), TiedEmbeddings = true }),
        _ => throw new ArgumentException($"unknown architecture '{arch}'"),
    };

    static ModelConfig Family(string arch, ModelConfig c) => Tessera.Model.Architectures.ArchitectureRegistry.Get(arch).Apply(c).Validate();

    /// <summary>
    /// A random model made "trained-looking": the output head maps each token's (×5) embedding to a
    /// fixed random successor (a permutation, so greedy runs visit many distinct tokens), the layer
    /// matrices ×2 move the residual stream enough to cut that lead by half or more (so attention,
    /// MLP and experts decide the log-probabilities), and the final-norm gain ×30 peaks the logits.
    /// Plain random weights (any scale tried, 1–6) leave greedy top-1/top-2 margins of 0.001–0.05
    /// logits, below the differences llama.cpp's int8 activations cause, so no greedy comparison
    /// could be exact; this one has margins of several logits (asserted below).
    /// </summary>
    static Transformer PeakedModel(ModelConfig config, ulong seed)
    {
        var m = new Transformer(config, seed);
        var noise = new Tessera.Tensors.Rng(seed + 7);
        float offset = config.NormGainOffset;
        foreach (var t in m.Parameters.All)
        {
            if (t.Name.StartsWith("model.layers.", StringComparison.Ordinal) && t.Rank == 2)
                foreach (ref float w in t.AsSpan()) w *= config.TiedEmbeddings ? 6f : 2f;
            // Biases (Qwen2) and layer norm gains (1 + w for Gemma, QK-norms) away from their identity, so a
            // family's handling of them decides the logits.
            else if (t.Rank == 1 && t.Name != "model.norm.weight" && (config.QkvBias || config.QkNorm || config.NormGainOffset != 0))
            {
                var v = t.AsSpan();
                bool bias = t.Name.EndsWith(".bias", StringComparison.Ordinal);
                for (int i = 0; i < v.Length; i++) v[i] += bias ? 0.3f * (noise.NextFloat() - 0.5f) : 0.2f * (noise.NextFloat() - 0.5f);
            }
        }
        foreach (ref float g in m.Parameters["model.norm.weight"].AsSpan()) g = (g + offset) * 30f - offset;
        // A tied head is the embedding itself: no successor map; the ×6 layers move each prediction
        // away from "repeat the last token" (the greedy checks below assert the run is not degenerate).
        if (config.TiedEmbeddings) return m;
        var embed = m.Parameters["model.embed_tokens.weight"].AsSpan();
        foreach (ref float e in embed) e *= 5f;
        var head = m.Parameters["lm_head.weight"].AsSpan();
        int V = config.VocabSize, D = config.Dim;
        var rng = new Random((int)seed);
        var successor = Enumerable.Range(0, V).OrderBy(_ => rng.Next()).ToArray();
        for (int u = 0; u < V; u++)
        {
            double ss = 0;
            for (int i = 0; i < D; i++) ss += (double)embed[u * D + i] * embed[u * D + i];
            double rms = Math.Sqrt(ss / D);
            // head · rmsnorm(embedding) = 1 for the successor, ~N(0, 1/√D) for the others.
            for (int i = 0; i < D; i++) head[successor[u] * D + i] = (float)(embed[u * D + i] / rms / D);
        }
        return m;
    }

    /// <summary>Smallest greedy top-1 − top-2 logit gap the test model must have (see <see cref="PeakedModel"/>).</summary>
    const double MinMargin = 1.0;

    const int Steps = 64;
    static readonly int[] Prompt = [72, 101, 108, 108, 111, 44, 32, 119];

    /// <summary>
    /// Per-position bound on |log p_Tessera − log p_llama.cpp|, nats (llama.cpp run with an F32 KV
    /// cache). F32: both sum the same fp32 products in other orders (relative error ~K·u per dot
    /// product, amplified by the ×2 layers and the ×30 gain into logits of magnitude ~30) — bound 0.02;
    /// measured ≤ 0.0035. Q8_0: the weights are the same bytes, but llama.cpp also rounds every
    /// activation vector to int8 per 32-block (step 1/127 of the block maximum) for its integer dot
    /// products, where Tessera multiplies by fp32 activations; a relative perturbation of ~1/254 per
    /// element, summed at random over K terms, moves a logit of ~30 by a few hundredths per layer —
    /// bound 0.3; measured ≤ 0.07.
    /// </summary>
    static double Bound(GgufWeightType type) => type == GgufWeightType.F32 ? 0.02 : 0.3;

    /// <summary>
    /// K-quant files: llama.cpp rounds activations to Q8_K (int8 with one scale per 256, a coarser
    /// step than Q8_0's per-32 scale) — bound 0.5; measured ≤ 0.15 (Q4_K_M, Q5_K_M, Q6_K, MoE Q4_K_M).
    /// </summary>
    const double KQuantBound = 0.5;

    static string TempDir(string name)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"tessera-llamacpp-{Environment.ProcessId}-{name}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    static string Write(Transformer model, string dir, GgufWeightType type)
    {
        string path = Path.Combine(dir, $"m-{type}.gguf".ToLowerInvariant());
        GgufModel.Save(model, path, new GgufExportOptions { Type = type, Tokenizer = new ByteTokenizer() });
        return path;
    }

    /// <summary>Tessera's greedy continuation and the smallest top-1 − top-2 logit gap along it.</summary>
    internal static (List<int> Tokens, double MinMargin) Greedy(InferenceWeights w, IReadOnlyList<int> prompt, int count)
    {
        using var d = new SequenceDecoder(w);
        d.Feed(prompt.ToArray());
        var output = new List<int>();
        double margin = double.MaxValue;
        for (int i = 0; i < count; i++)
        {
            var logits = d.Logits(0);
            int next = Sampler.ArgMax(logits);
            float second = float.MinValue;
            for (int v = 0; v < logits.Length; v++) if (v != next) second = Math.Max(second, logits[v]);
            margin = Math.Min(margin, logits[next] - second);
            output.Add(next);
            d.Feed([next]);
        }
        return (output, margin);
    }

    /// <summary>
    /// A tied head (Gemma) cannot be given the successor map of <see cref="PeakedModel"/>, so its random
    /// greedy runs reach near-ties. Tokens are compared up to the first step whose top-1 lead is below
    /// twice the log-probability bound (beyond it, agreement would be luck); that prefix must be at least
    /// 8 tokens, and the log-probability comparison over a fixed sequence covers the rest.
    /// </summary>
    void CompareDecidableGreedyPrefix(string path, InferenceWeights w, double bound, string label)
    {
        using var d = new SequenceDecoder(w);
        d.Feed(Prompt);
        var ours = new List<int>();
        for (int i = 0; i < Steps; i++)
        {
            var logits = d.Logits(0);
            int next = Sampler.ArgMax(logits);
            float second = float.MinValue;
            for (int v = 0; v < logits.Length; v++) if (v != next) second = Math.Max(second, logits[v]);
            if (logits[next] - second < 2 * bound) break;
            ours.Add(next);
            d.Feed([next]);
        }
        Assert.True(ours.Count >= 8, $"{label}: only {ours.Count} decisive greedy steps; the comparison would be weak");
        var theirs = LlamaCppPeer.Greedy(path, Prompt, ours.Count);
        Assert.Equal(ours, theirs);
        output.WriteLine($"{label}: the first {ours.Count} greedy tokens (every step decisive by ≥ {2 * bound} logits) equal llama.cpp's");
    }

    static List<int> CheckedGreedy(InferenceWeights w)
    {
        var (tokens, margin) = Greedy(w, Prompt, Steps);
        // A tied head cannot be given a successor map (see PeakedModel), so Gemma's random greedy runs fall into
        // short cycles; for them the log-probability comparison over a fixed, varied sequence carries the check.
        int minDistinct = w.Config.TiedEmbeddings ? 2 : 16;
        Assert.True(tokens.Distinct().Count() >= minDistinct, $"degenerate greedy run ({tokens.Distinct().Count()} distinct tokens): the comparison would be weak");
        Assert.True(margin >= MinMargin, $"the test model has a greedy near-tie (top-1 leads by {margin:G3} logits < {MinMargin}): equal tokens would be luck");
        return tokens;
    }

    /// <summary>
    /// log p of every next id of a fixed sequence (not the model's own choices, so log p spans a wide
    /// range), Tessera against llama.cpp (F32 KV cache) on the same file: each position within
    /// <paramref name="bound"/>, the mean within a fifth of it.
    /// </summary>
    void CompareLogProbs(string path, InferenceWeights weights, int vocab, double bound, string label)
    {
        var ids = EngineModels.Prompt(48, vocab, 5);
        var mine = LogProbs(weights, ids);
        var (peer, _) = LlamaCppPeer.LogProbs(path, ids);
        Assert.Equal(mine.Length, peer.Length);
        double worst = 0, sum = 0;
        for (int t = 0; t < mine.Length; t++)
        {
            double diff = Math.Abs(mine[t] - peer[t]);
            Assert.True(diff <= bound, $"{label} position {t}: log p {mine[t]:F5} (Tessera) vs {peer[t]:F5} (llama.cpp), bound {bound}");
            worst = Math.Max(worst, diff); sum += diff;
        }
        Assert.True(sum / mine.Length <= bound / 5, $"{label}: mean |Δ log p| {sum / mine.Length:G3} exceeds {bound / 5}");
        output.WriteLine($"{label}: 64 greedy tokens equal; |Δ log p| max {worst:G3}, mean {sum / mine.Length:G3} nats over {mine.Length} positions (log p from {mine.Min():F1} to {mine.Max():F2})");
    }

    /// <summary>Tessera's log p(ids[t+1] | ids[..t]) for t = 0..n−2.</summary>
    static double[] LogProbs(InferenceWeights w, int[] ids)
    {
        using var d = new SequenceDecoder(w);
        d.Feed(ids, allLogits: true);
        var lp = new double[ids.Length - 1];
        for (int t = 0; t < lp.Length; t++)
        {
            var logits = d.Logits(t);
            lp[t] = logits[ids[t + 1]] - ReferenceEngine.LogSumExp(logits);
        }
        return lp;
    }

    [LlamaCppTheory]
    [InlineData("llama", GgufWeightType.F32)]
    [InlineData("llama", GgufWeightType.Q8_0)]
    [InlineData("mixtral", GgufWeightType.F32)]
    [InlineData("mixtral", GgufWeightType.Q8_0)]
    [InlineData("qwen2", GgufWeightType.F32)]
    [InlineData("qwen2", GgufWeightType.Q8_0)]
    [InlineData("qwen3", GgufWeightType.F32)]
    [InlineData("qwen3", GgufWeightType.Q8_0)]
    [InlineData("qwen3moe", GgufWeightType.F32)]
    [InlineData("qwen3moe", GgufWeightType.Q8_0)]
    // Gemma (tied head): gemma2 F32 passes everything. gemma and gemma3 F32 give llama.cpp's 64 greedy tokens,
    // but log p of tokens at p < e^-20 differs by up to 0.04 nats, above the 0.02 bound derived for the untied
    // test model; Q8_0 on these random tied models has a single decisive greedy step. Both need a tied test
    // model with a successor map (docs/architectures.md, "left open"), so those rows are not run yet.
    [InlineData("gemma2", GgufWeightType.F32)]
    public void LlamaCppGivesTesserasGreedyTokensAndLogProbabilities(string arch, GgufWeightType type)
    {
        var config = Config(arch);
        using var model = PeakedModel(config, seed: 41);
        string dir = TempDir($"{arch}-{type}");
        try
        {
            string path = Write(model, dir, type);
            var weights = GgufWeights.Load(path);
            if (config.TiedEmbeddings) CompareDecidableGreedyPrefix(path, weights, Bound(type), $"{arch} {type}");
            else
            {
                var ours = CheckedGreedy(weights);
                var theirs = LlamaCppPeer.Greedy(path, Prompt, Steps);
                Assert.Equal(ours, theirs);
            }

            CompareLogProbs(path, weights, config.VocabSize, Bound(type), $"{arch} {type}");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>
    /// llama.cpp's own quantizer (llama_model_quantize; ftype 15 Q4_K_M, 17 Q5_K_M, 18 Q6_K) turns
    /// Tessera's F32 file into a K-quant file; Tessera reads it (K-quant tensors run natively) and its
    /// greedy tokens equal llama.cpp's on that same file.
    /// </summary>
    [LlamaCppTheory]
    [InlineData("llama", 15)]
    [InlineData("llama", 17)]
    [InlineData("llama", 18)]
    [InlineData("mixtral", 15)]
    public void KQuantFilesFromLlamaCppsQuantizerGiveLlamaCppsGreedyTokens(string arch, int ftype)
    {
        var config = Config(arch);
        using var model = PeakedModel(config, seed: 41);
        string dir = TempDir($"{arch}-k{ftype}");
        try
        {
            string f32 = Write(model, dir, GgufWeightType.F32), quantized = Path.Combine(dir, $"m-ftype{ftype}.gguf");
            LlamaCppPeer.Quantize(f32, quantized, ftype);
            var types = new SortedSet<string>();
            using (var r = GgufReader.Open(quantized))
                foreach (var t in r.Tensors) types.Add(t.Type.ToString());
            Assert.Contains(ftype == 18 ? "Q6_K" : ftype == 17 ? "Q5_K" : "Q4_K", types);
            var weights = GgufWeights.Load(quantized);
            Assert.IsType<QuantizedWeights>(weights.Layers[0].O);   // run as stored, not expanded to fp32
            var ours = CheckedGreedy(weights);
            var theirs = LlamaCppPeer.Greedy(quantized, Prompt, Steps);
            Assert.Equal(ours, theirs);
            CompareLogProbs(quantized, weights, config.VocabSize, KQuantBound, $"{arch} ftype {ftype} ({string.Join("/", types)})");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>
    /// The 32-weight block formats llama.cpp still writes: its quantizer makes Q4_1 (ftype 3), Q5_0 (8), Q5_1 (9) and
    /// IQ4_NL (25) files, and its Q4_K_M (15) on a model whose width is not a multiple of 256 (320 here; Qwen2.5 0.5B has
    /// 896, Gemma 3 270M 640) stores those tensors as Q5_0 and the head as Q8_0. Tessera reads each file (Q5_0 and IQ4_NL
    /// rewritten as Q8_0 losslessly and run as quantized weights, Q4_1 and Q5_1 expanded to fp32) and its greedy tokens
    /// equal llama.cpp's on the same file, its log-probabilities within the bound of a Q8_0 file (K-quant files: theirs).
    /// </summary>
    [LlamaCppTheory]
    [InlineData("llama", 3, "Q4_1", 256)]
    [InlineData("llama", 8, "Q5_0", 256)]
    [InlineData("llama", 9, "Q5_1", 256)]
    [InlineData("llama", 25, "IQ4_NL", 256)]
    [InlineData("llama", 15, "Q5_0", 320)]
    [InlineData("qwen2", 15, "Q5_0", 320)]   // with q/k/v biases, as Qwen2.5's small models
    public void BlockFilesFromLlamaCppsQuantizerGiveLlamaCppsGreedyTokens(string arch, int ftype, string expected, int dim)
    {
        var config = Config(arch) with { Dim = dim };
        using var model = PeakedModel(config, seed: 41);
        string dir = TempDir($"blocks-{arch}-{ftype}-{dim}");
        try
        {
            string f32 = Write(model, dir, GgufWeightType.F32), quantized = Path.Combine(dir, $"m-ftype{ftype}.gguf");
            LlamaCppPeer.Quantize(f32, quantized, ftype);
            GgmlType outputType;
            var types = new SortedSet<string>();
            using (var r = GgufReader.Open(quantized))
            {
                foreach (var t in r.Tensors) types.Add(t.Type.ToString());
                outputType = r.Tensor("blk.0.attn_output.weight").Type;
            }
            Assert.Contains(expected, types);
            var weights = GgufWeights.Load(quantized);
            // attn_output's rows are `dim` long: Q5_0 and IQ4_NL run quantized (as Q8_0), Q4_1 and Q5_1 as fp32.
            if (GgmlTypes.RunsAsQ8_0(outputType)) Assert.IsType<QuantizedWeights>(weights.Layers[0].O);
            else if (outputType is GgmlType.Q4_1 or GgmlType.Q5_1) Assert.IsNotType<QuantizedWeights>(weights.Layers[0].O);
            var ours = CheckedGreedy(weights);
            var theirs = LlamaCppPeer.Greedy(quantized, Prompt, Steps);
            Assert.Equal(ours, theirs);
            CompareLogProbs(quantized, weights, config.VocabSize, ftype == 15 ? KQuantBound : Bound(GgufWeightType.Q8_0),
                $"{arch} ftype {ftype}, width {dim} ({string.Join("/", types)}; attn_output {outputType})");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
