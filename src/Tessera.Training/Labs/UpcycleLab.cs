using System.Globalization;
using System.Text;
using Tessera.Model;
using Tessera.Training.Experiments;

namespace Tessera.Training.Labs;

/// <summary>
/// What the upcycling lab compares. A dense base of shape (<see cref="Layers"/>, <see cref="Dim"/>)
/// is trained for <see cref="BaseSteps"/>; then (a) the dense model continues and (b) its
/// upcycled MoE (<see cref="Experts"/> copies of each MLP, top-<see cref="TopK"/>) continues for
/// <see cref="MoeSteps"/>, both with the same batch, schedule shape and added training FLOPs: the
/// dense arm gets MoeSteps × F_moe / F_dense steps, F = <see cref="ModelConfig.TrainingFlopsPerToken"/>.
/// </summary>
public sealed record UpcyclePlan
{
    /// <summary>Base depth.</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Base width (a multiple of 16; the lab family's heads and MLP width follow from it).</summary>
    public int Dim { get; init; } = 32;
    /// <summary>Optimizer steps of the dense base.</summary>
    public long BaseSteps { get; init; } = 10000;
    /// <summary>Continued-training steps of the upcycled MoE; the dense arm's follow from equal FLOPs.</summary>
    public long MoeSteps { get; init; } = 3000;
    /// <summary>Experts per layer of the upcycled model.</summary>
    public int Experts { get; init; } = 8;
    /// <summary>Experts per token (≥ 2 so the upcycled model starts as the dense one).</summary>
    public int TopK { get; init; } = 2;
    /// <summary>Peak LR of the continuations as a share of the base's.</summary>
    public double ContinueLrShare { get; init; } = 0.5;
    /// <summary>Evaluations along each continuation.</summary>
    public int Evaluations { get; init; } = 8;
    /// <summary>Batch shape, schedule shape, seed and evaluation windows.</summary>
    public LabTraining Training { get; init; } = new();

    /// <summary>
    /// The documented run: an L2-d32 base trained close to its plateau (10,000 steps, 2.56 M tokens, 73
    /// per parameter), upcycled to 8 experts top-2 for 3,000 steps (≈ 5 min on 2 contended cores, base included).
    /// </summary>
    public static UpcyclePlan Full { get; } = new();

    /// <summary>The CI pipeline check: a one-layer model and a few dozen steps.</summary>
    public static UpcyclePlan Quick { get; } = new()
    {
        Layers = 1, Dim = 32, BaseSteps = 60, MoeSteps = 30, Evaluations = 3, Training = new LabTraining { EvalBatches = 8 },
    };
}

/// <summary>One arm's curve and final figures.</summary>
public sealed record UpcycleArm(string Name, long Parameters, long ActiveParameters, double FlopsPerToken, long Steps, long Tokens,
    double AddedFlops, double FinalBitsPerByte, double FinalLoss, IReadOnlyList<CurvePoint> Curve);

/// <summary>Everything <c>results.json</c> of the upcycling lab holds.</summary>
public sealed record UpcycleLabResult(string Lab, string Corpus, UpcyclePlan Plan, double BaseBitsPerByte, double BaseLoss,
    UpcycleArm Dense, UpcycleArm Upcycled, double Advantage, bool UpcyclingWins);

/// <summary><c>tessera lab upcycle</c>: upcycled MoE vs continued dense training at equal added compute.</summary>
public static class UpcycleLab
{
    /// <summary>Runs the lab into <paramref name="outDir"/> (the base checkpoint is cached under it).</summary>
    public static UpcycleLabResult Run(UpcyclePlan plan, LabCorpus corpus, string outDir, Action<string>? log = null, CancellationToken cancel = default)
    {
        var t = plan.Training;
        var config = LabModels.Shape(plan.Layers, plan.Dim, corpus.VocabSize, t.SequenceLength);
        var moeConfig = Upcycling.Config(config, plan.Experts, plan.TopK);          // refuses k = 1 before training anything
        if (plan.MoeSteps < 1 || plan.BaseSteps < 1 || plan.Evaluations < 1) throw new ArgumentException("The upcycling lab needs positive base steps, MoE steps and evaluations.");
        double fDense = config.TrainingFlopsPerToken(t.SequenceLength), fMoe = moeConfig.TrainingFlopsPerToken(t.SequenceLength);
        long denseSteps = (long)Math.Round(plan.MoeSteps * fMoe / fDense);
        Directory.CreateDirectory(outDir);
        var sample = GrowthTraining.Sample(corpus, "held-out", t, Path.Combine(outDir, "validation-sample.bin"));
        using var sampleShard = sample.Shard;
        var sets = new[] { sample };
        log?.Invoke($"base {LabModels.Name(config)}: {config.ParameterCount:N0} parameters, {plan.BaseSteps} steps; MoE {moeConfig.ParameterCount:N0} parameters ({moeConfig.ActiveParameterCount:N0} active); " +
                    $"FLOPs/token dense {fDense:0.00e+0}, MoE {fMoe:0.00e+0} → dense continues {denseSteps} steps to the MoE's {plan.MoeSteps}");
        using var baseModel = GrowthTraining.Base(config, t, plan.BaseSteps, corpus.Train, outDir, log, cancel);
        var (baseLoss, baseBpb) = GrowthTraining.Evaluate(baseModel, sets, t);
        var start = new CurvePoint(0, 0, 0, baseLoss, baseBpb);

        UpcycleArm Arm(string name, Transformer model, long steps, double perToken)
        {
            var options = GrowthTraining.Options(t, steps, model.Config.Dim, plan.ContinueLrShare, t.Seed + 1);
            var curve = GrowthTraining.Continue(model, options, [corpus.Train], sets, t, plan.Evaluations, perToken, 0, name, log, cancel);
            curve.Insert(0, start);
            var last = curve[^1];
            return new UpcycleArm(name, model.Config.ParameterCount, model.Config.ActiveParameterCount, perToken, steps, last.Tokens, last.AddedFlops,
                last.BitsPerByte[0], last.Loss[0], curve);
        }

        UpcycleArm dense, moe;
        using (var copy = Checkpoint.LoadModel(Path.Combine(outDir, "base")))
            dense = Arm("dense, continued", copy, denseSteps, fDense);
        using (var up = Upcycling.Upcycle(baseModel, plan.Experts, plan.TopK, t.Seed + 2))
            moe = Arm($"upcycled, {plan.Experts} experts top-{plan.TopK}", up, plan.MoeSteps, fMoe);
        double advantage = dense.FinalBitsPerByte - moe.FinalBitsPerByte;
        var result = new UpcycleLabResult("upcycle", corpus.Description, plan, baseBpb[0], baseLoss[0], dense, moe, advantage, advantage > 0);
        WriteReport(result, outDir);
        return result;
    }

    static void WriteReport(UpcycleLabResult r, string outDir)
    {
        var inv = CultureInfo.InvariantCulture;
        var p = r.Plan;
        var figure = new Figure("Upcycling vs continued dense training at equal added compute", "added training FLOPs", "held-out bits per byte")
            .Add(new PlotSeries(r.Dense.Name, [.. r.Dense.Curve.Select(c => (c.AddedFlops, c.BitsPerByte[0]))], SeriesStyle.LineAndMarkers, 0))
            .Add(new PlotSeries(r.Upcycled.Name, [.. r.Upcycled.Curve.Select(c => (c.AddedFlops, c.BitsPerByte[0]))], SeriesStyle.LineAndMarkers, 1));
        var md = new StringBuilder();
        md.AppendLine(inv, $"Data: {r.Corpus}. Base: dense L{p.Layers}-d{p.Dim} trained {p.BaseSteps} steps of {p.Training.TokensPerStep} tokens (held-out {r.BaseBitsPerByte:F4} bpb). " +
            $"Both arms continue from it on the same data with a fresh AdamW, warmup {p.Training.WarmupFraction:P0} and cosine to {p.Training.MinLearningRateShare:P0} of a peak {p.ContinueLrShare}× the base's. " +
            $"Equal added compute: FLOPs/token (6 × active matmul parameters + attention) are {r.Dense.FlopsPerToken:0.00e+0} dense and {r.Upcycled.FlopsPerToken:0.00e+0} upcycled (top-{p.TopK} runs {p.TopK} expert MLPs and the router), so the dense arm trains {r.Dense.Steps} steps to the MoE's {r.Upcycled.Steps}.");
        md.AppendLine();
        md.AppendLine("![held-out bpb vs added FLOPs](upcycle.svg)");
        md.AppendLine();
        md.AppendLine("| arm | params | active | FLOPs/token | steps | tokens | added FLOPs | held-out bpb | loss (nats/token) |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        md.AppendLine(inv, $"| base (start) | {r.Dense.Parameters:N0} | {r.Dense.ActiveParameters:N0} | {r.Dense.FlopsPerToken:0.00e+0} | 0 | 0 | 0 | {r.BaseBitsPerByte:F4} | {r.BaseLoss:F4} |");
        foreach (var a in new[] { r.Dense, r.Upcycled })
            md.AppendLine(inv, $"| {a.Name} | {a.Parameters:N0} | {a.ActiveParameters:N0} | {a.FlopsPerToken:0.00e+0} | {a.Steps} | {a.Tokens:N0} | {a.AddedFlops:0.00e+0} | {a.FinalBitsPerByte:F4} | {a.FinalLoss:F4} |");
        md.AppendLine();
        md.AppendLine(inv, $"Upcycled minus dense: {-r.Advantage:+0.0000;-0.0000} bpb → {(r.UpcyclingWins ? "upcycling wins" : "upcycling does NOT win (missed)")}.");
        md.AppendLine();
        md.AppendLine("| added FLOPs (dense) | dense bpb | added FLOPs (upcycled) | upcycled bpb |");
        md.AppendLine("|---|---|---|---|");
        for (int i = 0; i < Math.Max(r.Dense.Curve.Count, r.Upcycled.Curve.Count); i++)
        {
            string D(IReadOnlyList<CurvePoint> c) => i < c.Count ? string.Create(inv, $"{c[i].AddedFlops:0.00e+0} | {c[i].BitsPerByte[0]:F4}") : " | ";
            md.AppendLine(inv, $"| {D(r.Dense.Curve)} | {D(r.Upcycled.Curve)} |");
        }
        ExperimentReport.Write(outDir, "Upcycling lab: sparse upcycling vs continued dense training", r, md.ToString(), new Dictionary<string, Figure> { ["upcycle"] = figure });
    }
}
