using System.Globalization;
using System.Text;
using Tessera.Training.Experiments;

namespace Tessera.Training.Labs;

/// <summary>
/// What the data-limited lab runs: one model (ladder rung <see cref="Rung"/>) and one compute
/// budget, so every run sees the same D = C / FLOPs-per-token tokens; for each epoch count e the
/// unique-token budget is U = D/e, with and without dropout. Fresh-data reference runs at
/// D·<see cref="FreshFractions"/> (one epoch, no dropout) give the loss-vs-data curve that
/// prices repeated tokens.
/// </summary>
public sealed record RepeatPlan
{
    /// <summary>Training FLOPs of every repeated run.</summary>
    public double Budget { get; init; } = 2e12;
    /// <summary>Model size (a rung of <see cref="LabModels.Ladder"/>).</summary>
    public int Rung { get; init; } = 3;
    /// <summary>Epoch counts.</summary>
    public IReadOnlyList<int> Epochs { get; init; } = [1, 2, 4, 8, 16];
    /// <summary>Dropout probabilities compared.</summary>
    public IReadOnlyList<float> Dropouts { get; init; } = [0f, 0.1f];
    /// <summary>Fresh-data reference runs, as fractions of D (D itself is the 1-epoch run).</summary>
    public IReadOnlyList<double> FreshFractions { get; init; } = [1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0 / 2];
    /// <summary>How every run trains.</summary>
    public LabTraining Training { get; init; } = new();

    /// <summary>The documented full lab (≈ 8 min on 2 quiet cores).</summary>
    public static RepeatPlan Full { get; } = new();

    /// <summary>The CI pipeline check: 1 and 4 epochs, tiny model and budget.</summary>
    public static RepeatPlan Quick { get; } = new()
    {
        Budget = 8e10, Rung = 2, Epochs = [1, 4], FreshFractions = [1.0 / 4, 1.0 / 2], Training = new LabTraining { EvalBatches = 16 },
    };
}

/// <summary>
/// <c>tessera lab repeat</c>: loss vs epochs at fixed compute, with and without dropout, and the
/// Muennighoff-style fit of how fast repeated tokens lose value (<see cref="RepetitionFit"/>).
/// </summary>
public static class RepeatLab
{
    /// <summary>Every run of the plan: fresh references first, then (dropout, epochs) in order.</summary>
    public static IReadOnlyList<LabRunSpec> PlanRuns(RepeatPlan plan, int vocabSize)
    {
        if (plan.Epochs.Count == 0 || plan.Epochs.Any(e => e < 1)) throw new ArgumentException("The repeat lab needs epoch counts of at least 1.");
        if (!plan.Epochs.Contains(1)) throw new ArgumentException("The repeat lab's epochs must include 1 (the fresh-data run at the full budget).");
        if (plan.Dropouts.Count == 0 || plan.Dropouts.Any(p => p is < 0 or >= 1)) throw new ArgumentException("The repeat lab needs dropout probabilities in [0, 1).");
        if (plan.FreshFractions.Count < 2 || plan.FreshFractions.Any(f => f is <= 0 or >= 1))
            throw new ArgumentException("The repeat lab needs at least 2 fresh-data fractions in (0, 1) (with the 1-epoch run they fit L(D) = E + B/D^β).");
        var config = LabModels.Rung(plan.Rung, vocabSize, plan.Training.SequenceLength);
        long perStep = plan.Training.TokensPerStep;
        long steps = (long)Math.Round(plan.Budget / config.TrainingFlopsPerToken(plan.Training.SequenceLength) / perStep);
        long tokens = steps * perStep;
        var runs = new List<LabRunSpec>();
        foreach (double f in plan.FreshFractions)
        {
            long t = (long)Math.Round(tokens * f / perStep) * perStep;
            runs.Add(new LabRunSpec(Invariant($"fresh-{LabModels.Name(config)}-D{t}"), config, t, t));
        }
        foreach (float p in plan.Dropouts)
            foreach (int e in plan.Epochs)
            {
                var c = config with { Dropout = p };
                runs.Add(new LabRunSpec(Invariant($"rep-{LabModels.Name(c)}-ep{e}"), c, tokens, Math.Max(1, tokens / e)));
            }
        return runs;
    }

    static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>Runs the lab into <paramref name="outDir"/> (checks all runs first; <paramref name="fitOnly"/> trains nothing).</summary>
    public static RepeatLabResult Run(RepeatPlan plan, LabCorpus corpus, string outDir, bool fitOnly = false,
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
            log?.Invoke($"[{i + 1}/{specs.Count}] {specs[i].Name}: {specs[i].Tokens:N0} tokens over {specs[i].UniqueTokens:N0} unique");
            results.Add(runner.Run(specs[i], cancel));
        }

        int fresh = plan.FreshFractions.Count;
        var repeated = results.Skip(fresh).ToList();
        var oneEpochNoDropout = repeated.First(r => r.Dropout == plan.Dropouts.Min() && Math.Abs(r.Epochs - 1) < 1e-9);
        var curvePoints = results.Take(fresh).Append(oneEpochNoDropout).Select(r => ((double)r.UniqueTokens, r.ValLoss)).ToList();
        var curve = DataCurve.Fit(curvePoints);
        var fits = new List<RepetitionSummary>();
        foreach (float p in plan.Dropouts)
        {
            var series = repeated.Where(r => r.Dropout == p).ToList();
            // Without dropout the 1-epoch run is on the fresh curve by construction, so η = 1 there;
            // with dropout η measures its single-epoch cost.
            var fit = RepetitionFit.Fit(curve, series.Select(r => ((double)r.UniqueTokens, r.Epochs, r.ValLoss)).ToList(), fitEfficiency: p != 0);
            fits.Add(new RepetitionSummary(p, fit.RStar, fit.Efficiency, fit.RmsLogError, fit.ValuePerToken(4), fit.ValuePerToken(16),
                [.. series.Select(r => new EpochPoint(r.Name, r.Epochs, r.UniqueTokens, r.ValLoss, curve.TokensFor(r.ValLoss)))]));
        }
        var result = new RepeatLabResult("repeat", corpus.Description, plan.Training, plan.Budget, LabModels.Name(specs[0].Config),
            oneEpochNoDropout.NonEmbeddingParameters, oneEpochNoDropout.Tokens, new DataCurveSummary(curve.E, curve.B, curve.Beta), fits, results);
        WriteReport(result, outDir, curve);
        return result;
    }

    static void WriteReport(RepeatLabResult r, string outDir, DataCurve curve)
    {
        var inv = CultureInfo.InvariantCulture;
        var epochs = Figure(r, curve);

        var md = new StringBuilder();
        md.AppendLine(inv, $"Data: {r.Corpus}. Model {r.Model} (N = {r.N:N0} non-embedding parameters), every repeated run sees D = {r.Tokens:N0} tokens (C = {r.Budget:0.00e+0} FLOPs); the unique-token budget is U = D / epochs, drawn as 1,024-token chunks from all over the training pool in a fixed random order (smaller budgets are prefixes of larger ones). Training: batch {r.Training.BatchSize} × {r.Training.SequenceLength}, peak LR {r.Training.LearningRateFor(r.Runs[0].Dim)}, warmup then cosine to {r.Training.MinLearningRateShare:P0} of it; dropout (when on) after the embedding and on the attention and MLP outputs before each residual add.");
        md.AppendLine();
        md.AppendLine(inv, $"Fresh-data curve (1-epoch runs, no dropout): L(D) = {r.Curve.E:F3} + {r.Curve.B:G4} / D^{r.Curve.Beta:F3}.");
        md.AppendLine();
        md.AppendLine("Repetition model (Muennighoff et al. 2023): U unique tokens seen for 1 + R epochs are worth D' = η·U·(1 + R*·(1 − e^(−R/R*))) fresh tokens; R* is how many repetitions it takes for an extra epoch to be worth 1/e of fresh data.");
        md.AppendLine();
        md.AppendLine("| dropout | R* | η (1-epoch efficiency; fixed at 1 without dropout) | value per token at 4 epochs | at 16 epochs | RMS log error |");
        md.AppendLine("|---|---|---|---|---|---|");
        foreach (var f in r.Fits)
            md.AppendLine(inv, $"| {f.Dropout:0.##} | **{f.RStar:F2}** | {f.Efficiency:F3} | {f.ValueAtFourEpochs:P0} | {f.ValueAtSixteenEpochs:P0} | {f.RmsLogError:P2} |");
        md.AppendLine();
        md.AppendLine("![loss vs epochs](epochs.svg)");
        md.AppendLine();
        md.AppendLine("| run | dropout | epochs | unique tokens | val loss | worth (fresh tokens) |");
        md.AppendLine("|---|---|---|---|---|---|");
        foreach (var f in r.Fits)
            foreach (var p in f.Points)
                md.AppendLine(inv, $"| {p.Name} | {f.Dropout:0.##} | {p.Epochs:0.##} | {p.UniqueTokens:N0} | {p.ValLoss:F4} | {(double.IsNaN(p.EffectiveTokens) ? "beyond the curve's floor" : p.EffectiveTokens.ToString("N0", inv))} |");
        foreach (var x in r.Runs.Where(x => x.Name.StartsWith("fresh", StringComparison.Ordinal)))
            md.AppendLine(inv, $"| {x.Name} | 0 | 1 | {x.UniqueTokens:N0} | {x.ValLoss:F4} | (fresh reference) |");
        ExperimentReport.Write(outDir, "Data-limited lab: repeated tokens at fixed compute", r, md.ToString(), new Dictionary<string, Figure> { ["epochs"] = epochs });
    }

    /// <summary>
    /// Loss against epochs: each dropout setting's runs as markers and its fitted repetition model
    /// as a smooth curve in the same colour (skipped where the fit failed), with the fresh-data
    /// loss at the same D as a dashed reference.
    /// </summary>
    internal static Figure Figure(RepeatLabResult r, DataCurve curve)
    {
        var inv = CultureInfo.InvariantCulture;
        var figure = new Figure($"Loss vs epochs at D = {r.Tokens:N0} tokens (lines: fitted repetition model)",
            "epochs over the unique tokens", "validation loss (nats/token)", logX: true);
        double maxEpochs = r.Fits.SelectMany(f => f.Points).Max(p => p.Epochs);
        for (int i = 0; i < r.Fits.Count; i++)
        {
            var f = r.Fits[i];
            figure.Measured($"dropout {f.Dropout.ToString("0.##", inv)}", [.. f.Points.Select(p => (p.Epochs, p.ValLoss))], i);
            if (double.IsNaN(f.RStar)) continue;
            var fit = new RepetitionFit(f.RStar, f.Efficiency, 0);
            figure.Curve(null, e => curve.Loss(fit.EffectiveTokens(r.Tokens / e, e)), 1, maxEpochs * 1.25, i);
        }
        double fresh = curve.Loss(r.Tokens);
        figure.Add(new PlotSeries("fresh data", [(1, fresh), (maxEpochs * 1.25, fresh)], SeriesStyle.Reference, 7));
        return figure;
    }
}

/// <summary>The fresh-data curve L(D) = E + B/D^β.</summary>
public sealed record DataCurveSummary(double E, double B, double Beta);

/// <summary>One repeated run: its loss and what it was worth in fresh tokens (NaN when below the curve's floor).</summary>
public sealed record EpochPoint(string Name, double Epochs, long UniqueTokens, double ValLoss, double EffectiveTokens);

/// <summary>The repetition fit of one dropout setting.</summary>
public sealed record RepetitionSummary(float Dropout, double RStar, double Efficiency, double RmsLogError, double ValueAtFourEpochs,
    double ValueAtSixteenEpochs, IReadOnlyList<EpochPoint> Points);

/// <summary>Everything <c>results.json</c> of the repeat lab holds.</summary>
public sealed record RepeatLabResult(string Lab, string Corpus, LabTraining Training, double Budget, string Model, long N, long Tokens,
    DataCurveSummary Curve, IReadOnlyList<RepetitionSummary> Fits, IReadOnlyList<LabRunResult> Runs);
