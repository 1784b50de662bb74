namespace Tessera.Training.Labs;

/// <summary>One measured point of a scaling sweep: N parameters trained on D tokens reached this loss.</summary>
public readonly record struct ScalingPoint(double N, double D, double Loss);

/// <summary>
/// The Chinchilla parametric loss L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022, approach 3):
/// E is the irreducible loss, the other terms the penalties of a finite model and finite data.
/// </summary>
public sealed record ScalingLaw(double E, double A, double Alpha, double B, double Beta)
{
    /// <summary>Predicted loss of N parameters trained on D tokens.</summary>
    public double Loss(double n, double d) => E + A / Math.Pow(n, Alpha) + B / Math.Pow(d, Beta);

    /// <summary>
    /// The loss-minimising split of a budget under C = 6·N·D:
    /// N_opt = G·(C/6)^(β/(α+β)), D_opt = (C/6)/N_opt with G = (αA/(βB))^(1/(α+β)).
    /// </summary>
    public (double N, double D) ComputeOptimal(double flops)
    {
        double g = Math.Pow(Alpha * A / (Beta * B), 1 / (Alpha + Beta));
        double n = g * Math.Pow(flops / 6, Beta / (Alpha + Beta));
        return (n, flops / 6 / n);
    }

    /// <summary>Compute-optimal tokens per parameter at a budget (depends on C unless α = β).</summary>
    public double TokensPerParameter(double flops)
    {
        var (n, d) = ComputeOptimal(flops);
        return d / n;
    }

    /// <summary>
    /// Fits the law to <paramref name="points"/> the way Chinchilla did: Huber loss (δ =
    /// <paramref name="huberDelta"/>) on log L_pred − log L, with log L_pred written as a
    /// log-sum-exp of (log E, log A − α log N, log B − β log D) so every parameter stays positive;
    /// minimised by Nelder–Mead from the best points of a grid of starts. Needs at least 5 points.
    /// </summary>
    public static ScalingLaw Fit(IReadOnlyList<ScalingPoint> points, double huberDelta = 1e-3)
    {
        if (points.Count < 5) throw new ArgumentException($"Fitting L(N, D) needs at least 5 runs (it has 5 parameters), got {points.Count}.");
        foreach (var p in points)
            if (!(p.N > 0 && p.D > 0 && p.Loss > 0 && double.IsFinite(p.Loss)))
                throw new ArgumentException($"Scaling point (N={p.N}, D={p.D}, loss={p.Loss}) is not positive and finite.");
        var logN = new double[points.Count];
        var logD = new double[points.Count];
        var logL = new double[points.Count];
        for (int i = 0; i < points.Count; i++) (logN[i], logD[i], logL[i]) = (Math.Log(points[i].N), Math.Log(points[i].D), Math.Log(points[i].Loss));

        // θ = (log A, log B, log E, α, β).
        // Box bounds keep a degenerate data set (say, loss rising with N at fixed compute) from
        // driving a term to 0 through α → ∞ and A → ∞; the fit then sits on a bound, finite.
        double Objective(double[] t)
        {
            if (t[0] is < -20 or > 60 || t[1] is < -20 or > 60 || t[2] is < -10 or > 3 || t[3] is < 0.01 or > 2.5 || t[4] is < 0.01 or > 2.5)
                return double.PositiveInfinity;
            double sum = 0;
            for (int i = 0; i < logN.Length; i++)
            {
                double r = LogSumExp(t[0] - t[3] * logN[i], t[1] - t[4] * logD[i], t[2]) - logL[i];
                double a = Math.Abs(r);
                sum += a <= huberDelta ? 0.5 * r * r : huberDelta * (a - 0.5 * huberDelta);
            }
            return sum;
        }

        var starts = new List<(double F, double[] X)>();
        foreach (double a in new[] { 0.0, 5, 10, 15, 20, 25 })
            foreach (double b in new[] { 0.0, 5, 10, 15, 20, 25 })
                foreach (double e in new[] { -1.0, -0.5, 0, 0.5, 1 })
                    foreach (double alpha in new[] { 0.1, 0.3, 0.6, 1.0, 1.5 })
                        foreach (double beta in new[] { 0.1, 0.3, 0.6, 1.0, 1.5 })
                        {
                            double[] x = [a, b, e, alpha, beta];
                            starts.Add((Objective(x), x));
                        }
        starts.Sort((p, q) => p.F.CompareTo(q.F));
        double[] best = starts[0].X;
        double bestF = double.PositiveInfinity;
        for (int s = 0; s < Math.Min(24, starts.Count); s++)
        {
            var (x, f) = NelderMead.Minimize(Objective, starts[s].X, [1.0, 1.0, 0.25, 0.1, 0.1]);
            // Negative exponents would make a "law" that improves with less model or data.
            if (f < bestF && x[3] > 0 && x[4] > 0) (best, bestF) = (x, f);
        }
        return new ScalingLaw(Math.Exp(best[2]), Math.Exp(best[0]), best[3], Math.Exp(best[1]), best[4]);
    }

    static double LogSumExp(double a, double b, double c)
    {
        double m = Math.Max(a, Math.Max(b, c));
        return m + Math.Log(Math.Exp(a - m) + Math.Exp(b - m) + Math.Exp(c - m));
    }
}
