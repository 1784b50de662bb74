namespace Tessera.Training.Labs;

/// <summary>
/// The minimum of one IsoFLOP curve (Chinchilla approach 2): a parabola
/// L = c₀ + c₁·x + c₂·x² in x = ln N fitted by least squares to the runs of one budget; its vertex
/// is the loss-optimal model size. <see cref="Interior"/> is false when the parabola opens
/// downwards or its vertex lies outside the measured sizes; the minimum is then the best run.
/// </summary>
public sealed record IsoFlopMinimum(double Flops, double OptimalN, double OptimalD, double MinLoss, double C0, double C1, double C2, bool Interior)
{
    /// <summary>Tokens per parameter at the optimum.</summary>
    public double TokensPerParameter => OptimalD / OptimalN;

    /// <summary>The parabola's loss at N.</summary>
    public double Loss(double n) { double x = Math.Log(n); return C0 + C1 * x + C2 * x * x; }

    /// <summary>
    /// Fits one budget's runs (N, D, loss). The optimal D comes from the same runs: ln D is close
    /// to linear in ln N at fixed compute (D = C/FLOPs-per-token(N)), so it is interpolated by a
    /// least-squares line through (ln N, ln D). Needs at least 3 runs of distinct sizes.
    /// </summary>
    public static IsoFlopMinimum Fit(double flops, IReadOnlyList<ScalingPoint> runs)
    {
        if (runs.Count < 3) throw new ArgumentException($"An IsoFLOP minimum needs at least 3 model sizes per budget, the budget {flops:0.00e+0} has {runs.Count}.");
        int n = runs.Count;
        var x = new double[n]; var y = new double[n]; var ld = new double[n];
        for (int i = 0; i < n; i++) (x[i], y[i], ld[i]) = (Math.Log(runs[i].N), runs[i].Loss, Math.Log(runs[i].D));
        var c = Polynomial.LeastSquares(x, y, 2);
        var dl = Polynomial.LeastSquares(x, ld, 1); // ln D ≈ dl₀ + dl₁·ln N
        double xMin = x.Min(), xMax = x.Max();
        double vertex = c[2] > 0 ? -c[1] / (2 * c[2]) : double.NaN;
        bool interior = double.IsFinite(vertex) && vertex >= xMin && vertex <= xMax;
        double xs, loss;
        if (interior)
        {
            xs = vertex;
            loss = c[0] + c[1] * xs + c[2] * xs * xs;
        }
        else
        {
            int best = 0;
            for (int i = 1; i < n; i++) if (y[i] < y[best]) best = i;
            xs = x[best];
            loss = y[best];
        }
        return new IsoFlopMinimum(flops, Math.Exp(xs), Math.Exp(dl[0] + dl[1] * xs), loss, c[0], c[1], c[2], interior);
    }
}
