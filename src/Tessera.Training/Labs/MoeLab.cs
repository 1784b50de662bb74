using System.Globalization;
using System.Text;
using Tessera.Training.Experiments;

namespace Tessera.Training.Labs;

/// <summary>
/// What the MoE lab compares: the dense model of ladder rung <see cref="Rung"/> against MoE
/// versions with <see cref="Experts"/> experts, all trained on the same <see cref="Tokens"/>.
/// Top-1 experts keep the dense MLP's width, so active parameters (and FLOPs per token) match the
/// dense model up to the router; with <see cref="IncludeTopTwo"/> a top-2 series uses experts of
/// half the width, which also matches.
/// </summary>
public sealed record MoePlan
{
    /// <summary>The dense model (a rung of <see cref="LabModels.Ladder"/>).</summary>
    public int Rung { get; init; } = 4;
    /// <summary>Training tokens of every run.</summary>
    public long Tokens { get; init; } = 3_000_000;
    /// <summary>Expert counts; 1 is the dense model.</summary>
    public IReadOnlyList<int> Experts { get; init; } = [1, 2, 4, 8];
    /// <summary>Also run top-2 routing over half-width experts (expert counts ≥ 2).</summary>
    public bool IncludeTopTwo { get; init; } = true;
    /// <summary>How every run trains.</summary>
    public LabTraining Training { get; init; } = new();

    /// <summary>The documented full lab (≈ 6 min on 2 quiet cores).</summary>
    public static MoePlan Full { get; } = new();

    /// <summary>The CI pipeline check: dense vs 4 experts top-1 on a tiny model.</summary>
    public static MoePlan Quick { get; } = new()
    {
        Rung = 2, Tokens = 150 * 1024, Experts = [1, 4], IncludeTopTwo = false, Training = new LabTraining { EvalBatches = 16 },
    };
}

/// <summary><c>tessera lab moe</c>: loss vs number of experts at equal active parameters and equal tokens.</summary>
public static class MoeLab
{
    /// <summary>The dense run first, then top-1 (and top-2) MoE runs by expert count.</summary>
    public static IReadOnlyList<LabRunSpec> PlanRuns(MoePlan plan, int vocabSize)
    {
        if (!plan.Experts.Contains(1)) throw new ArgumentException("The MoE lab's expert counts must include 1 (the dense baseline).");
        if (plan.Experts.Count < 2 || plan.Experts.Any(e => e < 1)) throw new ArgumentException("The MoE lab needs the dense baseline and at least one expert count ≥ 2.");
        var dense = LabModels.Rung(plan.Rung, vocabSize, plan.Training.SequenceLength);
        var runs = new List<LabRunSpec> { new($"dense-{LabModels.Name(dense)}", dense, plan.Tokens) };
        foreach (int e in plan.Experts.Where(e => e > 1).Order())
        {
            var top1 = dense with { Experts = e, TopK = 1 };
            runs.Add(new LabRunSpec($"moe-{LabModels.Name(top1)}", top1.Validate(), plan.Tokens));
        }
        if (plan.IncludeTopTwo)
        {
            if (dense.HiddenDim % 2 != 0) throw new ArgumentException($"Top-2 experts of half width need an even MLP width, got {dense.HiddenDim}.");
            foreach (int e in plan.Experts.Where(e => e > 1).Order())
            {
                var top2 = dense with { Experts = e, TopK = 2, HiddenDim = dense.HiddenDim / 2 };
                runs.Add(new LabRunSpec($"moe-{LabModels.Name(top2)}", top2.Validate(), plan.Tokens));
            }
        }
        return runs;
    }

    /// <summary>Runs the lab into <paramref name="outDir"/> (checks all runs first; <paramref name="fitOnly"/> trains nothing).</summary>
    public static MoeLabResult Run(MoePlan plan, LabCorpus corpus, string outDir, bool fitOnly = false,
        Action<string>? log = null, CancellationToken cancel = default)
    {
        var specs = PlanRuns(plan, corpus.VocabSize);
        var runner = new LabRunner(corpus, plan.Training, outDir, log);
        foreach (var s in specs) runner.Check(s);
        if (fitOnly)
        {
            var missing = specs.Where(s => runner.Cached(s) is null).Select(s => s.Name).ToList();
            if (missing.Count > 0) throw new ArgumentException($"--fit-only: {missing.Count} run(s) missing from {Path.Combine(outDir, "runs")}: {string.Join(", ", missing)}; run without --fit-only to train them.");
        }
        var results = new List<LabRunResult>();
        for (int i = 0; i < specs.Count; i++)
        {
            log?.Invoke($"[{i + 1}/{specs.Count}] {specs[i].Name}: {specs[i].Config.ParameterCount:N0} parameters, {specs[i].Config.ActiveParameterCount:N0} active");
            results.Add(runner.Run(specs[i], cancel));
        }
        double dense = results[0].ValLoss;
        var points = results.Select(r => new MoePoint(r.Name, r.Experts, r.TopK, r.Parameters, r.ActiveParameters, r.FlopsPerToken, r.ValLoss,
            r.ValLoss - dense, r.TokensPerSecond)).ToList();
        var result = new MoeLabResult("moe", corpus.Description, plan.Training, results[0].Tokens, points, results);
        WriteReport(result, outDir);
        return result;
    }

    static void WriteReport(MoeLabResult r, string outDir)
    {
        var inv = CultureInfo.InvariantCulture;
        var dense = r.Points[0];
        var experts = new Figure($"Loss vs experts at equal active parameters ({r.Tokens:N0} tokens each)", "experts per layer", "validation loss (nats/token)", logX: true)
            .Add(new PlotSeries("top-1 (dense at 1 expert)", [.. r.Points.Where(p => p.TopK == 1).Select(p => ((double)p.Experts, p.ValLoss))], SeriesStyle.LineAndMarkers, 0));
        var top2 = r.Points.Where(p => p.TopK == 2).ToList();
        if (top2.Count > 0) experts.Add(new PlotSeries("top-2, half-width experts", [.. top2.Select(p => ((double)p.Experts, p.ValLoss))], SeriesStyle.LineAndMarkers, 1));
        experts.Add(new PlotSeries("dense baseline", [(1.0, dense.ValLoss), (r.Points.Max(p => p.Experts), dense.ValLoss)], SeriesStyle.Reference, 7));

        var md = new StringBuilder();
        md.AppendLine(inv, $"Data: {r.Corpus}. Every run trains on the same {r.Tokens:N0} tokens (batch {r.Training.BatchSize} × {r.Training.SequenceLength}, peak LR {r.Training.LearningRateFor(r.Runs[0].Dim)}); MoE layers are dropless with the Switch load-balancing loss. Top-1 experts have the dense MLP's width, top-2 experts half of it, so active parameters match the dense model up to the router.");
        md.AppendLine();
        md.AppendLine("![loss vs experts](experts.svg)");
        md.AppendLine();
        md.AppendLine("| run | experts | top-k | total params | active params | FLOPs/token | val loss | vs dense | tokens/s |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var p in r.Points)
            md.AppendLine(inv, $"| {p.Name} | {p.Experts} | {p.TopK} | {p.Parameters:N0} | {p.ActiveParameters:N0} | {p.FlopsPerToken:0.00e+0} | {p.ValLoss:F4} | {p.DeltaVsDense:+0.0000;-0.0000;0} | {p.TokensPerSecond:N0} |");
        ExperimentReport.Write(outDir, "MoE lab: dense vs mixture of experts at equal active parameters", r, md.ToString(), new Dictionary<string, Figure> { ["experts"] = experts });
    }
}

/// <summary>One run of the MoE lab.</summary>
public sealed record MoePoint(string Name, int Experts, int TopK, long Parameters, long ActiveParameters, double FlopsPerToken,
    double ValLoss, double DeltaVsDense, double TokensPerSecond);

/// <summary>Everything <c>results.json</c> of the MoE lab holds.</summary>
public sealed record MoeLabResult(string Lab, string Corpus, LabTraining Training, long Tokens, IReadOnlyList<MoePoint> Points, IReadOnlyList<LabRunResult> Runs);
