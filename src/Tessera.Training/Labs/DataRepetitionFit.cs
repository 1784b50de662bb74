namespace Tessera.Training.Labs;

/// <summary>
/// Loss as a function of unique training tokens for a fixed model, L(D) = E + B/D^β, fitted to
/// single-epoch ("fresh data") runs by least squares on log L (Nelder–Mead over (ln E, ln B, β)).
/// </summary>
public sealed record DataCurve(double E, double B, double Beta)
{
    /// <summary>Predicted loss after D fresh tokens.</summary>
    public double Loss(double d) => E + B / Math.Pow(d, Beta);

    /// <summary>Fresh tokens that would reach <paramref name="loss"/>; NaN at or below the curve's floor E.</summary>
    public double TokensFor(double loss) => loss > E ? Math.Pow(B / (loss - E), 1 / Beta) : double.NaN;

    /// <summary>Fits (D, loss) pairs; needs at least 3 distinct D.</summary>
    public static DataCurve Fit(IReadOnlyList<(double D, double Loss)> points)
    {
        if (points.Count < 3) throw new ArgumentException($"Fitting L(D) = E + B/D^β needs at least 3 fresh-data runs, got {points.Count}.");
        double Objective(double[] t)
        {
            double s = 0;
            foreach (var (d, l) in points)
            {
                double r = Math.Log(Math.Exp(t[0]) + Math.Exp(t[1] - t[2] * Math.Log(d))) - Math.Log(l);
                s += r * r;
            }
            return t[2] > 0 ? s : double.PositiveInfinity;
        }
        double minLoss = points.Min(p => p.Loss);
        (double[] X, double F) best = (new double[3], double.PositiveInfinity);
        // Starts: the floor below the best run, a range of exponents, B through the best run.
        foreach (double floorShare in new[] { 0.2, 0.5, 0.8, 0.95 })
            foreach (double beta in new[] { 0.1, 0.3, 0.6, 1.0 })
            {
                var (d0, l0) = points.MinBy(p => p.Loss);
                double e = floorShare * minLoss;
                double[] x0 = [Math.Log(e), Math.Log(Math.Max(l0 - e, 1e-6)) + beta * Math.Log(d0), beta];
                var run = NelderMead.Minimize(Objective, x0, [0.2, 1.0, 0.1]);
                if (run.F < best.F) best = run;
            }
        return new DataCurve(Math.Exp(best.X[0]), Math.Exp(best.X[1]), best.X[2]);
    }
}

/// <summary>
/// How fast repeated tokens lose value (Muennighoff et al. 2023, "Scaling Data-Constrained
/// Language Models"): U unique tokens seen for 1 + R epochs are worth
/// D' = η·(U + U·R*·(1 − e^(−R/R*))) fresh tokens, where R* is the number of repetitions after
/// which extra epochs are worth 1/e of a fresh one (large R* = repetition is nearly as good as
/// new data). η is the one-epoch efficiency relative to the fresh-data curve (below 1 when, say,
/// dropout slows single-epoch learning). Fitted on log L via L = curve(D').
/// </summary>
public sealed record RepetitionFit(double RStar, double Efficiency, double RmsLogError)
{
    /// <summary>Effective fresh tokens of <paramref name="unique"/> tokens seen <paramref name="epochs"/> times.</summary>
    public double EffectiveTokens(double unique, double epochs)
    {
        double r = Math.Max(0, epochs - 1);
        return Efficiency * unique * (1 + RStar * (1 - Math.Exp(-r / RStar)));
    }

    /// <summary>D' / tokens seen: the average value of a token at <paramref name="epochs"/> epochs.</summary>
    public double ValuePerToken(double epochs) => EffectiveTokens(1, epochs) / epochs;

    /// <summary>
    /// Fits R* (and η when <paramref name="fitEfficiency"/>; else η = 1) to runs of (unique tokens,
    /// epochs, loss) given the fresh-data curve. With a single epoch count R* is not identifiable and
    /// is reported as NaN; R* is searched in [0.01, 10⁴].
    /// </summary>
    public static RepetitionFit Fit(DataCurve curve, IReadOnlyList<(double Unique, double Epochs, double Loss)> runs, bool fitEfficiency = true)
    {
        if (runs.Count == 0) throw new ArgumentException("A repetition fit needs at least one run.");
        double Objective(double[] t)
        {
            var f = new RepetitionFit(Math.Exp(t[0]), Math.Exp(t[1]), 0);
            double s = 0;
            foreach (var (u, e, l) in runs)
            {
                double r = Math.Log(curve.Loss(f.EffectiveTokens(u, e))) - Math.Log(l);
                s += r * r;
            }
            return t[0] is >= -4.6 and <= 9.3 ? s : double.PositiveInfinity; // R* ∈ [0.01, 10⁴]
        }
        (double[] X, double F) best = (new double[2], double.PositiveInfinity);
        foreach (double logR in new[] { -1.0, 0.5, 2.0, 4.0 })
        {
            var run = fitEfficiency
                ? NelderMead.Minimize(Objective, [logR, 0], [0.5, 0.1])
                : NelderMead.Minimize(t => Objective([t[0], 0]), [logR], [0.5]);
            if (run.F < best.F) best = (fitEfficiency ? run.X : [run.X[0], 0], run.F);
        }
        double rms = Math.Sqrt(best.F / runs.Count);
        bool identifiable = runs.Select(r => r.Epochs).Distinct().Count() >= 2;
        return new RepetitionFit(identifiable ? Math.Exp(best.X[0]) : double.NaN, Math.Exp(best.X[1]), rms);
    }
}
