using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera generate</c>: samples from any model file (<see cref="ModelFiles"/>: a checkpoint or
/// run folder, a GGUF file of any registered architecture with quantized tensors kept quantized, or an HF folder) with the fast engine, streaming text to
/// stdout as tokens arrive; <c>--quant</c> quantizes an fp32 model's projections at load; with
/// <c>--draft</c> it decodes speculatively with a smaller model that shares the tokenizer.
/// </summary>
public static class GenerateCommand
{
    /// <summary>Builds the <c>tessera generate</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Run folder, checkpoint folder, .gguf file, or Hugging Face folder.", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder (or `bytes`); default: the checkpoint's, or the GGUF file's vocabulary." };
        var quant = new Option<string>("--quant") { Description = "Run the projections as f32, q8_0, q4_0 or ternary (quantized at load).", DefaultValueFactory = _ => "f32" };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue (BOS is added).", Required = true };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens to generate at most.", DefaultValueFactory = _ => 128 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature; 0 = greedy.", DefaultValueFactory = _ => 0.8f };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens; 0 = off.", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus: keep the smallest set reaching p; 1 = off.", DefaultValueFactory = _ => 1f };
        var minP = new Option<float>("--min-p") { Description = "Drop tokens below min-p × the top probability; 0 = off.", DefaultValueFactory = _ => 0f };
        var seed = new Option<ulong>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 0UL };
        var draft = new Option<string?>("--draft") { Description = "Smaller run/checkpoint with the same tokenizer for speculative decoding." };
        var draftTokens = new Option<int>("--draft-tokens") { Description = "Tokens drafted per speculative step.", DefaultValueFactory = _ => 4 };
        var ngram = new Option<string?>("--ngram") { Description = "∞-gram index folder to mix into the model's next-token distribution." };
        var ralm = RalmCommand.Options();
        var ngramLambda = new Option<double>("--ngram-lambda") { Description = "Weight λ of the ∞-gram in the mixture (see `tessera ngram eval`).", DefaultValueFactory = _ => 0.3 };
        var json = BenchCommand.JsonOption();
        var image = new Option<string[]>("--image") { Description = "PNG or JPEG placed before the prompt (repeatable; a video is its frames in order); needs a multimodal model folder.", AllowMultipleArgumentsPerToken = false };
        var cmd = new Command("generate", "Sample from a checkpoint with the KV-cache engine (optionally speculative), streaming tokens.")
            { model, tokenizer, quant, prompt, maxTokens, temperature, topK, topP, minP, seed, draft, draftTokens, ngram, ngramLambda, image, json };
        ralm.AddTo(cmd);
        cmd.Options.Add(ModuleCommand.Modules);
        cmd.Options.Add(ModuleCommand.Registry);
        cmd.SetAction(async (p, cancel) =>
        {
            bool quiet = p.GetValue(json);
            var sampling = new SamplingOptions
            {
                Temperature = p.GetValue(temperature), TopK = p.GetValue(topK), TopP = p.GetValue(topP), MinP = p.GetValue(minP), Seed = p.GetValue(seed),
            }.Validate();
            if (p.GetValue(maxTokens) < 0) throw new ArgumentException($"--max-tokens must be ≥ 0, got {p.GetValue(maxTokens)}.");
            var format = ParseFormat(p.GetValue(quant)!);
            string source = p.GetValue(model)!;
            var (owner, weights, dir) = ModelFiles.LoadWeights(source);
            using var target = owner;
            if (format != WeightFormat.F32) weights = weights.Quantize(format);
            var (tok, bos, eos) = ModelFiles.LoadTokenizer(source, dir, p.GetValue(tokenizer));
            if (weights.Config.VocabSize != tok.VocabSize)
                throw new InvalidDataException($"{dir}: the model's vocabulary ({weights.Config.VocabSize}) does not match its tokenizer's ({tok.VocabSize}).");
            using var draftModel = p.GetValue(draft) is { } d ? Checkpoint.LoadModel(d) : null;

            var ids = new List<int>();
            if (bos is { } b) ids.Add(b);
            ids.AddRange(tok.Encode(p.GetValue(prompt)!));
            if (ids.Count == 0) throw new ArgumentException("--prompt encodes to no tokens and the model has no BOS token.");
            var stops = eos is { } e ? new HashSet<int> { e } : null;
            using var store = p.GetValue(ngram) is { } ngramDir ? Data.NGram.NGramStore.Open(ngramDir) : null;
            if (store is not null)
            {
                store.CheckTokenizer(Data.NGram.TokenizerIdentity.Of(tok));
                if (p.GetValue(ngramLambda) is < 0 or > 1) throw new ArgumentException($"--ngram-lambda must be in [0, 1], got {p.GetValue(ngramLambda)}.");
                sampling = sampling with { LogitsProcessor = new Evals.NGramLogitsProcessor(store, p.GetValue(ngramLambda)) };
            }
            var request = new GenerationRequest(ids, p.GetValue(maxTokens), sampling, stops);
            var images = p.GetValue(image) ?? [];
            if (images.Length > 0)
            {
                if (draftModel is not null || store is not null || (p.GetValue(ModuleCommand.Modules) ?? []).Length > 0 || p.GetValue<string?>("--index") is not null)
                    throw new ArgumentException("--image runs on the plain engine: it cannot be combined with --draft, --ngram, --module or --index.");
                using var embedder = ImagePrompt.LoadEmbedder(source, weights.Config.Dim);
                request = ImagePrompt.Build(embedder, tok, bos, p.GetValue(prompt)!, images, weights.Config.ContextLength, p.GetValue(maxTokens), sampling, stops);
                ids = [.. request.Prompt];
            }

            // Modules run in the KV-cache engine, turned on for this request: the path `serve --modules` takes (docs/modules.md).
            if ((p.GetValue(ModuleCommand.Modules) ?? []).Length > 0)
            {
                if (target is null || format != WeightFormat.F32 || draftModel is not null)
                    throw new ArgumentException("--module needs an fp32 Tessera or Hugging Face base (no --quant, no --draft, no .gguf).");
                ModuleCommand.AttachFromCommandLine(p, target, quiet ? null : Console.Error.WriteLine);
                request = request with { Modules = [.. target.Modules.Attached.Select(m => m.Id)] };
            }
            IGenerationEngine engine = target is not null && target.Modules.Attached.Count > 0
                ? new BatchingEngine(weights, new BatchingOptions { MaxSequences = 1 }, new InferenceModules(target))
                : draftModel is null
                ? new BatchingEngine(weights, new BatchingOptions { MaxSequences = 1 })
                : new SpeculativeEngine(weights, InferenceWeights.FromTransformer(draftModel), p.GetValue(draftTokens));
            try
            {
                if (!quiet) Console.Write(p.GetValue(prompt));
                var generated = new List<int>();
                string shown = "";
                var finish = FinishReason.None;
                double logprob = 0;
                var sw = Stopwatch.StartNew();
                double firstToken = 0;
                await foreach (var ev in ralm.Events(p, engine, tok, bos, request, quiet, cancel))
                {
                    if (generated.Count == 0) firstToken = sw.Elapsed.TotalSeconds;
                    generated.Add(ev.Id);
                    logprob += ev.Logprob;
                    finish = ev.Finish;
                    if (quiet) continue;
                    // Decode the whole continuation and print what is new, holding back a partial UTF-8 character.
                    string text = tok.Decode(generated.ToArray());
                    int stable = text.EndsWith('\uFFFD') ? text.LastIndexOf('\uFFFD') : text.Length;
                    if (stable > shown.Length && text.StartsWith(shown, StringComparison.Ordinal))
                    {
                        Console.Write(text[shown.Length..stable]);
                        shown = text[..stable];
                    }
                }
                double seconds = sw.Elapsed.TotalSeconds;
                string all = tok.Decode(generated.ToArray());
                double rate = generated.Count > 1 ? (generated.Count - 1) / Math.Max(1e-9, seconds - firstToken) : 0;
                if (quiet)
                {
                    var spec = (engine as SpeculativeEngine)?.Decoder;
                    Console.WriteLine(JsonSerializer.Serialize(new
                    {
                        prompt = p.GetValue(prompt), text = all, prompt_tokens = ids.Count, tokens = generated.Count, ids = generated,
                        finish = finish.ToString().ToLowerInvariant(), sum_logprob = logprob, seconds, time_to_first_token = firstToken,
                        decode_tokens_per_second = rate, speculative = spec is null ? null : new { draft_tokens = spec.DraftTokens, steps = spec.Steps, accepted = spec.Accepted, drafted = spec.Drafted },
                    }, JsonNaming.Line));
                }
                else
                {
                    if (all.Length > shown.Length && all.StartsWith(shown, StringComparison.Ordinal)) Console.Write(all[shown.Length..]);
                    Console.WriteLine();
                    string specNote = engine is SpeculativeEngine s ? $", {s.Decoder.TokensPerStep:F2} tokens per target pass" : "";
                    Console.Error.WriteLine($"[{generated.Count} tokens, {finish.ToString().ToLowerInvariant()}, first token {firstToken * 1000:F0} ms, {rate:F1} tokens/s{specNote}]");
                }
            }
            finally { (engine as IDisposable)?.Dispose(); }
            return 0;
        });
        return cmd;
    }

    /// <summary>f32 | q8_0 | q4_0 | q4_k | q5_k | q6_k | ternary (case-insensitive).</summary>
    public static WeightFormat ParseFormat(string name) => name.ToLowerInvariant() switch
    {
        "f32" or "fp32" => WeightFormat.F32,
        "q8_0" => WeightFormat.Q8_0,
        "q4_0" => WeightFormat.Q4_0,
        "ternary" => WeightFormat.Ternary,
        "q4_k" => WeightFormat.Q4_K,
        "q5_k" => WeightFormat.Q5_K,
        "q6_k" => WeightFormat.Q6_K,
        _ => throw new ArgumentException($"Unknown weight format '{name}'. Known: f32, q8_0, q4_0, q4_k, q5_k, q6_k, ternary."),
    };
}
