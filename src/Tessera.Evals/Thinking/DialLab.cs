using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Tensors;
using Tessera.Text;
using Tessera.Training;
using Tessera.Training.Experiments;
using Tessera.Thinking;

namespace Tessera.Evals.Thinking;

/// <summary>The dial experiment's settings: task sizes, the model, training, and the sample budget.</summary>
public sealed record DialPlan
{
    /// <summary>Training problems per difficulty level (each trained with and without the calculator).</summary>
    public int TrainPerLevel { get; init; } = 1000;
    /// <summary>Test problems per difficulty level.</summary>
    public int TestPerLevel { get; init; } = 25;
    /// <summary>Largest number of samples per question (the budgets are 1, 2, 4, … up to it).</summary>
    public int MaxSamples { get; init; } = 64;
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 2000;
    /// <summary>Rows per step.</summary>
    public int Batch { get; init; } = 8;
    /// <summary>Tokens per row (examples are packed).</summary>
    public int Sequence { get; init; } = 160;
    /// <summary>Peak learning rate (linear warm-up over 5% of the steps, cosine decay to 10%).</summary>
    public float LearningRate { get; init; } = 4e-3f;
    /// <summary>A checkpoint to evaluate instead of training (e.g. OUT/model of an earlier run); null trains.</summary>
    public string? TrainedModel { get; init; }
    /// <summary>Seed of the task, the weights and the samples.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>The model: byte-level (vocabulary 256), small.</summary>
    public ModelConfig Model { get; init; } = new()
    {
        VocabSize = 256, Dim = 96, Layers = 3, Heads = 4, KvHeads = 2, HiddenDim = 256, ContextLength = 320, TiedEmbeddings = true,
    };

    /// <summary>The full plan (docs/thinking.md).</summary>
    public static DialPlan Full => new();

    /// <summary>A plan that runs in under a minute: a smaller model, fewer steps, 8 test questions, 8 samples.</summary>
    public static DialPlan Quick => new()
    {
        TrainPerLevel = 300, TestPerLevel = 2, MaxSamples = 8, Steps = 40, Batch = 4, Sequence = 160,
        Model = new() { VocabSize = 256, Dim = 32, Layers = 1, Heads = 2, KvHeads = 1, HiddenDim = 64, ContextLength = 320, TiedEmbeddings = true },
    };
}

/// <summary>One point of a strategy's accuracy-vs-compute curve.</summary>
public sealed record DialPoint(string Strategy, bool Calculator, int N, double Accuracy, double TokensPerQuestion, double Flops);

/// <summary>pass@k on the test split (unbiased estimator, from the largest sample set).</summary>
public sealed record PassAtKRow(bool Calculator, int K, double PassAtK);

/// <summary>What the dial lab measured.</summary>
public sealed record DialResult(DialPlan Plan, long Parameters, double? FirstLoss, double? LastLoss, double TrainSeconds, double EvalSeconds,
    IReadOnlyList<DialPoint> Points, IReadOnlyList<PassAtKRow> PassAtK, IReadOnlyList<string> Files, int CalculatorErrors)
{
    /// <summary>Accuracy of a strategy at n samples.</summary>
    public double Accuracy(string strategy, bool calculator, int n) => Points.First(p => p.Strategy == strategy && p.Calculator == calculator && p.N == n).Accuracy;
}

/// <summary>
/// The dial experiment (<c>tessera think lab</c>): generates the arithmetic task, trains a small
/// byte-level model on the training split's worked traces (with and without calculator calls),
/// then on the test split measures each strategy at 1 … MaxSamples samples, with and without the
/// calculator: accuracy against tokens (and FLOPs = 2 × parameters × tokens) per question, pass@k,
/// an SVG, results.json and report.md in the output folder; the trained model is saved as a
/// checkpoint under OUT/model.
/// </summary>
public static class DialLab
{
    static readonly string[] Sampled = ["vote", "verify", "score"];

    /// <summary>Runs the experiment.</summary>
    public static DialResult Run(DialPlan plan, string outDir, Action<string> log, CancellationToken cancel = default)
    {
        Directory.CreateDirectory(outDir);
        var train = ArithmeticTask.Generate(plan.TrainPerLevel, test: false, seed: plan.Seed);
        var test = ArithmeticTask.Generate(plan.TestPerLevel, test: true, seed: plan.Seed + 1000);
        log($"task: {train.Count} training and {test.Count} test problems (levels 1–{ArithmeticTask.MaxLevel}, half word problems)");

        var tokenizer = new ByteTokenizer();
        var clock = Stopwatch.StartNew();
        double? first = null, last = null;
        using var model = plan.TrainedModel is { } path ? Checkpoint.LoadModel(path) : new Transformer(plan.Model, seed: (ulong)plan.Seed);
        if (model.Config.VocabSize != 256) throw new ArgumentException($"think lab: {plan.TrainedModel} has a vocabulary of {model.Config.VocabSize}; expected a byte-level model (256)");
        plan = plan with { Model = model.Config };
        long parameters = plan.Model.ParameterCount;
        if (plan.TrainedModel is null)
        {
            var (f, l) = Train(model, train, plan, log, cancel);
            (first, last) = (f, l);
            log($"trained {parameters:N0} parameters for {plan.Steps} steps in {clock.Elapsed.TotalSeconds:F0} s: loss {f:F3} → {l:F3}");
            Checkpoint.Save(Path.Combine(outDir, "model"), plan.Steps, model);
        }
        else log($"evaluating {plan.TrainedModel} ({parameters:N0} parameters) without training");
        double trainSeconds = clock.Elapsed.TotalSeconds;

        clock.Restart();
        using var engine = new BatchingEngine(model, new BatchingOptions { MaxSequences = 128, PrefixCacheBytes = 64L << 20 });
        var decoder = new ToolDecoder(engine, tokenizer);
        var points = new List<DialPoint>();
        var passRows = new List<PassAtKRow>();
        int errors = 0;
        var budgets = new List<int>();
        for (int n = 1; n <= plan.MaxSamples; n *= 2) budgets.Add(n);
        foreach (bool calc in new[] { false, true })
        {
            var perQuestion = new (Completion[] Samples, List<Dial.ReviseStep> Revise, int Prompt)[test.Count];
            var options = new ThinkOptions(ThinkStrategy.Vote, plan.MaxSamples, calc) { Seed = (ulong)plan.Seed * 1000 };
            var gate = new SemaphoreSlim(2);
            int finished = 0;
            var tasks = test.Select(async (p, i) =>
            {
                await gate.WaitAsync(cancel);
                try
                {
                    var prompt = tokenizer.Encode(p.Prompt(calc));
                    var samples = await Dial.SampleAsync(decoder, prompt, plan.MaxSamples, options, cancel, greedyFirst: true);
                    var revise = await Dial.ReviseAsync(decoder, prompt, p.Numbers, options with { Strategy = ThinkStrategy.Revise }, cancel);
                    perQuestion[i] = (samples, revise, prompt.Count);
                    int done = Interlocked.Increment(ref finished);
                    if (done % Math.Max(1, test.Count / 5) == 0) log($"  calculator {(calc ? "on" : "off")}: {done}/{test.Count} questions sampled ({clock.Elapsed.TotalSeconds:F0} s)");
                }
                finally { gate.Release(); }
            }).ToArray();
            Task.WaitAll(tasks, cancel);
            errors += perQuestion.Sum(q => q.Samples.Sum(s => s.CallErrors.Count));

            // Greedy: sample 0 of each question.
            points.Add(Point("greedy", calc, 1, test, perQuestion.Select(q => (q.Samples[0], (long)q.Prompt + q.Samples[0].Tokens)).ToList(), parameters));
            // Sampled strategies at budget n: the MaxSamples samples (sample 0 excluded: it is the greedy one) split into groups of n, averaged.
            foreach (string name in Sampled)
                foreach (int n in budgets)
                {
                    var picks = new List<(Completion, long)>();
                    var correct = new List<double>();
                    double acc = 0, tokens = 0;
                    for (int i = 0; i < test.Count; i++)
                    {
                        var pool = perQuestion[i].Samples.Skip(1).ToArray();
                        int groups = Math.Max(1, pool.Length / n);
                        for (int g = 0; g < groups; g++)
                        {
                            var group = pool.Skip(g * n).Take(n).ToArray();
                            if (group.Length == 0) group = pool;
                            int pick = Dial.Select(ThinkOptions.ParseStrategy(name), group, test[i].Numbers);
                            acc += Correct(group[pick], test[i]) / groups;
                            tokens += (perQuestion[i].Prompt + group.Sum(s => (double)s.Tokens)) / groups;
                        }
                    }
                    points.Add(new DialPoint(name, calc, n, acc / test.Count, tokens / test.Count, 2.0 * parameters * tokens / test.Count));
                }
            // Revise at budget n: the state after min(n, attempts) attempts.
            foreach (int n in budgets)
            {
                double acc = 0, tokens = 0;
                for (int i = 0; i < test.Count; i++)
                {
                    var s = perQuestion[i].Revise[Math.Min(n, perQuestion[i].Revise.Count) - 1];
                    acc += Correct(s.Completion, test[i]);
                    tokens += perQuestion[i].Prompt + s.Tokens;
                }
                points.Add(new DialPoint("revise", calc, n, acc / test.Count, tokens / test.Count, 2.0 * parameters * tokens / test.Count));
            }
            // pass@k from all MaxSamples samples (greedy included).
            foreach (int k in budgets)
                passRows.Add(new PassAtKRow(calc, k, test.Select((p, i) =>
                    PassAtK.Estimate(plan.MaxSamples, perQuestion[i].Samples.Count(s => Correct(s, p) == 1), k)).Average()));
            log($"calculator {(calc ? "on" : "off")}: greedy {points.First(x => x.Strategy == "greedy" && x.Calculator == calc).Accuracy:P1}, " +
                string.Join(", ", points.Where(x => x.Calculator == calc && x.N == plan.MaxSamples).Select(x => $"{x.Strategy}@{x.N} {x.Accuracy:P1}")));
        }
        double evalSeconds = clock.Elapsed.TotalSeconds;
        var files = Write(plan, outDir, points, passRows, parameters);
        var result = new DialResult(plan, parameters, first, last, trainSeconds, evalSeconds, points, passRows, files, errors);
        AtomicFile.WriteAllText(Path.Combine(outDir, "results.json"), JsonSerializer.Serialize(result, JsonNaming.Indented));
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.md"), Report(result));
        return result;
    }

    static double Correct(Completion c, ArithmeticProblem p) => TraceChecker.AnswerOf(c.Text) == p.Answer ? 1 : 0;

    static DialPoint Point(string name, bool calc, int n, List<ArithmeticProblem> test, List<(Completion C, long Tokens)> picks, long parameters)
    {
        double acc = picks.Select((x, i) => Correct(x.C, test[i])).Average();
        double tokens = picks.Average(x => (double)x.Tokens);
        return new DialPoint(name, calc, n, acc, tokens, 2.0 * parameters * tokens);
    }

    /// <summary>Packs prompt + trace examples (both prompt kinds) into rows; only the traces are targets.</summary>
    static (double First, double Last) Train(Transformer model, List<ArithmeticProblem> train, DialPlan plan, Action<string> log, CancellationToken cancel)
    {
        var examples = new List<(byte[] Prompt, byte[] Trace)>();
        foreach (var p in train)
            foreach (bool tool in new[] { false, true })
                examples.Add((Encoding.ASCII.GetBytes(p.Prompt(tool)), Encoding.ASCII.GetBytes(p.Trace(tool))));
        var rng = new Random(plan.Seed);
        int B = plan.Batch, T = plan.Sequence;
        var ids = new int[B * T];
        var targets = new int[B * T];
        using var opt = new AdamW(model.Parameters.All, plan.LearningRate, weightDecay: 0.01f);
        double first = double.NaN, ema = double.NaN;
        var clock = Stopwatch.StartNew();
        for (int step = 0; step < plan.Steps; step++)
        {
            cancel.ThrowIfCancellationRequested();
            for (int b = 0; b < B; b++) FillRow(examples, rng, ids.AsSpan(b * T, T), targets.AsSpan(b * T, T));
            int warm = Math.Max(1, plan.Steps / 20);
            double progress = step < warm ? (step + 1.0) / warm : 0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, plan.Steps - warm)));
            opt.LearningRate = (float)(plan.LearningRate * progress);
            using var graph = new Graph();
            var r = model.Forward(graph, ids, B, T, targets);
            double loss = r.CrossEntropy!.AsSpan()[0];
            if (step == 0) first = loss;
            ema = double.IsNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
            graph.Backward(r.Loss!);
            opt.Step();
            foreach (var p in model.Parameters.All) p.Grad?.AsSpan().Clear();
            if ((step + 1) % Math.Max(1, plan.Steps / 10) == 0)
                log($"  step {step + 1}/{plan.Steps}: loss {ema:F3} ({clock.Elapsed.TotalSeconds:F0} s)");
        }
        return (first, ema);
    }

    static void FillRow(List<(byte[] Prompt, byte[] Trace)> examples, Random rng, Span<int> ids, Span<int> targets)
    {
        int t = 0;
        while (t < ids.Length)
        {
            var (prompt, trace) = examples[rng.Next(examples.Count)];
            foreach (byte c in prompt) { if (t >= ids.Length) break; ids[t++] = c; }
            foreach (byte c in trace) { if (t >= ids.Length) break; ids[t++] = c; }
        }
        ShiftTargets(ids, targets);
    }

    /// <summary>Target at t is ids[t + 1] when ids[t + 1] is a trace byte; trace bytes are found by the "\nA:" / "\nT:" markers.</summary>
    static void ShiftTargets(Span<int> ids, Span<int> targets)
    {
        bool inTrace = false;
        for (int t = 0; t < ids.Length; t++)
        {
            // A trace starts after "A:" or "T:" at the start of a line and ends at its newline.
            if (t >= 2 && ids[t - 2] == '\n' && (ids[t - 1] == 'A' || ids[t - 1] == 'T') && ids[t] == ':') { inTrace = true; targets[t] = t + 1 < ids.Length ? ids[t + 1] : -100; continue; }
            if (inTrace && ids[t] == '\n') { inTrace = false; targets[t] = -100; continue; }
            targets[t] = inTrace && t + 1 < ids.Length ? ids[t + 1] : -100;
        }
    }

    static readonly string[] Names = ["greedy", "vote", "verify", "score", "revise"];

    static List<string> Write(DialPlan plan, string outDir, List<DialPoint> points, List<PassAtKRow> pass, long parameters)
    {
        var fig = new Figure($"The dial: accuracy vs compute (test split, {parameters:N0}-parameter byte model)", "tokens per question (prompt + samples)", "accuracy", logX: true);
        int color = 0;
        foreach (bool calc in new[] { false, true })
            foreach (string name in Names)
            {
                var pts = points.Where(p => p.Strategy == name && p.Calculator == calc).Select(p => (p.TokensPerQuestion, p.Accuracy)).ToList();
                fig.Add(new PlotSeries($"{name}{(calc ? " + calculator" : "")}", pts, name == "greedy" ? SeriesStyle.Markers : calc ? SeriesStyle.LineAndMarkers : SeriesStyle.Reference, color++));
            }
        var files = new List<string>(fig.Save(outDir, "dial"));
        var pk = new Figure("pass@k on the test split (unbiased estimator)", "k", "pass@k", logX: true);
        foreach (bool calc in new[] { false, true })
            pk.Measured(calc ? "calculator" : "no tool", pass.Where(r => r.Calculator == calc).Select(r => ((double)r.K, r.PassAtK)).ToList(), calc ? 1 : 0);
        files.AddRange(pk.Save(outDir, "pass-at-k"));
        return files;
    }

    static string Report(DialResult r)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine("# The dial: accuracy vs test-time compute").AppendLine();
        sb.AppendLine(inv, $"Model: {r.Parameters:N0} parameters ({r.Plan.Model.Layers} layers, width {r.Plan.Model.Dim}, bytes), {r.Plan.Steps} steps × {r.Plan.Batch}×{r.Plan.Sequence} tokens, {(r.FirstLoss is { } f ? $"loss {f:F3} → {r.LastLoss:F3}, {r.TrainSeconds:F0} s training" : "evaluated from a saved checkpoint")}, {r.EvalSeconds:F0} s evaluation.");
        sb.AppendLine(inv, $"Test split: {r.Plan.TestPerLevel * ArithmeticTask.MaxLevel} questions; calculator errors in samples: {r.CalculatorErrors}.").AppendLine();
        sb.AppendLine("| strategy | calculator | n | accuracy | tokens / question | FLOPs / question |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var p in r.Points)
            sb.AppendLine(inv, $"| {p.Strategy} | {(p.Calculator ? "yes" : "no")} | {p.N} | {p.Accuracy:P1} | {p.TokensPerQuestion:F0} | {p.Flops:0.00e+0} |");
        sb.AppendLine().AppendLine("| pass@k | no tool | calculator |").AppendLine("|---|---|---|");
        foreach (var k in r.PassAtK.Select(x => x.K).Distinct())
            sb.AppendLine(inv, $"| {k} | {r.PassAtK.First(x => !x.Calculator && x.K == k).PassAtK:P1} | {r.PassAtK.First(x => x.Calculator && x.K == k).PassAtK:P1} |");
        return sb.ToString();
    }
}
