using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Tessera.Bench;
using Tessera.Data;
using Tessera.Inference;
using Tessera.Model;
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
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Run or checkpoint folder; default: a random ≈29M-parameter (≈118 MB fp32) dense model." };
        var draft = new Option<string?>("--draft") { Description = "Smaller run/checkpoint with the same tokenizer: measures speculative decoding." };
        var draftTokens = new Option<int>("--draft-tokens") { Description = "Tokens drafted per speculative step.", DefaultValueFactory = _ => 4 };
        var decodeTokens = new Option<int>("--decode-tokens") { Description = "Tokens generated for the batch-1 figure.", DefaultValueFactory = _ => 64 };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("decode", "Inference engine: prefill tokens/s, batch-1 decode vs the memory roofline, 1/8/32 concurrent sequences, speculation.")
            { model, draft, draftTokens, decodeTokens, json };
        cmd.SetAction(p =>
        {
            bool asJson = p.GetValue(json);
            Action<string>? progress = asJson ? null : line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]");
            string? modelPath = p.GetValue(model), draftPath = p.GetValue(draft);
            if (draftPath is not null && modelPath is null) throw new ArgumentException("--draft needs --model (speculation is measured on trained models).");

            string name;
            Transformer target;
            if (modelPath is null)
            {
                progress?.Invoke("building a random model (speed does not depend on training)");
                target = new Transformer(DecodeBench.RandomModelConfig, seed: 1);
                name = "random dense";
            }
            else { target = Checkpoint.LoadModel(modelPath); name = Checkpoint.Resolve(modelPath); }
            using var targetOwner = target;
            using var draftModel = draftPath is null ? null : Checkpoint.LoadModel(draftPath);

            var options = new DecodeBenchOptions(DecodeTokens: p.GetValue(decodeTokens), DraftTokens: p.GetValue(draftTokens),
                SpeculationPrompts: draftModel is null ? null : InDomainPrompts(Checkpoint.Resolve(modelPath!), target.Config));
            var report = DecodeBench.Run(name, InferenceWeights.FromTransformer(target),
                draftModel is null ? null : InferenceWeights.FromTransformer(draftModel), options, progress);
            if (asJson) Console.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
            else Print(report);
            return 0;
        });
        return cmd;
    }

    /// <summary>Prompts cut from the embedded corpus (the text the models were trained on), tokenized with the model's tokenizer.</summary>
    static List<int[]> InDomainPrompts(string checkpoint, ModelConfig config)
    {
        var tok = RunSetup.LoadRunTokenizer(Path.Combine(checkpoint, Checkpoint.TokenizerFolder));
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
        AnsiConsole.MarkupLine($"model: [bold]{Markup.Escape(r.Model)}[/], {r.Parameters / 1e6:F1}M parameters, {r.WeightBytes / 1e6:F0} MB of weights, {r.Threads} threads");
        AnsiConsole.MarkupLine($"measured read bandwidth: [bold]{r.BandwidthGBps:F1} GB/s[/]; bytes per decoded token (active weights + KV): {r.BytesPerToken / 1e6:F1} MB");
        var t = new Table().AddColumns("figure", "value", "note");
        t.AddRow("prefill", $"{r.PrefillTokensPerSecond:F0} tok/s", "one prompt, one pass");
        t.AddRow("batch-1 decode", $"{r.DecodeTokensPerSecond:F1} tok/s", $"roofline {r.RooflineTokensPerSecond:F1} tok/s → [bold]{r.PercentOfRoofline:F0}%[/]");
        foreach (var a in r.Aggregate)
            t.AddRow($"{a.Sequences} sequences", $"{a.TokensPerSecond:F1} tok/s", $"{a.VersusBatch1:F1}× batch-1 ({a.Tokens} tokens in {a.Seconds:F2} s)");
        if (r.Speculation is { } s)
            t.AddRow($"speculative (k={s.DraftTokens})", $"{s.SpeculativeTokensPerSecond:F1} tok/s",
                $"plain {s.PlainTokensPerSecond:F1} tok/s → [bold]{s.Speedup:F2}×[/]; {s.MeanAcceptedPerStep:F2} accepted/step, {s.TokensPerStep:F2} tokens/pass; same tokens: {s.SameTokens}");
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine("[grey]roofline = bandwidth ÷ bytes read per token (every weight matrix used once per token: attention, router + top-k experts, head; plus the KV cache).[/]");
    }
}
