using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Tessera.Evals.LongContext;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Text;
using Tessera.Training.Experiments;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera eval long-context</c>: the RULER-style tasks at several lengths through the batching
/// engine, per-task scores and a needle depth × length heat map; <c>tessera eval long-context-data</c>:
/// the same items with their answers as a JSONL training corpus (for a model trained at that length).
/// </summary>
public static class LongContextCommand
{
    static Option<string> Lengths() => new("--lengths") { Description = "Comma-separated prompt lengths in tokens (those past the model's context are skipped).", DefaultValueFactory = _ => "1024,2048,4096,8192" };
    static Option<string> Haystack() => new("--haystack") { Description = "Haystack: `noise` (RULER's repeated sentences), `corpus` (the embedded corpus) or a text file.", DefaultValueFactory = _ => "noise" };
    static Option<string> Tasks() => new("--tasks") { Description = "Comma-separated tasks (niah_single, niah_multikey, niah_multivalue, niah_multiquery, variable_tracking, common_words) or all.", DefaultValueFactory = _ => "all" };
    static Option<ulong> Seed() => new("--seed") { Description = "Seed of the generated items.", DefaultValueFactory = _ => 7UL };

    static int[] ParseLengths(string s)
    {
        var list = s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(x => int.TryParse(x, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 64 ? v : throw new ArgumentException($"--lengths: '{x}' is not a length ≥ 64 tokens.")).ToArray();
        return list.Length > 0 ? list : throw new ArgumentException("--lengths: name at least one length.");
    }

    static double[] ParseDepths(string s)
        => [.. s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(x => double.TryParse(x, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v is >= 0 and <= 1 ? v : throw new ArgumentException($"--depths: '{x}' is not a depth in [0, 1]."))];

    static RulerTasks Generator(ITokenizer tok, string haystack) => haystack switch
    {
        "noise" => new RulerTasks(tok),
        "corpus" => new RulerTasks(tok, string.Join("\n", Tessera.Data.EmbeddedCorpus.Read().Select(d => d.Text))),
        _ => File.Exists(haystack) ? new RulerTasks(tok, File.ReadAllText(haystack)) : throw new FileNotFoundException($"--haystack: {haystack} is neither noise, corpus nor a file."),
    };

    /// <summary>Builds <c>eval long-context</c>.</summary>
    public static Command Eval()
    {
        var model = new Option<string>("--model") { Description = "Checkpoint, run folder, HF folder or .gguf.", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer (default: the model's)." };
        var lengths = Lengths();
        var depths = new Option<string>("--depths") { Description = "Needle depths (0 = start, 1 = end) of the heat map's rows.", DefaultValueFactory = _ => "0,0.25,0.5,0.75,1" };
        var samples = new Option<int>("--samples") { Description = "Items per task and length (per depth for the single needle).", DefaultValueFactory = _ => 10 };
        var tasks = Tasks();
        var haystack = Haystack();
        var seed = Seed();
        var output = new Option<string?>("--out") { Description = "Folder for long-context.json and long-context-needle.svg." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("long-context", "RULER-style long-context tasks at several lengths: per-task scores and a needle depth × length heat map (SVG).")
            { model, tokenizer, lengths, depths, samples, tasks, haystack, seed, output, json };
        cmd.SetAction(async (p, cancel) =>
        {
            bool asJson = p.GetValue(json);
            var options = new LongContextOptions
            {
                Lengths = ParseLengths(p.GetValue(lengths)!), Depths = ParseDepths(p.GetValue(depths)!), Samples = p.GetValue(samples),
                Tasks = LongContextEval.ParseTasks(p.GetValue(tasks)!), Seed = p.GetValue(seed),
            };
            if (options.Depths.Count == 0) throw new ArgumentException("--depths: name at least one depth.");
            if (options.Samples < 1) throw new ArgumentException($"--samples must be ≥ 1, got {options.Samples}.");
            string source = p.GetValue(model)!;
            var (owner, weights, dir) = ModelFiles.LoadWeights(source);
            using var _ = owner;
            var (tok, bos, _) = ModelFiles.LoadTokenizer(source, dir, p.GetValue(tokenizer));
            using var engine = new BatchingEngine(weights, new BatchingOptions { MaxSequences = 8 });
            Action<string>? log = asJson ? null : line => Console.Error.WriteLine(line);
            var report = await LongContextEval.RunAsync(engine, tok, bos, Generator(tok, p.GetValue(haystack)!), options, log, cancel);
            string text = JsonSerializer.Serialize(new
            {
                model = dir, context = weights.Config.ContextLength, sliding_window = weights.Config.SlidingWindow, haystack = p.GetValue(haystack),
                report.Lengths, report.Skipped, report.Depths, report.Items,
                tasks = report.Tasks.ToDictionary(t => t.Key, t => t.Value.ToDictionary(kv => kv.Key.ToString(CultureInfo.InvariantCulture), kv => kv.Value)),
                needle_grid = report.NeedleGrid,
            }, JsonNaming.Indented);
            bool needle = options.Tasks.Contains(RulerTask.SingleNeedle);
            if (p.GetValue(output) is { } outDir)
            {
                Directory.CreateDirectory(outDir);
                AtomicFile.WriteAllText(Path.Combine(outDir, "long-context.json"), text);
                if (needle)
                {
                    var grid = new double[report.Depths.Count, report.Lengths.Count];
                    for (int d = 0; d < report.Depths.Count; d++) for (int l = 0; l < report.Lengths.Count; l++) grid[d, l] = report.NeedleGrid[d][l];
                    new HeatMap($"Needle retrieval: {Path.GetFileName(Path.TrimEndingDirectorySeparator(dir))}",
                        [.. report.Depths.Select(d => $"depth {d:0.##}")], [.. report.Lengths.Select(l => $"{l} tokens")], grid).Save(outDir, "long-context-needle");
                }
                log?.Invoke($"wrote {outDir}/long-context.json" + (needle ? " and long-context-needle.svg" : " (no heat map: niah_single was not run)"));
            }
            if (asJson) { Console.WriteLine(text); return 0; }
            Console.WriteLine($"{"task",-18} " + string.Join(" ", report.Lengths.Select(l => $"{l,8}")));
            foreach (var (task, perLength) in report.Tasks)
                Console.WriteLine($"{task,-18} " + string.Join(" ", report.Lengths.Select(l => $"{perLength[l],8:P1}")));
            if (!needle) return 0;
            Console.WriteLine("needle depth × length:");
            for (int d = 0; d < report.Depths.Count; d++)
                Console.WriteLine($"  depth {report.Depths[d],-5:0.##}      " + string.Join(" ", report.NeedleGrid[d].Select(v => $"{v,8:P1}")));
            return 0;
        });
        return cmd;
    }

    /// <summary>Builds <c>eval long-context-data</c>.</summary>
    public static Command Data()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer the lengths are measured in (directory, tokenizer.json, .gguf or bytes).", Required = true };
        var lengths = Lengths();
        var items = new Option<int>("--items") { Description = "Documents per task and length.", DefaultValueFactory = _ => 200 };
        var tasks = Tasks();
        var haystack = Haystack();
        var seed = new Option<ulong>("--seed") { Description = "Seed (use another than the eval's, e.g. 1000 + n, so training items differ from test items).", DefaultValueFactory = _ => 1000UL };
        var output = new Option<string>("--out") { Description = "JSONL file to write (one {\"text\": …} per document).", Required = true };
        var answerOnly = new Option<bool>("--answer-only") { Description = "Write {\"prompt\": …, \"completion\": \" ANSWER.\"} lines instead, so `tessera train` takes the loss on the answer only." };
        var edges = new Option<double>("--edge-share")
        {
            Description = "Share of documents whose first needle sits exactly at the start or the end of the haystack (half each), the eval's depths 0 and 1; " +
                          "the rest draw the depth uniformly, which almost never puts it at either edge.",
            DefaultValueFactory = _ => 0,
        };
        var cmd = new Command("long-context-data", "Write the long-context tasks with their answers as a JSONL corpus, to train a model at those lengths (`tessera data prepare --input FILE`).")
            { tokenizer, lengths, items, tasks, haystack, seed, output, answerOnly, edges };
        cmd.SetAction(p =>
        {
            var tok = TokenizerFiles.Load(p.GetValue(tokenizer)!);
            var gen = Generator(tok, p.GetValue(haystack)!);
            int n = p.GetValue(items);
            if (n < 1) throw new ArgumentException($"--items must be ≥ 1, got {n}.");
            double edgeShare = p.GetValue(edges);
            if (!(edgeShare is >= 0 and <= 1)) throw new ArgumentException($"--edge-share must be in [0, 1], got {edgeShare}.");
            var rng = new Random((int)p.GetValue(seed));
            var lines = new List<string>();
            ulong k = p.GetValue(seed) * 7_919;
            foreach (var task in LongContextEval.ParseTasks(p.GetValue(tasks)!))
                foreach (int len in ParseLengths(p.GetValue(lengths)!))
                    for (int i = 0; i < n; i++)
                    {
                        // With no edge share the draw is the single NextDouble it always was, so earlier corpora regenerate unchanged.
                        double depth = edgeShare > 0 && rng.NextDouble() < edgeShare ? (rng.Next(2) == 0 ? 0 : 1) : rng.NextDouble();
                        var item = gen.Generate(task, len, depth, k++);
                        lines.Add(p.GetValue(answerOnly)
                            ? JsonSerializer.Serialize(new { prompt = item.Prompt, completion = item.WithAnswer[item.Prompt.Length..] })
                            : JsonSerializer.Serialize(new { text = item.WithAnswer }));
                    }
            AtomicFile.WriteAllText(p.GetValue(output)!, string.Join("\n", lines) + "\n");
            Console.Error.WriteLine($"wrote {lines.Count} documents to {p.GetValue(output)}");
            return 0;
        });
        return cmd;
    }
}
