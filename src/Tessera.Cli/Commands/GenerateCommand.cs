using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera generate</c>: samples from a checkpoint (a run folder's latest or a step folder) with
/// the fast engine, streaming text to stdout as tokens arrive; with <c>--draft</c> it decodes
/// speculatively with a smaller model that shares the tokenizer.
/// </summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Run folder or checkpoint folder.", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue (BOS is added).", Required = true };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens to generate at most.", DefaultValueFactory = _ => 128 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature; 0 = greedy.", DefaultValueFactory = _ => 0.8f };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens; 0 = off.", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus: keep the smallest set reaching p; 1 = off.", DefaultValueFactory = _ => 1f };
        var minP = new Option<float>("--min-p") { Description = "Drop tokens below min-p × the top probability; 0 = off.", DefaultValueFactory = _ => 0f };
        var seed = new Option<ulong>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 0UL };
        var draft = new Option<string?>("--draft") { Description = "Smaller run/checkpoint with the same tokenizer for speculative decoding." };
        var draftTokens = new Option<int>("--draft-tokens") { Description = "Tokens drafted per speculative step.", DefaultValueFactory = _ => 4 };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("generate", "Sample from a checkpoint with the KV-cache engine (optionally speculative), streaming tokens.")
            { model, prompt, maxTokens, temperature, topK, topP, minP, seed, draft, draftTokens, json };
        cmd.SetAction(async (p, cancel) =>
        {
            bool quiet = p.GetValue(json);
            var sampling = new SamplingOptions
            {
                Temperature = p.GetValue(temperature), TopK = p.GetValue(topK), TopP = p.GetValue(topP), MinP = p.GetValue(minP), Seed = p.GetValue(seed),
            }.Validate();
            if (p.GetValue(maxTokens) < 0) throw new ArgumentException($"--max-tokens must be ≥ 0, got {p.GetValue(maxTokens)}.");
            string dir = Checkpoint.Resolve(p.GetValue(model)!);
            var tok = RunSetup.LoadRunTokenizer(Path.Combine(dir, Checkpoint.TokenizerFolder));
            using var target = Checkpoint.LoadModel(dir);
            if (target.Config.VocabSize != tok.VocabSize)
                throw new InvalidDataException($"{dir}: the model's vocabulary ({target.Config.VocabSize}) does not match its tokenizer's ({tok.VocabSize}).");
            using var draftModel = p.GetValue(draft) is { } d ? Checkpoint.LoadModel(d) : null;

            var ids = new List<int> { tok.SpecialTokens.Id(ChatTemplate.Bos) };
            ids.AddRange(tok.Encode(p.GetValue(prompt)!));
            var stops = tok.SpecialTokens.TryGetId(ChatTemplate.Eos, out int eos) ? new HashSet<int> { eos } : null;
            var request = new GenerationRequest(ids, p.GetValue(maxTokens), sampling, stops);

            IGenerationEngine engine = draftModel is null
                ? new BatchingEngine(target, new BatchingOptions { MaxSequences = 1 })
                : new SpeculativeEngine(target, draftModel, p.GetValue(draftTokens));
            try
            {
                if (!quiet) Console.Write(p.GetValue(prompt));
                var generated = new List<int>();
                string shown = "";
                var finish = FinishReason.None;
                double logprob = 0;
                var sw = Stopwatch.StartNew();
                double firstToken = 0;
                await foreach (var ev in engine.GenerateAsync(request, cancel))
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
                    }));
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
}
