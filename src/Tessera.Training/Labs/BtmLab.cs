using System.Globalization;
using System.Text;
using Tessera.Data;
using Tessera.Model;
using Tessera.Training.Experiments;

namespace Tessera.Training.Labs;

/// <summary>
/// What the branch-train-mix lab compares, from one dense base trained on domain A (English):
/// BTM = branches continued on A and on B (code) for <see cref="BranchSteps"/> each, merged into a
/// 2-expert MoE (top-<see cref="TopK"/>) and fine-tuned on the union for <see cref="MixSteps"/>;
/// against the base continued on the union for the same added training FLOPs. The union is a 50/50
/// mixture: B's training split plus an equally large slice of A's.
/// </summary>
public sealed record BtmPlan
{
    /// <summary>Base depth.</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Base width (a multiple of 16).</summary>
    public int Dim { get; init; } = 64;
    /// <summary>Optimizer steps of the dense base on domain A.</summary>
    public long BaseSteps { get; init; } = 3000;
    /// <summary>Steps of each branch on its own domain.</summary>
    public long BranchSteps { get; init; } = 1000;
    /// <summary>Steps of the merged model's joint fine-tune on the union.</summary>
    public long MixSteps { get; init; } = 300;
    /// <summary>Experts per token of the merged model (2 of 2: every token mixes both branches' MLPs).</summary>
    public int TopK { get; init; } = 2;
    /// <summary>Peak LR of branches, fine-tune and baseline as a share of the base's.</summary>
    public double ContinueLrShare { get; init; } = 0.5;
    /// <summary>Evaluations along each stage.</summary>
    public int Evaluations { get; init; } = 6;
    /// <summary>Batch shape, schedule shape, seed and evaluation windows.</summary>
    public LabTraining Training { get; init; } = new();

    /// <summary>The documented run.</summary>
    public static BtmPlan Full { get; } = new();

    /// <summary>The CI pipeline check.</summary>
    public static BtmPlan Quick { get; } = new()
    {
        Layers = 1, Dim = 32, BaseSteps = 60, BranchSteps = 30, MixSteps = 12, Evaluations = 2, Training = new LabTraining { EvalBatches = 8 },
    };
}

/// <summary>One model's held-out figures in the BTM lab: bits per byte on each domain and their mean (the union, equally weighted).</summary>
public sealed record BtmPoint(string Name, double AddedFlops, double BitsPerByteA, double BitsPerByteB, double UnionBitsPerByte);

/// <summary>Everything <c>results.json</c> of the BTM lab holds.</summary>
public sealed record BtmLabResult(string Lab, string DomainA, string DomainB, BtmPlan Plan, long UnionTokensPerDomain,
    double DenseFlopsPerToken, double MoeFlopsPerToken, long BaselineSteps, IReadOnlyList<BtmPoint> Table,
    IReadOnlyList<BtmPoint> BtmCurve, IReadOnlyList<BtmPoint> BaselineCurve, double Advantage, bool BtmWins);

/// <summary><c>tessera lab btm</c>: branch-train-mix vs one model trained on the union at equal total added compute.</summary>
public static class BtmLab
{
    /// <summary>Runs the lab into <paramref name="outDir"/>; <paramref name="a"/> is the base's domain, <paramref name="b"/> the new one.</summary>
    public static BtmLabResult Run(BtmPlan plan, LabCorpus a, LabCorpus b, string nameA, string nameB, string outDir, Action<string>? log = null, CancellationToken cancel = default)
    {
        var t = plan.Training;
        int vocab = Math.Max(a.VocabSize, b.VocabSize);
        var config = LabModels.Shape(plan.Layers, plan.Dim, vocab, t.SequenceLength);
        var moeConfig = BranchMerge.Config([config, config], [nameA, nameB], plan.TopK);
        if (plan.BaseSteps < 1 || plan.BranchSteps < 1 || plan.MixSteps < 1 || plan.Evaluations < 1) throw new ArgumentException("The BTM lab needs positive step counts and evaluations.");
        double fDense = config.TrainingFlopsPerToken(t.SequenceLength), fMoe = moeConfig.TrainingFlopsPerToken(t.SequenceLength);
        double tok = t.TokensPerStep;
        double branchFlops = 2 * plan.BranchSteps * tok * fDense, totalFlops = branchFlops + plan.MixSteps * tok * fMoe;
        long baselineSteps = (long)Math.Round(totalFlops / (tok * fDense));
        log?.Invoke($"base {LabModels.Name(config)} on {nameA}: {config.ParameterCount:N0} parameters; branches {plan.BranchSteps} steps each, merged {moeConfig.ParameterCount:N0} parameters " +
                    $"({moeConfig.ActiveParameterCount:N0} active) fine-tuned {plan.MixSteps} steps; union baseline {baselineSteps} steps (equal added FLOPs {totalFlops:0.00e+0})");
        Directory.CreateDirectory(outDir);
        long perDomain = Math.Min(b.Train.TokenCount, a.Train.TokenCount);
        string sliceA = Path.Combine(outDir, "union-a.bin"), sliceB = Path.Combine(outDir, "union-b.bin");
        using var unionA = a.WriteSubset(sliceA, perDomain, t.Seed);
        using var unionB = b.WriteSubset(sliceB, perDomain, t.Seed);
        TokenShard[] union = [unionA, unionB];
        var sampleA = GrowthTraining.Sample(a, nameA, t, Path.Combine(outDir, "validation-a.bin"));
        using var sampleShardA = sampleA.Shard;
        var sampleB = GrowthTraining.Sample(b, nameB, t, Path.Combine(outDir, "validation-b.bin"));
        using var sampleShardB = sampleB.Shard;
        var sets = new[] { sampleA, sampleB };
        BtmPoint Point(string name, double flops, IReadOnlyList<double> bpb) => new(name, flops, bpb[0], bpb[1], (bpb[0] + bpb[1]) / 2);
        BtmPoint Score(string name, Transformer m, double flops) => Point(name, flops, GrowthTraining.Evaluate(m, sets, t).BitsPerByte);

        var table = new List<BtmPoint>();
        using var baseModel = GrowthTraining.Base(config, t, plan.BaseSteps, a.Train, outDir, log, cancel);
        var start = Score("base", baseModel, 0);
        table.Add(start);
        string basePath = Path.Combine(outDir, "base");
        // The branches share nothing but the base checkpoint they load (the CLI recipe runs them as separate processes).
        using var branchA = Checkpoint.LoadModel(basePath);
        using var branchB = Checkpoint.LoadModel(basePath);
        var optionsBranch = GrowthTraining.Options(t, plan.BranchSteps, plan.Dim, plan.ContinueLrShare, t.Seed + 1);
        GrowthTraining.Continue(branchA, optionsBranch, [a.Train], sets, t, 1, fDense, 0, $"branch {nameA}", log, cancel);
        GrowthTraining.Continue(branchB, optionsBranch, [b.Train], sets, t, 1, fDense, 0, $"branch {nameB}", log, cancel);
        table.Add(Score($"branch {nameA} alone", branchA, branchFlops));
        table.Add(Score($"branch {nameB} alone", branchB, branchFlops));

        using var merged = BranchMerge.Merge([branchA, branchB], [nameA, nameB], plan.TopK, t.Seed + 2);
        var mergedPoint = Score("merged, before fine-tune", merged, branchFlops);
        table.Add(mergedPoint);
        var mixOptions = GrowthTraining.Options(t, plan.MixSteps, plan.Dim, plan.ContinueLrShare, t.Seed + 3);
        var mix = GrowthTraining.Continue(merged, mixOptions, union, sets, t, plan.Evaluations, fMoe, branchFlops, "BTM joint fine-tune", log, cancel);
        var btmCurve = new List<BtmPoint> { mergedPoint };
        btmCurve.AddRange(mix.Select(c => Point("BTM", c.AddedFlops, c.BitsPerByte)));
        table.Add(btmCurve[^1] with { Name = "BTM (merged + joint fine-tune)" });

        using var single = Checkpoint.LoadModel(basePath);
        var baseOptions = GrowthTraining.Options(t, baselineSteps, plan.Dim, plan.ContinueLrShare, t.Seed + 1);
        var dense = GrowthTraining.Continue(single, baseOptions, union, sets, t, plan.Evaluations, fDense, 0, "dense on the union", log, cancel);
        var baselineCurve = new List<BtmPoint> { start with { Name = "union baseline" } };
        baselineCurve.AddRange(dense.Select(c => Point("union baseline", c.AddedFlops, c.BitsPerByte)));
        table.Add(baselineCurve[^1] with { Name = "one dense model on the union" });

        double advantage = baselineCurve[^1].UnionBitsPerByte - btmCurve[^1].UnionBitsPerByte;
        var result = new BtmLabResult("btm", nameA, nameB, plan, perDomain, fDense, fMoe, baselineSteps, table, btmCurve, baselineCurve, advantage, advantage > 0);
        WriteReport(result, outDir);
        foreach (var f in new[] { sliceA, sliceB }) if (File.Exists(f)) File.Delete(f);
        return result;
    }

    static void WriteReport(BtmLabResult r, string outDir)
    {
        var inv = CultureInfo.InvariantCulture;
        var p = r.Plan;
        var union = new Figure($"Branch-train-mix vs one model on the union (held-out, mean of {r.DomainA} and {r.DomainB})", "added training FLOPs", "held-out bits per byte (domain mean)")
            .Add(new PlotSeries("one dense model on the union", [.. r.BaselineCurve.Select(c => (c.AddedFlops, c.UnionBitsPerByte))], SeriesStyle.LineAndMarkers, 0))
            .Add(new PlotSeries("BTM: branches, merge, joint fine-tune", [.. r.BtmCurve.Select(c => (c.AddedFlops, c.UnionBitsPerByte))], SeriesStyle.LineAndMarkers, 1));
        var domains = new Figure("Per-domain held-out bits per byte", "added training FLOPs", "held-out bits per byte")
            .Add(new PlotSeries($"union model, {r.DomainA}", [.. r.BaselineCurve.Select(c => (c.AddedFlops, c.BitsPerByteA))], SeriesStyle.LineAndMarkers, 0))
            .Add(new PlotSeries($"union model, {r.DomainB}", [.. r.BaselineCurve.Select(c => (c.AddedFlops, c.BitsPerByteB))], SeriesStyle.LineAndMarkers, 2))
            .Add(new PlotSeries($"BTM, {r.DomainA}", [.. r.BtmCurve.Select(c => (c.AddedFlops, c.BitsPerByteA))], SeriesStyle.LineAndMarkers, 1))
            .Add(new PlotSeries($"BTM, {r.DomainB}", [.. r.BtmCurve.Select(c => (c.AddedFlops, c.BitsPerByteB))], SeriesStyle.LineAndMarkers, 3));
        var md = new StringBuilder();
        md.AppendLine(inv, $"Base: dense L{p.Layers}-d{p.Dim} trained {p.BaseSteps} steps of {p.Training.TokensPerStep} tokens on {r.DomainA}. " +
            $"BTM: one branch per domain, {p.BranchSteps} steps each, merged into 2 experts top-{p.TopK} (expert e = branch e's MLP, other weights averaged, new router), " +
            $"then {p.MixSteps} steps on the union. Baseline: the base continued on the union for {r.BaselineSteps} steps, the same added training FLOPs " +
            $"(FLOPs/token {r.DenseFlopsPerToken:0.00e+0} dense, {r.MoeFlopsPerToken:0.00e+0} merged). The union is {r.UnionTokensPerDomain:N0} training tokens of each domain (50/50); " +
            $"\"mean\" is the equal-weight mean of the two domains' held-out bpb. Every stage: fresh AdamW, warmup and cosine, peak LR {p.ContinueLrShare}× the base's.");
        md.AppendLine();
        md.AppendLine("![union bpb vs added FLOPs](btm.svg)");
        md.AppendLine();
        md.AppendLine("![per-domain bpb](btm-domains.svg)");
        md.AppendLine();
        md.AppendLine(inv, $"| model | added FLOPs | {r.DomainA} bpb | {r.DomainB} bpb | mean bpb |");
        md.AppendLine("|---|---|---|---|---|");
        foreach (var x in r.Table) md.AppendLine(inv, $"| {x.Name} | {x.AddedFlops:0.00e+0} | {x.BitsPerByteA:F4} | {x.BitsPerByteB:F4} | {x.UnionBitsPerByte:F4} |");
        md.AppendLine();
        md.AppendLine(inv, $"BTM minus union model (mean bpb): {-r.Advantage:+0.0000;-0.0000} → {(r.BtmWins ? "BTM wins" : "BTM does NOT win (missed)")}.");
        ExperimentReport.Write(outDir, "BTM lab: branch-train-mix vs one model on the union", r, md.ToString(),
            new Dictionary<string, Figure> { ["btm"] = union, ["btm-domains"] = domains });
    }
}
