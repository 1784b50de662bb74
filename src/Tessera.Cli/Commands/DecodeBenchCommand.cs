using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Tessera.Bench;
using Tessera.Data;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera bench decode</c>: prefill and decode throughput of the inference engine, batch-1
/// decode against the measured memory roofline, continuous-batching aggregate throughput, and
/// (with <c>--draft</c>) the speculative speedup on in-domain text.
/// </summary>
public static class DecodeBenchCommand
{
    /// <summary>Builds the <c>tessera bench decode</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Run or checkpoint folder; default: a random ≈29M-parameter (≈118 MB fp32) dense model." };
        var draft = new Option<string?>("--draft") { Description = "Smaller run/checkpoint with the same tokenizer: measures speculative decoding." };
        var draftTokens = new Option<int>("--draft-tokens") { Description = "Tokens drafted per speculative step.", DefaultValueFactory = _ => 4 };
        var decodeTokens = new Option<int>("--decode-tokens") { Description = "Tokens generated for the batch-1 figure.", DefaultValueFactory = _ => 64 };
        var quant = new Option<string>("--quant") { Description = "Run the target's projections as f32, q8_0, q4_0 or ternary (quantized at load; a GGUF keeps its own types).", DefaultValueFactory = _ => "f32" };
        var sequences = new Option<string>("--sequences") { Description = "Concurrent sequence counts for the aggregate figure, comma-separated.", DefaultValueFactory = _ => "1,8,32" };
        var peer = new Option<string?>("--peer") { Description = "llama.cpp: decode the same GGUF files (F32, Q8_0, Q4_0, Q4_K) in llama.cpp in the same run and print the ratios (peer installed by bench/peers/install-llama-cpp.sh)." };
        var randomDepth = new Option<int>("--random-depth") { Description = "--peer without --model: a random model of this depth (width 64·depth, 8192 vocab, MLP width rounded to 256; 20 ≈ 417M parameters) instead of the ≈29M default.", DefaultValueFactory = _ => 0 };
        var peerTypes = new Option<string>("--types") { Description = "--peer: GGUF storage types to compare, comma-separated (f32, q8_0, q4_0, q4_k).", DefaultValueFactory = _ => "f32,q8_0,q4_0,q4_k" };
        var rounds = new Option<int>("--rounds") { Description = "--peer: interleaved rounds per figure (best of each counts).", DefaultValueFactory = _ => 2 };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("decode", "Inference engine: prefill tokens/s, batch-1 decode vs the memory roofline, 1/8/32 concurrent sequences, speculation.")
            { model, draft, draftTokens, decodeTokens, quant, sequences, peer, randomDepth, peerTypes, rounds, json };
        cmd.SetAction(p =>
        {
            bool asJson = p.GetValue(json);
            Action<string>? progress = asJson ? null : line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]");
            string? modelPath = p.GetValue(model), draftPath = p.GetValue(draft);
            if (draftPath is not null && modelPath is null) throw new ArgumentException("--draft needs --model (speculation is measured on trained models).");

            var counts = ParseCounts(p.GetValue(sequences)!);
            if (p.GetValue(peer) is { } peerName) return RunPeer(peerName, modelPath, p.GetValue(randomDepth), ParseTypes(p.GetValue(peerTypes)!), p.GetValue(decodeTokens), p.GetValue(rounds), counts, asJson, progress);
            var format = GenerateCommand.ParseFormat(p.GetValue(quant)!);
            string name;
            Transformer? target = null;
            InferenceWeights weights;
            if (modelPath is null)
            {
                progress?.Invoke("building a random model (speed does not depend on training)");
                target = new Transformer(DecodeBench.RandomModelConfig, seed: 1);
                weights = InferenceWeights.FromTransformer(target);
                name = "random dense";
            }
            else (target, weights, name) = ModelFiles.LoadWeights(modelPath);
            using var targetOwner = target;
            if (format != WeightFormat.F32)
            {
                progress?.Invoke($"quantizing the projections to {format}");
                weights = weights.Quantize(format);
            }
            using var draftModel = draftPath is null ? null : Checkpoint.LoadModel(draftPath);

            var options = new DecodeBenchOptions(DecodeTokens: p.GetValue(decodeTokens), DraftTokens: p.GetValue(draftTokens), Concurrency: counts,
                SpeculationPrompts: draftModel is null ? null : InDomainPrompts(Checkpoint.Resolve(modelPath!), weights.Config));
            var report = DecodeBench.Run(name, WeightsName(weights), weights,
                draftModel is null ? null : InferenceWeights.FromTransformer(draftModel), options, progress);
            report = report with { Constrained = MeasureConstrained(modelPath, name, weights, p.GetValue(decodeTokens), progress), ImagePrefill = MeasureImagePrefill(modelPath, weights, progress) };
            if (asJson) Console.WriteLine(JsonSerializer.Serialize(report, JsonNaming.Indented));
            else Print(report);
            return 0;
        });
        return cmd;
    }

    /// <summary>The masking-overhead line: the model's own tokenizer when it has one, else a stand-in vocabulary of its size.</summary>
    static ConstrainedDecodeResult? MeasureConstrained(string? modelPath, string dir, InferenceWeights weights, int tokens, Action<string>? progress)
    {
        int vocab = weights.Config.VocabSize;
        ITokenizer? loaded = null;
        int? eosId = null;
        if (modelPath is not null)
        {
            try { (loaded, _, eosId) = ModelFiles.LoadTokenizer(modelPath, dir, null); }
            catch (Exception e) when (e is IOException or FormatException or InvalidDataException or ArgumentException) { progress?.Invoke($"constrained line: no tokenizer ({e.Message}); a stand-in vocabulary is used"); }
        }
        if (loaded is { } tok)
        {
            var eos = eosId;
            var bytes = new byte[]?[vocab];
            for (int id = 0; id < Math.Min(vocab, tok.VocabSize); id++)
                if (!tok.SpecialTokens.IsSpecial(id))
                    try { bytes[id] = tok.DecodeBytes([id]); }
                    catch (ArgumentOutOfRangeException) { }   // a gap in the id space
            int end = eos ?? vocab - 1;
            if (end < vocab) bytes[end] = null;
            return ConstrainedDecodeBench.Run(weights, new Inference.Constraints.TokenVocabulary(bytes), tok.Name, end, tokens, progress: progress);
        }
        var (v, name) = ConstrainedDecodeBench.DefaultVocabulary(vocab);
        return ConstrainedDecodeBench.Run(weights, v, name, vocab - 1, tokens, progress: progress);
    }

    /// <summary>
    /// The images-vs-text prefill line: the model's own patch embedder when it is multimodal, else a
    /// random one (64×64 in 8×8 patches, or 32×32 when 64 patches and a question do not fit the context).
    /// </summary>
    static ImagePrefillResult MeasureImagePrefill(string? modelPath, InferenceWeights weights, Action<string>? progress)
    {
        var random = new Vision.VisionConfig(ImageSize: weights.Config.ContextLength >= 128 ? 64 : 32, PatchSize: 8);
        using var embedder = (modelPath is null ? null : ImagePrompt.TryLoadEmbedder(modelPath, weights.Config.Dim))
            ?? new Vision.PatchEmbedder(random, weights.Config.Dim, seed: 1);
        return ImagePrefillBench.Run(weights, embedder, progress: progress);
    }

    /// <summary><c>--peer llama.cpp</c>: the model written as GGUF of each type, decoded by both engines (see <see cref="PeerDecodeBench"/>).</summary>
    static int RunPeer(string peerName, string? modelPath, int randomDepth, GgufWeightType[] types, int decodeTokens, int rounds, int[] counts, bool asJson, Action<string>? progress)
    {
        if (!peerName.Equals("llama.cpp", StringComparison.OrdinalIgnoreCase)) throw new ArgumentException($"--peer: unknown peer '{peerName}' (known: llama.cpp).");
        if (rounds < 1) throw new ArgumentException("--rounds must be at least 1.");
        Transformer model;
        string name;
        if (modelPath is null)
        {
            var config = DecodeBench.RandomModelConfig;
            if (randomDepth > 0)
            {
                config = ModelConfig.FromDepth(randomDepth, 8192);
                config = config with { HiddenDim = (config.HiddenDim + 255) / 256 * 256, ContextLength = 512 };
            }
            progress?.Invoke($"building a random model of {config.ParameterCount / 1e6:F0}M parameters (speed does not depend on training)");
            model = new Transformer(config, seed: 1);
            name = randomDepth > 0 ? $"random dense, depth {randomDepth}" : "random dense";
        }
        else if (modelPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) { model = GgufModel.Load(modelPath); name = modelPath; }
        else { model = Checkpoint.LoadModel(modelPath); name = Checkpoint.Resolve(modelPath); }
        using var owner = model;
        string work = Path.Combine(Path.GetTempPath(), $"tessera-peer-bench-{Environment.ProcessId}");
        try
        {
            var report = PeerDecodeBench.Run(name, model, work, decodeTokens, rounds, counts.Where(n => n > 1).ToArray(), types, progress);
            if (asJson) Console.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
            else PrintPeer(report);
        }
        finally { if (Directory.Exists(work)) Directory.Delete(work, recursive: true); }
        return 0;
    }

    static GgufWeightType[] ParseTypes(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(t => t.ToLowerInvariant() switch
        {
            "f32" => GgufWeightType.F32, "q8_0" => GgufWeightType.Q8_0, "q4_0" => GgufWeightType.Q4_0, "q4_k" => GgufWeightType.Q4_K,
            _ => throw new ArgumentException($"--types: unknown type '{t}' (known: f32, q8_0, q4_0, q4_k)."),
        }).ToArray();

    static void PrintPeer(PeerDecodeReport r)
    {
        AnsiConsole.MarkupLine($"model: [bold]{Markup.Escape(r.Model)}[/], {r.Parameters / 1e6:F1}M parameters, {r.Threads} threads, {r.DecodeTokens} greedy tokens, {r.Rounds} interleaved rounds (best of each)");
        AnsiConsole.MarkupLine($"peer: {Markup.Escape(r.Peer)} on the same GGUF files");
        AnsiConsole.MarkupLine($"Tessera quantized products: {Markup.Escape(Tessera.Inference.QuantizedWeights.DefaultActivationPath)}");
        var t = new Table().AddColumns("type", "file", "Tessera tok/s", "llama.cpp tok/s", "Tessera ÷ llama.cpp", "memory roofline (% of it: Tessera, llama.cpp)");
        foreach (var row in r.Rows)
        {
            string roof = row.RooflineTokensPerSecond > 0
                ? $"{row.RooflineTokensPerSecond:F1} tok/s at {row.BandwidthGBps:F0} GB/s ({100 * row.TesseraTokensPerSecond / row.RooflineTokensPerSecond:F0}%, {100 * row.LlamaCppTokensPerSecond / row.RooflineTokensPerSecond:F0}%)"
                : "—";
            t.AddRow(row.Type, $"{row.FileMegabytes:F0} MB", $"{row.TesseraTokensPerSecond:F1}", $"{row.LlamaCppTokensPerSecond:F1}", $"[bold]{row.Ratio:F2}×[/]", roof);
            foreach (var q in row.Parallel)
                t.AddRow($"  {q.Sequences} sequences", "", $"{q.TesseraTokensPerSecond:F1} ({q.TesseraVersusBatch1:F1}× batch-1)",
                    q.LlamaCppTokensPerSecond > 0 ? $"{q.LlamaCppTokensPerSecond:F1}" : "—", q.LlamaCppTokensPerSecond > 0 ? $"{q.Ratio:F2}×" : "—", "");
        }
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine("[grey]memory roofline: the higher of two read-bandwidth readings, before and after each type's rounds, ÷ the bytes a token reads (every tensor once; the embedding table only as a tied head). A batch-1 ratio above 100% ÷ llama.cpp's % would need Tessera past the roofline.[/]");
        AnsiConsole.MarkupLine("[grey]batch-1: greedy decode after a 16-token prompt. N sequences: aggregate greedy tokens/s, decode-only window; llama.cpp runs N sequences of one context, which node-llama-cpp evaluates together in one batch.[/]");
    }

    static int[] ParseCounts(string text)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var counts = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out counts[i]) || counts[i] < 1) throw new ArgumentException($"--sequences: '{parts[i]}' is not a positive integer.");
        if (counts.Length == 0) throw new ArgumentException("--sequences: give at least one count.");
        return counts;
    }

    /// <summary>How the projection matrices are stored, e.g. "fp32" or "q8_0 (head q8_0)".</summary>
    static string WeightsName(InferenceWeights w)
    {
        static string Of(IWeightMatrix m) => m is QuantizedWeights q ? q.Format.ToString().ToLowerInvariant() : m is DenseWeights or PanelWeights ? "fp32" : "mixed";
        return $"{Of(w.Layers[0].Qkv)} layers, {Of(w.LmHead)} head";
    }

    /// <summary>Prompts cut from the embedded corpus (the text the models were trained on), tokenized with the model's tokenizer.</summary>
    static List<int[]> InDomainPrompts(string checkpoint, ModelConfig config)
    {
        var tok = RunSetup.LoadRunTokenizer(Path.Combine(checkpoint, Checkpoint.TokenizerFolder));
        if (tok.VocabSize != config.VocabSize) throw new ArgumentException($"{checkpoint}: its tokenizer has {tok.VocabSize} ids but the model {config.VocabSize}.");
        var docs = EmbeddedCorpus.Read(Path.Combine(Path.GetTempPath(), "tessera-corpus"));
        int bos = tok.SpecialTokens.Id(ChatTemplate.Bos);
        var prompts = new List<int[]>();
        for (int i = 0; i < 6; i++)
        {
            var text = docs[(int)((long)i * docs.Count / 6 + docs.Count / 12)].Text;
            int at = text.Length / 2;
            at = text.IndexOf(' ', at) is >= 0 and var sp ? sp + 1 : 0;
            var ids = new List<int> { bos };
            ids.AddRange(tok.Encode(text.Substring(at, Math.Min(400, text.Length - at))));
            prompts.Add([.. ids.Take(Math.Min(64, config.ContextLength / 2))]);
        }
        return prompts;
    }

    static void Print(DecodeBenchReport r)
    {
        AnsiConsole.MarkupLine($"model: [bold]{Markup.Escape(r.Model)}[/] ({Markup.Escape(r.Weights)}), {r.Parameters / 1e6:F1}M parameters, {r.WeightBytes / 1e6:F0} MB of weights, {r.Threads} threads");
        AnsiConsole.MarkupLine($"measured read bandwidth: [bold]{r.BandwidthGBps:F1} GB/s[/]; bytes per decoded token (active weights + KV): {r.BytesPerToken / 1e6:F1} MB");
        AnsiConsole.MarkupLine($"quantized products: {Markup.Escape(Tessera.Inference.QuantizedWeights.DefaultActivationPath)}");
        var t = new Table().AddColumns("figure", "value", "note");
        t.AddRow("prefill", $"{r.PrefillTokensPerSecond:F0} tok/s", $"one prompt, one pass, best of {r.PrefillRuns} warm runs: {r.PrefillGflops:F0} GFLOP/s = [bold]{r.PrefillPercentOfPeak:F0}%[/] of the fp32 GEMM peak measured in this run ({r.PeakGflops:F0} GFLOP/s); median {r.PrefillMedianTokensPerSecond:F0} tok/s = {r.PrefillPercentOfPeak * r.PrefillMedianTokensPerSecond / Math.Max(1e-9, r.PrefillTokensPerSecond):F0}%");
        t.AddRow("batch-1 decode", $"{r.DecodeTokensPerSecond:F1} tok/s", $"roofline {r.RooflineTokensPerSecond:F1} tok/s → [bold]{r.PercentOfRoofline:F0}%[/]");
        foreach (var a in r.Aggregate)
            t.AddRow($"{a.Sequences} sequences", $"{a.TokensPerSecond:F1} tok/s", $"{(double.IsNaN(a.VersusBatch1) ? "—" : $"{a.VersusBatch1:F1}×")} the 1-sequence engine ({a.Tokens} tokens in {a.Seconds:F2} s, decode only)");
        if (r.Speculation is { } s)
            t.AddRow($"speculative (k={s.DraftTokens})", $"{s.SpeculativeTokensPerSecond:F1} tok/s",
                $"plain {s.PlainTokensPerSecond:F1} tok/s → [bold]{s.Speedup:F2}×[/]; {s.MeanAcceptedPerStep:F2} accepted/step, {s.TokensPerStep:F2} tokens/pass; same tokens: {s.SameTokens}");
        if (r.ImagePrefill is { } ip)
            t.AddRow("prefill with images", $"{ip.ImageRowsPerSecond:F0} rows/s",
                $"{ip.Images} images × {ip.TokensPerImage} patches + text, prefix-LM: [bold]{ip.Ratio:F2}×[/] text prefill of the same {ip.Rows} rows ({ip.TextTokensPerSecond:F0} tok/s) in this run; with the patch embedder {ip.ImageRowsPerSecondWithEmbedder:F0} rows/s ({ip.RatioWithEmbedder:F2}×)");
        if (r.Constrained is { } c)
            t.AddRow("JSON-schema constrained, batch 1", $"{c.ConstrainedMsPerToken:F2} ms/token",
                $"plain {c.PlainMsPerToken:F2} ms/token → overhead [bold]{100 * c.Overhead:F1}%[/] warm ({100 * c.ColdOverhead:F1}% cold, first round); time in the mask {c.MaskMsPerToken:F3} ms/token = [bold]{100 * c.MaskMsPerToken / c.PlainMsPerToken:F1}%[/] of a plain token ({c.ColdMaskMsPerToken:F3} ms cold); mask cache hits {100 * c.CacheHitRate:F0}%; vocabulary {Markup.Escape(c.Vocabulary)}; valid JSON: {c.Valid}");
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine("[grey]roofline = bandwidth ÷ bytes read per token (every weight matrix used once per token, at its stored size: attention, router + top-k experts, head; plus the KV cache).[/]");
        AnsiConsole.MarkupLine("[grey]N sequences: continuous batching; timed from when every sequence has its first token (prompts prefilled) to the last token — decode only.[/]");
        // A decoding row does a prompt row's projections with fewer rows per call to share each weight's trip through
        // the caches, and on top runs the LM head and sampling, which a prefill does once per prompt; only its attention
        // (over its own cache, shorter here than a prompt) can cost less. So prefill ÷ batch 1 is, all but its attention
        // share, a bound on the N-sequence ratio.
        if (r.Aggregate.FirstOrDefault(a => a.Sequences == 1) is { TokensPerSecond: > 0 } one)
            AnsiConsole.MarkupLine($"[grey]prefill ÷ the 1-sequence engine: {r.PrefillTokensPerSecond / one.TokensPerSecond:F1}× — where the N-sequence ratio would stand if N sequences decoded as fast per token as this run's prefill (same weights, a whole prompt per call, the LM head once); a bound but for attention, since a decoding row also runs the head and sampling.[/]");
        if (r.Profile is { } profile) AnsiConsole.WriteLine("phase profile (TESSERA_DECODE_PROFILE=1), prefill, then the batch-1 and aggregate runs:\n" + profile);
    }
}
