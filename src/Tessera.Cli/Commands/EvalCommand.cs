using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Tessera.Evals;
using Tessera.Kernels.IO;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera eval</c>: held-out bits per byte, minimal pairs, multiple choice and the
/// contamination report for one checkpoint; <c>tessera eval leak-demo</c>: the contamination
/// demonstration (a tiny model trained on a half-leaked eval set).
/// </summary>
public static class EvalCommand
{
    /// <summary>Limits of `--quick`: enough items to exercise every path in CI minutes.</summary>
    const int QuickItems = 100;
    const long QuickBpbTokens = 16_384;
    const long DefaultBpbTokens = 262_144;

    /// <summary>Builds the <c>tessera eval</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Checkpoint folder, or a run folder (its latest complete checkpoint)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer directory or `bytes` (default: the checkpoint's tokenizer/, else the run folder's)." };
        var data = new Option<string?>("--data") { Description = "Prepared data folder (meta.json): bits per byte of train/val/test." };
        var blimp = new Option<string?>("--blimp") { Description = "BLiMP-style jsonl file or folder of them (sentence_good / sentence_bad)." };
        var hellaswag = new Option<string?>("--hellaswag") { Description = "HellaSwag file in llama.cpp --hellaswag format (6 lines per item)." };
        var contamination = new Option<string?>("--contamination") { Description = "Training shard or prepared folder: report n-gram overlap of each eval set with it." };
        var ngram = new Option<int>("--ngram") { Description = "N of the contamination n-grams (tokens).", DefaultValueFactory = _ => 13 };
        var limit = new Option<int?>("--limit") { Description = "At most N items per eval file." };
        var bpbTokens = new Option<long?>("--bpb-tokens") { Description = $"Targets scored per split for bits per byte (0 = whole split; default {DefaultBpbTokens:N0})." };
        var batchTokens = new Option<int>("--batch-tokens") { Description = "Tokens (B·T) per forward pass.", DefaultValueFactory = _ => 8192 };
        var quick = new Option<bool>("--quick") { Description = $"CI size: {QuickItems} items per file and {QuickBpbTokens:N0} tokens per split unless given." };
        var output = new Option<string?>("--out") { Description = "Folder to write eval.json into (e.g. the run folder)." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("eval", "Held-out bits per byte, minimal-pair and multiple-choice accuracy, and a contamination report for a checkpoint.")
        {
            model, tokenizer, data, blimp, hellaswag, contamination, ngram, limit, bpbTokens, batchTokens, quick, output, json,
            ModuleCommand.Modules, ModuleCommand.Registry,
        };
        cmd.Subcommands.Add(LeakDemo());
        cmd.Subcommands.Add(RalmCommand.Eval());
        cmd.Subcommands.Add(RetroTrainCommand.Plot());
        cmd.Subcommands.Add(CorpusSwapCommand.Create());
        cmd.Subcommands.Add(MailEvalCommand.Create());
        cmd.Subcommands.Add(LongContextCommand.Eval());
        cmd.Subcommands.Add(LongContextCommand.Data());
        cmd.SetAction(p =>
        {
            bool asJson = p.GetValue(json), isQuick = p.GetValue(quick);
            string modelPath = p.GetValue(model) ?? throw new ArgumentException("--model is required (a checkpoint or run folder).");
            if (FashionMnistCommand.IsFashionModel(modelPath))   // Fashion-MNIST by prompting: test accuracy and an example grid
                return FashionMnistCommand.Eval(modelPath, isQuick ? 2000 : 10_000, asJson);
            if (Vision.MultimodalCheckpoint.IsMultimodal(modelPath))   // a shapes-world model: VQA exact match per question type
                return ShapesCommands.Eval(modelPath, isQuick ? 50 : p.GetValue(limit) ?? 300, 1, asJson);
            long? cap = p.GetValue(bpbTokens) is { } c ? (c == 0 ? null : c) : isQuick ? QuickBpbTokens : DefaultBpbTokens;
            var options = new EvalOptions
            {
                Data = p.GetValue(data), MinimalPairs = p.GetValue(blimp), HellaSwag = p.GetValue(hellaswag), Contamination = p.GetValue(contamination),
                NGram = p.GetValue(ngram), Limit = p.GetValue(limit) ?? (isQuick ? QuickItems : null), BitsPerByteTokens = cap, BatchTokens = p.GetValue(batchTokens),
            };
            // Every input is checked before the model is loaded or anything is scored.
            var inputs = EvalInputs.Load(options);
            var (loaded, checkpoint) = ModelFiles.LoadModel(modelPath);
            using var m = loaded;
            var tok = ModelFiles.LoadTokenizer(modelPath, checkpoint, p.GetValue(tokenizer)).Tokenizer;
            Action<string>? log = asJson ? null : line => Console.Error.WriteLine(line);
            ModuleCommand.AttachFromCommandLine(p, m, log);   // modules run in the training forward that scores here
            log?.Invoke($"model {checkpoint}: {m.Parameters.ElementCount:N0} parameters, context {m.Config.ContextLength}, tokenizer {tok.Name}");
            var results = EvalSuite.Run(m, tok, inputs, options, checkpoint, log);
            string text = results.ToJson();
            if (p.GetValue(output) is { } dir) AtomicFile.WriteAllText(Path.Combine(dir, "eval.json"), text);
            if (asJson) Console.WriteLine(text);
            else Print(results);
            return 0;
        });
        return cmd;
    }

    /// <summary>The tokenizer of a model source (see <see cref="ModelFiles.LoadTokenizer"/>), unless given.</summary>
    internal static ITokenizer LoadTokenizer(string? given, string checkpoint) => ModelFiles.LoadTokenizer(checkpoint, checkpoint, given).Tokenizer;

    static string F(double v, string format) => double.IsNaN(v) ? "–" : v.ToString(format, CultureInfo.InvariantCulture);
    static string Pct(double share) => double.IsNaN(share) ? "–" : F(share * 100, "F1") + "%";

    static void Print(EvalResults r)
    {
        if (r.BitsPerByte.Count > 0)
        {
            var t = new Table().Title("held-out bits per byte").AddColumns("split", "bits/byte", "nats/token", "tokens scored", "of split", "window/stride");
            foreach (var b in r.BitsPerByte)
                t.AddRow(b.Split, F(b.BitsPerByte, "F4"), F(b.LossPerToken, "F4"), b.TokensScored.ToString("N0", CultureInfo.InvariantCulture),
                    Pct(b.Fraction), $"{b.Window}/{b.Stride}");
            AnsiConsole.Write(t);
        }
        if (r.MinimalPairs.Count > 0)
        {
            var t = new Table().Title("minimal pairs (log p(good) > log p(bad))").AddColumns("set", "pairs", "accuracy", "mean log p good", "mean log p bad");
            foreach (var m in r.MinimalPairs)
                t.AddRow(Markup.Escape(m.Name), m.Pairs.ToString(CultureInfo.InvariantCulture), Pct(m.Accuracy), F(m.MeanGoodLogProb, "F2"), F(m.MeanBadLogProb, "F2"));
            t.AddRow("[bold]mean[/]", "", Pct(r.MinimalPairsMeanAccuracy), "", "");
            AnsiConsole.Write(t);
        }
        if (r.MultipleChoice.Count > 0)
        {
            var t = new Table().Title("multiple choice (chance 25%)").AddColumns("set", "items", "acc per-token", "acc sum", "acc per-byte");
            foreach (var m in r.MultipleChoice)
                t.AddRow(Markup.Escape(m.Name), m.Items.ToString(CultureInfo.InvariantCulture), F(m.AccuracyPerToken * 100, "F1") + "%", Pct(m.Accuracy), F(m.AccuracyPerByte * 100, "F1") + "%");
            AnsiConsole.Write(t);
        }
        if (r.Contamination.Count > 0) AnsiConsole.Write(ContaminationTable(r.Contamination, $"contamination ({r.ContaminationNGrams:N0} training n-grams)"));
        AnsiConsole.MarkupLine($"done in {r.Seconds:F1} s");
    }

    static Table ContaminationTable(IReadOnlyList<ContaminationResult> rows, string title)
    {
        var t = new Table().Title(Markup.Escape(title)).AddColumns("set", "n", "overlap", "unchecked", "acc clean", "acc overlap", "score clean", "score overlap");
        foreach (var c in rows)
            t.AddRow(Markup.Escape(c.Set), c.N.ToString(CultureInfo.InvariantCulture), $"{c.Overlapping}/{c.Items}",
                c.Unchecked.ToString(CultureInfo.InvariantCulture), Pct(c.Clean.Accuracy), Pct(c.Overlap.Accuracy), F(c.Clean.MeanScore, "F3"), F(c.Overlap.MeanScore, "F3"));
        return t.Caption(Markup.Escape("score = " + string.Join("; ", DistinctScoreNames(rows)) + "; unchecked = items shorter than n tokens (counted clean)"));
    }

    static List<string> DistinctScoreNames(IReadOnlyList<ContaminationResult> rows)
    {
        var names = new List<string>();
        foreach (var c in rows) if (!names.Contains(c.ScoreName)) names.Add(c.ScoreName);
        return names;
    }

    static Command LeakDemo()
    {
        var quick = new Option<bool>("--quick") { Description = "CI size (100 items, 500 steps; well under a minute)." };
        var pairs = new Option<string?>("--pairs") { Description = "A BLiMP-style jsonl file to leak from instead of synthetic pseudo-word pairs." };
        var output = new Option<string?>("--out") { Description = "Folder to write leak-demo.json into." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("leak-demo", "Contamination demonstration: train a tiny model with half of an eval set leaked into its data; the report shows the leaked half inflated and the clean half not.")
        {
            quick, pairs, output, json,
        };
        cmd.SetAction(p =>
        {
            bool asJson = p.GetValue(json);
            var o = p.GetValue(quick) ? LeakExperimentOptions.Quick : LeakExperimentOptions.Full;
            IReadOnlyList<MinimalPair>? items = p.GetValue(pairs) is { } f ? MinimalPairs.Load(f, o.Items) : null;
            string scratch = Path.Combine(Path.GetTempPath(), $"tessera-leak-{Environment.ProcessId}");
            try
            {
                var r = LeakExperiment.Run(o, scratch, items, asJson ? null : line => Console.Error.WriteLine(line));
                string text = JsonNaming.Serialize(r);
                if (p.GetValue(output) is { } dir) AtomicFile.WriteAllText(Path.Combine(dir, "leak-demo.json"), text);
                if (asJson) { Console.WriteLine(text); return 0; }
                AnsiConsole.Write(ContaminationTable([r.Report], $"contamination report ({r.Items} items, half leaked ×{r.Repeats}, {r.Steps} steps)"));
                AnsiConsole.MarkupLine($"ground truth: leaked {r.LeakedItems} items → flagged {r.LeakedFlagged}; clean {r.Items - r.LeakedItems} → flagged {r.CleanFlagged}");
                AnsiConsole.MarkupLine($"leaked: accuracy {Pct(r.Leaked.Accuracy)}, log p(good)/byte {F(r.Leaked.MeanScore, "F3")} | " +
                                       $"clean: accuracy {Pct(r.Clean.Accuracy)}, log p(good)/byte {F(r.Clean.MeanScore, "F3")}");
                return 0;
            }
            finally
            {
                if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
            }
        });
        return cmd;
    }
}
