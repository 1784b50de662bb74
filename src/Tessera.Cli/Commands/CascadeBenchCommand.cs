using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Server;
using Tessera.Training.Experiments;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera bench cascade</c>: quality against average cost per request of the small/large
/// cascade as its threshold moves, on a mixed workload of easy (held-out English, the small
/// model's domain) and hard (held-out C# source) prompts. Writes results.json, cascade.md (the
/// table) and cascade.svg/.png (the curve) into <c>--out</c>. <c>--write-corpus DIR</c> writes the
/// two domains' training and held-out text first (see <see cref="CascadeCorpus"/>).
/// </summary>
/// <remarks>
/// Each request is a prompt of <c>--prompt-tokens</c> tokens; its task is the next
/// <c>--answer-tokens</c> tokens of the held-out document. Quality is the answering model's
/// top-1 next-token accuracy on them (teacher-forced; the held-out log-likelihood per token is
/// reported beside it). Cost is forward FLOPs (<see cref="Model.ModelConfig.TrainingFlopsPerToken"/>
/// / 3 per token): every cascade request pays the small model's prompt pass (the confidence), then
/// the answering model's pass over prompt + answer, as the server does (it does not reuse the
/// scoring pass's KV). The small-only and large-only endpoints are the models alone, with no
/// scoring pass. Wall time of the same passes is reported too.
/// </remarks>
public static class CascadeBenchCommand
{
    /// <summary>One workload request's measurements.</summary>
    sealed record Row(bool Hard, double Confidence, double SmallAccuracy, double LargeAccuracy, double SmallLogLik, double LargeLogLik,
        double ScoreFlops, double SmallFlops, double LargeFlops, double ScoreSeconds, double SmallSeconds, double LargeSeconds);

    /// <summary>One point of the curve.</summary>
    public sealed record Point(string Name, double Threshold, double SmallShare, double Accuracy, double LogLik, double FlopsPerRequest, double SecondsPerRequest,
        double AccuracyVsLarge, double CostVsLarge);

    /// <summary>Builds the <c>tessera bench cascade</c> command.</summary>
    public static Command Create()
    {
        var small = new Option<string?>("--small") { Description = "The small model (run or checkpoint folder)." };
        var large = new Option<string?>("--large") { Description = "The large model (run or checkpoint folder, same tokenizer)." };
        var corpus = new Option<string>("--corpus") { Description = "Folder written by --write-corpus (held-out English and code documents).", DefaultValueFactory = _ => "runs/cascade/text" };
        var writeCorpus = new Option<string?>("--write-corpus") { Description = "Write the two domains' train/val/held-out text into this folder and stop." };
        var code = new Option<string>("--code") { Description = "With --write-corpus: the source tree whose *.cs files are the second domain.", DefaultValueFactory = _ => "src" };
        var output = new Option<string>("--out") { Description = "Output folder (results.json, cascade.md, cascade.svg).", DefaultValueFactory = _ => "runs/cascade/bench" };
        var easy = new Option<int>("--easy") { Description = "Easy requests (held-out English windows).", DefaultValueFactory = _ => 96 };
        var hard = new Option<int>("--hard") { Description = "Hard requests (held-out C# windows).", DefaultValueFactory = _ => 32 };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length per request.", DefaultValueFactory = _ => 64 };
        var answerTokens = new Option<int>("--answer-tokens") { Description = "Held-out tokens each request is judged on.", DefaultValueFactory = _ => 64 };
        var thresholds = new Option<string>("--thresholds") { Description = "Thresholds of the curve, comma-separated in [0, 1].", DefaultValueFactory = _ => "0,0.02,0.03,0.04,0.05,0.06,0.07,0.08,0.1,0.12,0.15,0.2,1" };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("cascade", "Small/large cascade: quality vs average cost per request as the threshold moves, on easy (in-domain) and hard (out-of-domain) prompts.")
            { small, large, corpus, writeCorpus, code, output, easy, hard, promptTokens, answerTokens, thresholds, json };
        cmd.SetAction(p =>
        {
            if (p.GetValue(writeCorpus) is { } dir)
            {
                var n = CascadeCorpus.Write(dir, p.GetValue(code)!);
                Console.WriteLine($"wrote {dir}: English {n.EnglishTrain} train / {n.EnglishHeldOut} held-out documents, code {n.CodeTrain} train / {n.CodeHeldOut} held-out");
                return 0;
            }
            string smallPath = p.GetValue(small) ?? throw new ArgumentException("bench cascade: give --small and --large (or --write-corpus DIR).");
            string largePath = p.GetValue(large) ?? throw new ArgumentException("bench cascade: --large is missing.");
            var ts = p.GetValue(thresholds)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : throw new ArgumentException($"--thresholds: '{s}' is not a number.")).ToArray();
            foreach (var t in ts) Cascade.CheckThreshold(t, "--thresholds");
            int pt = p.GetValue(promptTokens), at = p.GetValue(answerTokens);
            if (pt < 2 || at < 1) throw new ArgumentException("bench cascade: --prompt-tokens must be ≥ 2 and --answer-tokens ≥ 1.");
            return Run(smallPath, largePath, p.GetValue(corpus)!, p.GetValue(output)!, p.GetValue(easy), p.GetValue(hard), pt, at, ts, p.GetValue(json));
        });
        return cmd;
    }

    static int Run(string smallPath, string largePath, string corpusDir, string outDir, int easyCount, int hardCount, int pt, int at, double[] thresholds, bool asJson)
    {
        using var small = CascadeServing.LoadSmall(smallPath, null, 0);
        var (largeOwner, largeWeights, largeDir) = ModelFiles.LoadWeights(Path.GetFullPath(largePath));
        using var largeModelOwner = largeOwner;
        var largeTok = ModelFiles.LoadTokenizer(Path.GetFullPath(largePath), largeDir, null).Tokenizer;
        using var largeEngine = new BatchingEngine(largeWeights, new BatchingOptions());
        var largeModel = new ServedModel(ServeCommand.DefaultName(largeDir), largeEngine, largeTok);
        var cascade = CascadeServing.Build(null, small, largeModel, ServeCommand.DefaultName(largeDir), 0.5);
        var sc = small.Model.Engine.Config;
        var lc = largeWeights.Config;
        int window = pt + at;
        if (window > Math.Min(sc.ContextLength, lc.ContextLength)) throw new ArgumentException($"bench cascade: prompt + answer ({window} tokens) exceeds a model's context ({sc.ContextLength}, {lc.ContextLength}).");

        var requests = Windows(CascadeCorpus.HeldOut(corpusDir, "english"), small.Model, window, easyCount).Select(w => (Hard: false, Ids: w))
            .Concat(Windows(CascadeCorpus.HeldOut(corpusDir, "code"), small.Model, window, hardCount).Select(w => (Hard: true, Ids: w))).ToList();
        if (!asJson) Console.WriteLine($"small {small.Dir}: {sc.ActiveParameterCount:N0} active parameters; large {largeDir}: {lc.ActiveParameterCount:N0}; {easyCount} easy + {hardCount} hard requests of {pt} + {at} tokens");

        // Forward FLOPs per token at this sequence length: the training figure's forward third.
        double smallPerToken = sc.TrainingFlopsPerToken(window) / 3, largePerToken = lc.TrainingFlopsPerToken(window) / 3, scorePerToken = sc.TrainingFlopsPerToken(pt) / 3;
        var rows = new List<Row>();
        foreach (var (hard, ids) in requests)
        {
            var prompt = ids.Take(pt).ToArray();
            long t0 = Stopwatch.GetTimestamp();
            double conf = cascade.Confidence(prompt);
            double scoreSec = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            var (sAcc, sLl, sSec) = Judge(small.Model.Engine, ids, pt);
            var (lAcc, lLl, lSec) = Judge(largeEngine, ids, pt);
            rows.Add(new Row(hard, conf, sAcc, lAcc, sLl, lLl, scorePerToken * pt, smallPerToken * window, largePerToken * window, scoreSec, sSec, lSec));
        }

        var points = new List<Point>();
        Point Summarise(string name, double threshold, Func<Row, bool?> route)
        {
            // route: true = small, false = large, null = the model alone (no scoring pass).
            double acc = 0, ll = 0, flops = 0, sec = 0;
            int smallN = 0;
            foreach (var r in rows)
            {
                bool? s = route(r);
                bool goesSmall = s ?? name == "small only";
                if (goesSmall) smallN++;
                acc += goesSmall ? r.SmallAccuracy : r.LargeAccuracy;
                ll += goesSmall ? r.SmallLogLik : r.LargeLogLik;
                flops += (s is null ? 0 : r.ScoreFlops) + (goesSmall ? r.SmallFlops : r.LargeFlops);
                sec += (s is null ? 0 : r.ScoreSeconds) + (goesSmall ? r.SmallSeconds : r.LargeSeconds);
            }
            int n = rows.Count;
            return new Point(name, threshold, (double)smallN / n, acc / n, ll / n, flops / n, sec / n, 0, 0);
        }
        var smallOnly = Summarise("small only", 0, _ => null);
        var largeOnly = Summarise("large only", 1, _ => null);
        points.Add(smallOnly);
        foreach (var t in thresholds) points.Add(Summarise($"cascade t={t.ToString(CultureInfo.InvariantCulture)}", t, r => Cascade.GoesSmall(r.Confidence, t)));
        points.Add(largeOnly);
        points = [.. points.Select(q => q with { AccuracyVsLarge = q.Accuracy / largeOnly.Accuracy, CostVsLarge = q.FlopsPerRequest / largeOnly.FlopsPerRequest })];
        var best = points.Where(q => q.Name.StartsWith("cascade", StringComparison.Ordinal) && q.AccuracyVsLarge >= 0.9 && q.CostVsLarge <= 0.4).OrderBy(q => q.CostVsLarge).FirstOrDefault();

        Directory.CreateDirectory(outDir);
        var easyRows = rows.Where(r => !r.Hard).ToList();
        var hardRows = rows.Where(r => r.Hard).ToList();
        var result = new
        {
            small = small.Dir, large = largeDir,
            small_active_parameters = sc.ActiveParameterCount, large_active_parameters = lc.ActiveParameterCount,
            easy = easyCount, hard = hardCount, prompt_tokens = pt, answer_tokens = at,
            mean_confidence_easy = easyRows.Average(r => r.Confidence), mean_confidence_hard = hardRows.Average(r => r.Confidence),
            small_accuracy_easy = easyRows.Average(r => r.SmallAccuracy), large_accuracy_easy = easyRows.Average(r => r.LargeAccuracy),
            small_accuracy_hard = hardRows.Average(r => r.SmallAccuracy), large_accuracy_hard = hardRows.Average(r => r.LargeAccuracy),
            target_met = best is not null, best = best?.Name, points,
        };
        AtomicFile.WriteAllText(Path.Combine(outDir, "results.json"), JsonSerializer.Serialize(result, JsonNaming.Indented));
        AtomicFile.WriteAllText(Path.Combine(outDir, "cascade.md"), Table(points));
        var fig = new Figure("Cascade: quality vs cost as the threshold moves", "forward GFLOPs per request (mean)", "top-1 next-token accuracy")
            .Measured("cascade (threshold 0 → 1)", [.. points.Where(q => q.Name.StartsWith("cascade", StringComparison.Ordinal)).Select(q => (q.FlopsPerRequest / 1e9, q.Accuracy))], 0)
            .Measured("small only", [(smallOnly.FlopsPerRequest / 1e9, smallOnly.Accuracy)], 1)
            .Measured("large only", [(largeOnly.FlopsPerRequest / 1e9, largeOnly.Accuracy)], 2)
            .Add(new PlotSeries("90% of large only", [(0, 0.9 * largeOnly.Accuracy), (largeOnly.FlopsPerRequest * 1.05 / 1e9, 0.9 * largeOnly.Accuracy)], SeriesStyle.Reference, 3))
            .Add(new PlotSeries("40% of large-only cost", [(0.4 * largeOnly.FlopsPerRequest / 1e9, smallOnly.Accuracy * 0.9), (0.4 * largeOnly.FlopsPerRequest / 1e9, largeOnly.Accuracy * 1.02)], SeriesStyle.Reference, 4));
        fig.Save(outDir, "cascade");
        if (asJson) Console.WriteLine(JsonSerializer.Serialize(result, JsonNaming.Line));
        else
        {
            Console.Write(Table(points));
            Console.WriteLine($"confidence: easy {result.mean_confidence_easy:F3}, hard {result.mean_confidence_hard:F3}; accuracy easy small {result.small_accuracy_easy:F3} / large {result.large_accuracy_easy:F3}, hard small {result.small_accuracy_hard:F3} / large {result.large_accuracy_hard:F3}");
            Console.WriteLine(best is null ? "target (≥ 90% of large-only accuracy at ≤ 40% of its cost): MISSED" : $"target (≥ 90% of large-only accuracy at ≤ 40% of its cost): met by {best.Name} ({best.AccuracyVsLarge:P1} at {best.CostVsLarge:P1})");
            Console.WriteLine($"→ {outDir}");
        }
        return 0;
    }

    /// <summary>Mean top-1 accuracy and log-likelihood (nats/token) of the answer tokens (positions ≥ prompt), and the seconds the pass took.</summary>
    static (double Accuracy, double LogLik, double Seconds) Judge(IGenerationEngine engine, int[] ids, int promptTokens)
    {
        long t0 = Stopwatch.GetTimestamp();
        var scored = engine.Score(ids, 1);
        double sec = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        int hits = 0;
        double ll = 0;
        for (int i = promptTokens; i < ids.Length; i++)
        {
            if (scored[i].Top.Count > 0 && scored[i].Top[0].Id == ids[i]) hits++;
            ll += scored[i].Logprob;
        }
        int n = ids.Length - promptTokens;
        return ((double)hits / n, ll / n, sec);
    }

    /// <summary>
    /// <paramref name="count"/> windows of <paramref name="window"/> tokens (BOS first), spread evenly over the
    /// documents' token streams: documents are taken in turn, each contributing windows at evenly spaced offsets.
    /// </summary>
    static List<int[]> Windows(IReadOnlyList<string> docs, ServedModel model, int window, int count)
    {
        var encoded = docs.Select(d => model.EncodePrompt(d)).Where(ids => ids.Count >= window).ToList();
        if (encoded.Count == 0) throw new InvalidDataException($"bench cascade: no held-out document has {window} tokens.");
        long total = encoded.Sum(e => (long)(e.Count - window + 1));
        var result = new List<int[]>(count);
        // Evenly spaced positions over the concatenated start positions of all documents.
        for (int k = 0; k < count; k++)
        {
            long at = total * k / count;
            foreach (var e in encoded)
            {
                long starts = e.Count - window + 1;
                if (at < starts)
                {
                    int s = (int)at;
                    var w = new int[window];
                    if (model.Bos is { } bos) { w[0] = bos; e.CopyTo(Math.Max(1, s), w, 1, window - 1); }
                    else e.CopyTo(s, w, 0, window);
                    result.Add(w);
                    break;
                }
                at -= starts;
            }
        }
        return result;
    }

    static string Table(IReadOnlyList<Point> points)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| policy | threshold | small share | top-1 accuracy | log-lik (nats/token) | GFLOPs/request | ms/request (contended) | accuracy vs large | cost vs large |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var q in points)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {q.Name} | {q.Threshold:0.##} | {q.SmallShare:P0} | {q.Accuracy:F3} | {q.LogLik:F3} | {q.FlopsPerRequest / 1e9:F4} | {q.SecondsPerRequest * 1e3:F1} | {q.AccuracyVsLarge:P1} | {q.CostVsLarge:P1} |"));
        return sb.ToString();
    }
}
