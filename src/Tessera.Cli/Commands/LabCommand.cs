using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Tessera.Kernels.IO;
using Tessera.Training.Experiments;
using Tessera.Training.Labs;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera lab scaling|repeat|moe</c>: each experiment is one command that trains its runs
/// in-process, caches every run under OUT/runs (an interrupted lab resumes; --fit-only re-fits
/// without training) and writes results.json, report.md and SVG plots into OUT.
/// </summary>
public static class LabCommand
{
    /// <summary>Builds the <c>tessera lab</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var lab = new Command("lab", "Scaling-law experiments: IsoFLOP sweep and fit, data repetition, MoE vs dense.");

        var budgets = new Option<string?>("--budgets") { Description = "Comma-separated sweep budgets in FLOPs (e.g. 5e11,1e12,2e12); default: the full or quick plan's." };
        var sizes = new Option<int?>("--sizes") { Description = "Model sizes per budget (consecutive ladder rungs)." };
        var heldOut = new Option<double?>("--held-out") { Description = "FLOPs of the held-back run (larger than every budget)." };
        var center = new Option<double?>("--center") { Description = "Tokens per parameter the sizes of each budget are centred on." };
        lab.Subcommands.Add(Sub("scaling", "IsoFLOP sweep (budgets × model sizes), fit of L(N, D) = E + A/N^α + B/D^β, IsoFLOP minima and a held-back prediction.",
            [budgets, sizes, heldOut, center], (p, quick, corpus, outDir, fitOnly, log, cancel) =>
            {
                var plan = quick ? ScalingPlan.Quick : ScalingPlan.Full;
                plan = plan with { Training = Training(p, plan.Training) };
                if (p.GetValue(budgets) is { } b) plan = plan with { Budgets = ParseList(b, "--budgets") };
                if (p.GetValue(sizes) is { } n) plan = plan with { SizesPerBudget = n };
                if (p.GetValue(heldOut) is { } h) plan = plan with { HeldOutBudget = h };
                if (p.GetValue(center) is { } c) plan = plan with { CenterTokensPerParameter = c };
                var r = ScalingLab.Run(plan, corpus, outDir, fitOnly, log, cancel);
                log($"α = {r.Fit.Alpha:F3}, β = {r.Fit.Beta:F3}, E = {r.Fit.E:F3}; compute-optimal tokens/param at {r.ComputeOptimal[^1].Flops:0.0e+0} FLOPs: {r.ComputeOptimal[^1].TokensPerParameter:F1}");
                log($"held-back {r.HeldOut.Name}: predicted {r.HeldOut.Predicted:F4}, actual {r.HeldOut.Actual:F4} ({r.HeldOut.RelativeError:+0.00%;-0.00%}, acceptance ±{r.HeldOut.Acceptable:P0}: {(r.HeldOut.Passed ? "PASS" : "MISS")})");
                return r;
            }));

        var budget = new Option<double?>("--budget") { Description = "FLOPs of every repeated run." };
        var rung = new Option<int?>("--rung") { Description = "Model size: a rung of the lab ladder (0 = smallest)." };
        lab.Subcommands.Add(Sub("repeat", "Fixed compute, unique-token budgets repeated for 1..16 epochs, with and without dropout; fit of how fast repeated tokens lose value.",
            [budget, rung], (p, quick, corpus, outDir, fitOnly, log, cancel) =>
            {
                var plan = quick ? RepeatPlan.Quick : RepeatPlan.Full;
                plan = plan with { Training = Training(p, plan.Training) };
                if (p.GetValue(budget) is { } b) plan = plan with { Budget = b };
                if (p.GetValue(rung) is { } g) plan = plan with { Rung = g };
                var r = RepeatLab.Run(plan, corpus, outDir, fitOnly, log, cancel);
                foreach (var f in r.Fits) log($"dropout {f.Dropout}: R* = {f.RStar:F2}, η = {f.Efficiency:F3}; a token seen 4 times is worth {f.ValueAtFourEpochs:P0} of a fresh one on average");
                return r;
            }));

        var moeRung = new Option<int?>("--rung") { Description = "Dense model size: a rung of the lab ladder (0 = smallest)." };
        var tokens = new Option<long?>("--tokens") { Description = "Training tokens of every run." };
        lab.Subcommands.Add(Sub("moe", "Dense vs mixture-of-experts at equal active parameters and equal tokens: loss vs number of experts.",
            [moeRung, tokens], (p, quick, corpus, outDir, fitOnly, log, cancel) =>
            {
                var plan = quick ? MoePlan.Quick : MoePlan.Full;
                plan = plan with { Training = Training(p, plan.Training) };
                if (p.GetValue(moeRung) is { } g) plan = plan with { Rung = g };
                if (p.GetValue(tokens) is { } t) plan = plan with { Tokens = t };
                var r = MoeLab.Run(plan, corpus, outDir, fitOnly, log, cancel);
                foreach (var x in r.Points) log($"{x.Name}: experts {x.Experts} top-{x.TopK}, val loss {x.ValLoss:F4} ({x.DeltaVsDense:+0.0000;-0.0000;0} vs dense)");
                return r;
            }));
        var code = new Option<string>("--code") { Description = "Folder whose *.cs files are the new domain (default: this repo's src).", DefaultValueFactory = _ => "src" };
        lab.Subcommands.Add(Sub("modules", "No forgetting: a frozen English base plus an experts and a LoRA module trained on C#, routed off (bit-identical) and on, vs full fine-tuning.",
            [code], (p, quick, corpus, outDir, fitOnly, log, cancel) =>
            {
                var plan = quick ? ModulesPlan.Quick : ModulesPlan.Full;
                if (fitOnly) { ModulesLab.Replot(outDir); return new { replotted = outDir }; }
                return ModulesLab.Run(plan, corpus, p.GetValue(code)!, outDir, log, cancel);
            }));
        GrowLabs.Add(lab, Sub);
        lab.Subcommands.Add(RetroLab.Create());   // RETRO-style training (docs/retrieval.md)
        return lab;
    }

    static readonly Option<int?> Batch = new("--batch") { Description = "Sequences per step of every run (default 4)." };
    static readonly Option<int?> Seq = new("--seq") { Description = "Tokens per sequence of every run (default 64)." };
    static readonly Option<float?> Lr = new("--lr") { Description = "Peak learning rate up to width 32, scaled by 32/width above (default 1e-2)." };

    /// <summary>The plan's training settings with the shared --batch/--seq/--lr overrides.</summary>
    internal static LabTraining Training(ParseResult p, LabTraining t)
    {
        if (p.GetValue(Batch) is { } b) t = t with { BatchSize = b };
        if (p.GetValue(Seq) is { } s) t = t with { SequenceLength = s };
        if (p.GetValue(Lr) is { } lr) t = t with { LearningRate = lr };
        return t;
    }

    static double[] ParseList(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out values[i]))
                throw new ArgumentException($"{option}: '{parts[i]}' is not a number.");
        return values;
    }

    internal delegate object LabBody(ParseResult p, bool quick, Training.Labs.LabCorpus corpus, string outDir, bool fitOnly, Action<string> log, CancellationToken cancel);

    internal static Command Sub(string name, string description, Option[] extra, LabBody body)
    {
        var output = new Option<string>("--out") { Description = "Lab folder (results.json, report.md, SVGs; runs/ caches each run).", DefaultValueFactory = _ => $"runs/lab-{name}" };
        var quick = new Option<bool>("--quick") { Description = "Tiny budgets that check the pipeline in a minute or two (CI), not the science." };
        var data = new Option<string>("--data") { Description = "Prepared data folder; when it has no meta.json the embedded corpus is tokenized into it.", DefaultValueFactory = _ => "runs/lab-data" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer for preparing the embedded corpus: `bytes` or a tokenizer directory.", DefaultValueFactory = _ => "bytes" };
        var fitOnly = new Option<bool>("--fit-only") { Description = "Train nothing: re-fit and re-report from the runs cached in --out (fails listing any missing run)." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command(name, description) { output, quick, data, tokenizer, fitOnly, json, Batch, Seq, Lr };
        foreach (var o in extra) cmd.Options.Add(o);
        cmd.SetAction((p, cancel) =>
        {
            bool quiet = p.GetValue(json);
            string outDir = p.GetValue(output)!;
            if (p.GetValue(quick) && p.GetValue(output) == $"runs/lab-{name}") outDir += "-quick";
            var clock = Stopwatch.StartNew();
            void Log(string s) { if (!quiet) Console.WriteLine(s); }
            using var corpus = LabCorpus.PrepareOrOpen(p.GetValue(data)!, p.GetValue(tokenizer)!, Log);
            var result = body(p, p.GetValue(quick), corpus, outDir, p.GetValue(fitOnly), Log, cancel);
            if (quiet) Console.WriteLine(JsonSerializer.Serialize(result, result.GetType(), JsonNaming.Line));
            else Console.WriteLine($"done in {RunSetup.Fmt(clock.Elapsed)} → {Path.Combine(outDir, ExperimentReport.MarkdownFile)}");
            return Task.FromResult(0);
        });
        return cmd;
    }
}
