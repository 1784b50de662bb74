using System.Globalization;
using System.Text;
using Tessera.Model;
using Tessera.Training.Experiments;

namespace Tessera.Training.Labs;

/// <summary>
/// What the scaling lab sweeps: for every budget in <see cref="Budgets"/> (training FLOPs),
/// <see cref="SizesPerBudget"/> consecutive rungs of <see cref="LabModels.Ladder"/> centred on
/// the rung whose tokens-per-parameter at that budget is closest to <see cref="CenterTokensPerParameter"/>;
/// then one held-back run at <see cref="HeldOutBudget"/> whose loss the fit predicts first.
/// </summary>
public sealed record ScalingPlan
{
    /// <summary>Compute budgets of the sweep, FLOPs.</summary>
    public IReadOnlyList<double> Budgets { get; init; } = [2.5e11, 5e11, 1e12, 2e12];
    /// <summary>Model sizes trained per budget.</summary>
    public int SizesPerBudget { get; init; } = 5;
    /// <summary>Budget of the held-back run (larger than every sweep budget).</summary>
    public double HeldOutBudget { get; init; } = 4e12;
    /// <summary>Sizes are centred where D/N is closest to this (byte-level tiny models are compute-optimal far above Chinchilla's 20).</summary>
    public double CenterTokensPerParameter { get; init; } = 100;
    /// <summary>The held-back prediction passes when |predicted − actual| / actual ≤ this.</summary>
    public double AcceptableError { get; init; } = 0.05;
    /// <summary>How every run trains.</summary>
    public LabTraining Training { get; init; } = new();

    /// <summary>The documented full sweep: 4 budgets × 5 sizes + a 2× larger held-back run (≈ 10 min on 2 quiet cores).</summary>
    public static ScalingPlan Full { get; } = new();

    /// <summary>The CI pipeline check: 3 tiny budgets × 3 sizes + held-back (≈ 1 min).</summary>
    public static ScalingPlan Quick { get; } = new()
    {
        Budgets = [3e10, 6e10, 1.2e11], SizesPerBudget = 3, HeldOutBudget = 2.4e11,
        Training = new LabTraining { EvalBatches = 16 },
    };
}

/// <summary>
/// <c>tessera lab scaling</c>: an IsoFLOP sweep, the fit of L(N, D) = E + A/N^α + B/D^β, the
/// IsoFLOP minima and a held-back prediction. N is non-embedding parameters
/// (<see cref="LabModels.NonEmbeddingParameters"/>); C is <see cref="ModelConfig.TrainingFlopsPerToken"/>
/// × D, which counts attention and the lm_head, so C is a little above 6·N·D.
/// </summary>
public static class ScalingLab
{
    /// <summary>The sweep's runs per budget, then the held-back run (chosen later, after the fit).</summary>
    public static IReadOnlyList<(double Flops, IReadOnlyList<LabRunSpec> Runs)> PlanRuns(ScalingPlan plan, int vocabSize)
    {
        if (plan.Budgets.Count < 2) throw new ArgumentException($"The scaling lab needs at least 2 compute budgets, got {plan.Budgets.Count}.");
        if (plan.SizesPerBudget < 3) throw new ArgumentException($"The scaling lab needs at least 3 model sizes per budget, got {plan.SizesPerBudget}.");
        if (plan.SizesPerBudget > LabModels.Ladder.Count) throw new ArgumentException($"The model ladder has only {LabModels.Ladder.Count} sizes, {plan.SizesPerBudget} per budget requested.");
        if (!(plan.HeldOutBudget > plan.Budgets.Max())) throw new ArgumentException($"The held-back budget {plan.HeldOutBudget:0.00e+0} must exceed every sweep budget (largest {plan.Budgets.Max():0.00e+0}).");
        var result = new List<(double, IReadOnlyList<LabRunSpec>)>();
        foreach (double c in plan.Budgets)
        {
            if (!(c > 0)) throw new ArgumentException($"Compute budget {c} must be positive.");
            int center = 0;
            double bestGap = double.PositiveInfinity;
            for (int r = 0; r < LabModels.Ladder.Count; r++)
            {
                var (n, d) = SizeAt(r, c, vocabSize, plan.Training);
                double gap = Math.Abs(Math.Log(d / n / plan.CenterTokensPerParameter));
                if (gap < bestGap) (bestGap, center) = (gap, r);
            }
            int first = Math.Clamp(center - plan.SizesPerBudget / 2, 0, LabModels.Ladder.Count - plan.SizesPerBudget);
            var runs = new List<LabRunSpec>();
            for (int r = first; r < first + plan.SizesPerBudget; r++) runs.Add(Spec(r, c, vocabSize, plan.Training));
            result.Add((c, runs));
        }
        return result;
    }

    static (double N, double D) SizeAt(int rung, double flops, int vocab, LabTraining t)
    {
        var config = LabModels.Rung(rung, vocab, t.SequenceLength);
        return (LabModels.NonEmbeddingParameters(config), flops / config.TrainingFlopsPerToken(t.SequenceLength));
    }

    static LabRunSpec Spec(int rung, double flops, int vocab, LabTraining t)
    {
        var config = LabModels.Rung(rung, vocab, t.SequenceLength);
        long tokens = (long)(flops / config.TrainingFlopsPerToken(t.SequenceLength));
        return new LabRunSpec(string.Create(CultureInfo.InvariantCulture, $"C{flops:0.0e+0}-{LabModels.Name(config)}").Replace("+", ""), config, tokens);
    }

    /// <summary>
    /// Runs the lab into <paramref name="outDir"/>: checks every planned run first (a budget too small
    /// for some model fails here, before any training), trains the sweep, fits, picks the held-back
    /// model as the ladder size the fit predicts best at the held-back budget, states the prediction,
    /// trains it, and writes results.json, report.md and the plots. With <paramref name="fitOnly"/>
    /// nothing is trained: every run must already be cached, else the error lists the missing ones.
    /// </summary>
    public static ScalingLabResult Run(ScalingPlan plan, LabCorpus corpus, string outDir, bool fitOnly = false,
        Action<string>? log = null, CancellationToken cancel = default)
    {
        int vocab = corpus.VocabSize;
        var budgets = PlanRuns(plan, vocab);
        var runner = new LabRunner(corpus, plan.Training, outDir, log);
        // The held-back run is one of these (which one depends on the fit); all must be trainable.
        var heldCandidates = Enumerable.Range(0, LabModels.Ladder.Count).Select(r => Spec(r, plan.HeldOutBudget, vocab, plan.Training))
            .Where(s => runner.StepsFor(s.Tokens) >= plan.Training.MinSteps).ToList();
        foreach (var (_, runs) in budgets) foreach (var s in runs) runner.Check(s);
        if (heldCandidates.Count == 0) throw new ArgumentException($"The held-back budget {plan.HeldOutBudget:0.00e+0} is too small to train any ladder model for {plan.Training.MinSteps} steps.");
        if (fitOnly)
        {
            var missing = budgets.SelectMany(b => b.Runs).Where(s => runner.Cached(s) is null).Select(s => s.Name).ToList();
            if (missing.Count > 0) throw new ArgumentException($"--fit-only: {missing.Count} run(s) missing from {Path.Combine(outDir, "runs")}: {string.Join(", ", missing)}; run without --fit-only to train them.");
        }

        var sweep = new List<(double Flops, List<LabRunResult> Runs)>();
        int total = budgets.Sum(b => b.Runs.Count) + 1, done = 0;
        foreach (var (c, runs) in budgets)
        {
            var results = new List<LabRunResult>();
            foreach (var s in runs)
            {
                log?.Invoke($"[{++done}/{total}] budget {c:0.00e+0} FLOPs: {s.Name}");
                results.Add(runner.Run(s, cancel));
            }
            sweep.Add((c, results));
        }

        var points = sweep.SelectMany(b => b.Runs).Select(Point).ToList();
        var law = ScalingLaw.Fit(points);
        var minima = sweep.Select(b => IsoFlopMinimum.Fit(b.Flops, b.Runs.Select(Point).ToList())).ToList();
        double[] logC = [.. minima.Select(m => Math.Log(m.Flops))];
        var nExponent = Polynomial.LeastSquares(logC, [.. minima.Select(m => Math.Log(m.OptimalN))], 1)[1];
        var dExponent = Polynomial.LeastSquares(logC, [.. minima.Select(m => Math.Log(m.OptimalD))], 1)[1];

        // The held-back run: the ladder size the fit says is best at the larger budget, predicted before it trains.
        var held = heldCandidates.MinBy(s => law.Loss(LabModels.NonEmbeddingParameters(s.Config), runner.StepsFor(s.Tokens) * plan.Training.TokensPerStep))!;
        long heldTokens = runner.StepsFor(held.Tokens) * plan.Training.TokensPerStep;
        double predicted = law.Loss(LabModels.NonEmbeddingParameters(held.Config), heldTokens);
        log?.Invoke($"fit: L = {law.E:F3} + {law.A:G4}/N^{law.Alpha:F3} + {law.B:G4}/D^{law.Beta:F3}; held-back {held.Name} predicted {predicted:F4}");
        if (fitOnly && runner.Cached(held) is null)
            throw new ArgumentException($"--fit-only: the held-back run {held.Name} is missing from {Path.Combine(outDir, "runs")}; run without --fit-only to train it.");
        log?.Invoke($"[{total}/{total}] held-back run at {plan.HeldOutBudget:0.00e+0} FLOPs: {held.Name}");
        var actual = runner.Run(held, cancel);
        double error = (predicted - actual.ValLoss) / actual.ValLoss;

        var result = new ScalingLabResult(
            Lab: "scaling", Corpus: corpus.Description, Training: plan.Training,
            NDefinition: "non-embedding parameters (active parameters minus the tied token embedding)",
            FlopsDefinition: "ModelConfig.TrainingFlopsPerToken(T) × tokens: 6 × matmul parameters (lm_head included) + causal attention 6·layers·T·dim",
            Runs: [.. sweep.SelectMany(b => b.Runs)],
            Fit: new FitSummary(law.E, law.A, law.Alpha, law.B, law.Beta, law.Beta / (law.Alpha + law.Beta), law.Alpha / (law.Alpha + law.Beta),
                Rms(points.Select(p => Math.Log(law.Loss(p.N, p.D) / p.Loss)))),
            ComputeOptimal: [.. plan.Budgets.Append(plan.HeldOutBudget).Select(c => { var (n, d) = law.ComputeOptimal(c); return new ComputeOptimalPoint(c, n, d, d / n); })],
            IsoFlopMinima: minima, IsoFlopNExponent: nExponent, IsoFlopDExponent: dExponent,
            HeldOut: new HeldOutPrediction(held.Name, plan.HeldOutBudget, actual.NonEmbeddingParameters, actual.Tokens, predicted, actual.ValLoss,
                error, plan.AcceptableError, Math.Abs(error) <= plan.AcceptableError, actual));
        WriteReport(result, outDir, sweep, law, plan);
        return result;
    }

    static ScalingPoint Point(LabRunResult r) => new(r.NonEmbeddingParameters, r.Tokens, r.ValLoss);

    static double Rms(IEnumerable<double> xs)
    {
        double s = 0; int n = 0;
        foreach (var x in xs) { s += x * x; n++; }
        return Math.Sqrt(s / Math.Max(n, 1));
    }

    static void WriteReport(ScalingLabResult r, string outDir, List<(double Flops, List<LabRunResult> Runs)> sweep, ScalingLaw law, ScalingPlan plan)
    {
        var inv = CultureInfo.InvariantCulture;
        var (isoflop, optimal) = Figures(r, sweep, law);

        var md = new StringBuilder();
        var f = r.Fit;
        md.AppendLine(inv, $"Data: {r.Corpus}. Training: batch {plan.Training.BatchSize} × {plan.Training.SequenceLength} tokens, peak LR {plan.Training.LearningRate} × min(1, {plan.Training.LearningRateWidth}/width), warmup {plan.Training.WarmupFraction:P0} then cosine to {plan.Training.MinLearningRateShare:P0} of the peak, validation loss over {plan.Training.EvalBatches} fixed batches.");
        md.AppendLine();
        md.AppendLine(inv, $"N = {r.NDefinition}. C = {r.FlopsDefinition}.");
        md.AppendLine();
        md.AppendLine("## Fit");
        md.AppendLine();
        md.AppendLine(inv, $"L(N, D) = {f.E:F3} + {f.A:G4} / N^{f.Alpha:F3} + {f.B:G4} / D^{f.Beta:F3}  (RMS error of log loss {f.RmsLogError:P2}, {r.Runs.Count} runs)");
        md.AppendLine();
        md.AppendLine(inv, $"- Fitted exponents: **α = {f.Alpha:F3}** (model size), **β = {f.Beta:F3}** (data). Under C = 6ND the optimum scales as N_opt ∝ C^{f.NExponent:F2}, D_opt ∝ C^{f.DExponent:F2}.");
        md.AppendLine(inv, $"- IsoFLOP minima: N_opt ∝ C^{r.IsoFlopNExponent:F2}, D_opt ∝ C^{r.IsoFlopDExponent:F2}.");
        md.AppendLine();
        md.AppendLine("| budget C | fit N_opt | fit D_opt | fit tokens/param | IsoFLOP N_opt | IsoFLOP tokens/param | vertex inside sizes |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        for (int i = 0; i < r.ComputeOptimal.Count; i++)
        {
            var p = r.ComputeOptimal[i];
            var m = i < r.IsoFlopMinima.Count ? r.IsoFlopMinima[i] : null;
            md.AppendLine(inv, $"| {p.Flops:0.00e+0} | {p.N:N0} | {p.D:N0} | **{p.TokensPerParameter:F1}** | {(m is null ? "(held-back)" : m.OptimalN.ToString("N0", inv))} | {(m is null ? "" : m.TokensPerParameter.ToString("F1", inv))} | {(m is null ? "" : m.Interior ? "yes" : "no (best run)")} |");
        }
        md.AppendLine();
        md.AppendLine("## Held-back prediction");
        md.AppendLine();
        var h = r.HeldOut;
        md.AppendLine(inv, $"Fitted on the {r.Runs.Count} sweep runs only, the law picked {h.Name} (N = {h.N:N0}, D = {h.D:N0}) for C = {h.Flops:0.00e+0} and predicted a validation loss of **{h.Predicted:F4}**; training it gave **{h.Actual:F4}**: error {h.RelativeError:+0.00%;-0.00%}, acceptance |error| ≤ {h.Acceptable:P0} → **{(h.Passed ? "PASS" : "MISS")}**.");
        md.AppendLine();
        md.AppendLine("![IsoFLOP curves: measured runs and the fitted L(N, D) at each budget](isoflop.svg)");
        md.AppendLine();
        md.AppendLine("![Compute-optimal N](optimal.svg)");
        md.AppendLine();
        md.AppendLine("## Runs");
        md.AppendLine();
        md.AppendLine("| run | N (non-emb.) | tokens D | D/N | C (FLOPs) | steps | val loss | seconds |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var x in r.Runs.Append(h.Run))
            md.AppendLine(inv, $"| {x.Name} | {x.NonEmbeddingParameters:N0} | {x.Tokens:N0} | {(double)x.Tokens / x.NonEmbeddingParameters:F1} | {x.Flops:0.00e+0} | {x.Steps} | {x.ValLoss:F4} | {x.Seconds:F0} |");
        ExperimentReport.Write(outDir, "Scaling lab: IsoFLOP sweep and L(N, D) fit", r, md.ToString(),
            new Dictionary<string, Figure> { ["isoflop"] = isoflop, ["optimal"] = optimal });
    }

    /// <summary>
    /// The two figures of the lab. IsoFLOP: each budget's runs as markers and the fitted L(N, D)
    /// as a smooth curve in the same colour, along that budget's line D = C / (FLOPs per token of
    /// N); the held-back run and its budget's predicted curve likewise. FLOPs per token depend only
    /// on the model, so they are interpolated in log-log space between the ladder sizes that ran
    /// (straight beyond the ends, where they are close to a power law). Compute-optimal N: the
    /// IsoFLOP minima with their power-law fit, and the law's own C → N_opt, both on log-log axes.
    /// </summary>
    internal static (Figure IsoFlop, Figure Optimal) Figures(ScalingLabResult r, IReadOnlyList<(double Flops, List<LabRunResult> Runs)> sweep, ScalingLaw law)
    {
        var inv = CultureInfo.InvariantCulture;
        var perToken = sweep.SelectMany(b => b.Runs).Append(r.HeldOut.Run)
            .GroupBy(x => x.NonEmbeddingParameters).Select(g => (Math.Log(g.Key), Math.Log(g.First().Flops / g.First().Tokens))).OrderBy(p => p.Item1).ToArray();
        double Tokens(double flops, double n) => flops / Math.Exp(Interpolate(perToken, Math.Log(n)));

        var isoflop = new Figure("IsoFLOP curves (markers: runs; lines: fitted L(N, D))", "non-embedding parameters N", "validation loss (nats/token)", logX: true);
        double nLo = perToken[0].Item1, nHi = perToken[^1].Item1;
        double from = Math.Exp(nLo - 0.15 * (nHi - nLo)), to = Math.Exp(nHi + 0.15 * (nHi - nLo));
        int color = 0;
        foreach (var (c, runs) in sweep)
        {
            isoflop.Measured($"C = {c.ToString("0.0e+0", inv)}", [.. runs.Select(x => ((double)x.NonEmbeddingParameters, x.ValLoss))], color);
            isoflop.Curve(null, n => law.Loss(n, Tokens(c, n)), from, to, color);
            color++;
        }
        isoflop.Measured($"held-back C = {r.HeldOut.Flops.ToString("0.0e+0", inv)}",
            [((double)r.HeldOut.N, r.HeldOut.Actual)], color);
        isoflop.Curve(null, n => law.Loss(n, Tokens(r.HeldOut.Flops, n)), from, to, color);

        var optimal = new Figure("Compute-optimal model size", "training FLOPs C", "non-embedding parameters N", logX: true, logY: true);
        var minima = r.IsoFlopMinima;
        double cLo = Math.Min(minima.Min(m => m.Flops), r.HeldOut.Flops) / 1.5, cHi = Math.Max(minima.Max(m => m.Flops), r.HeldOut.Flops) * 1.5;
        optimal.Measured("IsoFLOP minima", [.. minima.Select(m => (m.Flops, m.OptimalN))], 0);
        if (minima.Count >= 2)
        {
            var line = Polynomial.LeastSquares([.. minima.Select(m => Math.Log(m.Flops))], [.. minima.Select(m => Math.Log(m.OptimalN))], 1);
            optimal.Curve($"power law through the minima (slope {line[1]:F2})", c => Math.Exp(line[0] + line[1] * Math.Log(c)), cLo, cHi, 0);
        }
        optimal.Curve($"L(N, D) fit, C = 6ND (slope {r.Fit.NExponent:F2})", c => law.ComputeOptimal(c).N, cLo, cHi, 1);
        return (isoflop, optimal);
    }

    /// <summary>Piecewise-linear y(x) through (x, y) sorted by x, extended along the end segments; a single point is a constant.</summary>
    static double Interpolate((double X, double Y)[] p, double x)
    {
        if (p.Length == 1) return p[0].Y;
        int i = 1;
        while (i < p.Length - 1 && x > p[i].X) i++;
        var (x0, y0) = p[i - 1];
        var (x1, y1) = p[i];
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
    }
}

/// <summary>The fitted law and what it implies.</summary>
public sealed record FitSummary(double E, double A, double Alpha, double B, double Beta, double NExponent, double DExponent, double RmsLogError);

/// <summary>The fit's compute-optimal split of one budget (C = 6ND).</summary>
public sealed record ComputeOptimalPoint(double Flops, double N, double D, double TokensPerParameter);

/// <summary>The held-back run: predicted before it trained, then measured.</summary>
public sealed record HeldOutPrediction(string Name, double Flops, long N, long D, double Predicted, double Actual, double RelativeError,
    double Acceptable, bool Passed, LabRunResult Run);

/// <summary>Everything <c>results.json</c> of the scaling lab holds.</summary>
public sealed record ScalingLabResult(string Lab, string Corpus, LabTraining Training, string NDefinition, string FlopsDefinition,
    IReadOnlyList<LabRunResult> Runs, FitSummary Fit, IReadOnlyList<ComputeOptimalPoint> ComputeOptimal,
    IReadOnlyList<IsoFlopMinimum> IsoFlopMinima, double IsoFlopNExponent, double IsoFlopDExponent, HeldOutPrediction HeldOut);
