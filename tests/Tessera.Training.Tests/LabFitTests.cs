using Tessera.Tensors;
using Tessera.Training.Labs;

namespace Tessera.Training.Tests;

/// <summary>
/// The lab's fitting code on synthetic data whose true parameters are known: each fit must
/// recover them (noiseless) or predict held-out points (noisy). Tolerances are stated per test.
/// </summary>
public class LabFitTests
{
    static readonly ScalingLaw Truth = new(E: 1.69, A: 406.4, Alpha: 0.34, B: 410.7, Beta: 0.28); // Chinchilla's published fit

    static List<ScalingPoint> Grid(ScalingLaw law, double noise, ulong seed)
    {
        var rng = new Rng(seed);
        var points = new List<ScalingPoint>();
        foreach (double c in new[] { 1e15, 4e15, 1.6e16 })
            foreach (double n in new[] { 1e6, 3e6, 1e7, 3e7, 1e8 })
            {
                double d = c / (6 * n);
                points.Add(new ScalingPoint(n, d, law.Loss(n, d) * (1 + noise * (2 * rng.NextDouble() - 1))));
            }
        return points;
    }

    [Fact]
    public void ScalingLawFitRecoversKnownParametersFromNoiselessPoints()
    {
        var fit = ScalingLaw.Fit(Grid(Truth, 0, 1));
        // 15 exact points, 5 parameters: the minimiser should land on the truth up to optimiser tolerance.
        Assert.InRange(fit.Alpha, Truth.Alpha - 0.02, Truth.Alpha + 0.02);
        Assert.InRange(fit.Beta, Truth.Beta - 0.02, Truth.Beta + 0.02);
        Assert.InRange(fit.E, Truth.E - 0.05, Truth.E + 0.05);
        // Extrapolation 4× past the largest budget: the loss must match to 0.2 %.
        double n = 3e7, d = 6.4e16 / (6 * n);
        Assert.InRange(fit.Loss(n, d) / Truth.Loss(n, d), 0.998, 1.002);
    }

    [Fact]
    public void ScalingLawFitPredictsAHeldOutPointThroughNoise()
    {
        // ±0.5 % uniform noise on every loss (about what run-to-run noise looks like): the fit must
        // still predict a 4× larger budget within 1.5 %, three times the per-point noise.
        var fit = ScalingLaw.Fit(Grid(Truth, 0.005, 2));
        double n = 3e7, d = 6.4e16 / (6 * n);
        Assert.InRange(fit.Loss(n, d) / Truth.Loss(n, d), 0.985, 1.015);
        Assert.True(fit.Alpha > 0 && fit.Beta > 0);
    }

    [Fact]
    public void ComputeOptimalSplitSpendsTheBudgetAndMinimisesTheLoss()
    {
        const double c = 1e20;
        var (n, d) = Truth.ComputeOptimal(c);
        Assert.Equal(c, 6 * n * d, c * 1e-12);
        double best = Truth.Loss(n, d);
        foreach (double f in new[] { 0.8, 0.95, 1.05, 1.25 })
            Assert.True(Truth.Loss(n * f, d / f) > best, $"moving N by ×{f} along the budget should cost loss");
        Assert.Equal(d / n, Truth.TokensPerParameter(c), 1e-9 * d / n);
    }

    [Fact]
    public void IsoFlopParabolaFindsTheVertexAndFlagsAMonotoneCurve()
    {
        // Exact parabola in ln N with its vertex at N = 2e5, D = C / (6N).
        const double c = 1e12;
        double[] ns = [5e4, 1e5, 2e5, 4e5, 8e5];
        var points = ns.Select(n => new ScalingPoint(n, c / (6 * n), 2.0 + 0.05 * Math.Pow(Math.Log(n / 2e5), 2))).ToList();
        var m = IsoFlopMinimum.Fit(c, points);
        Assert.True(m.Interior);
        Assert.Equal(2e5, m.OptimalN, 2e5 * 1e-6);
        Assert.Equal(c / (6 * 2e5), m.OptimalD, c / (6 * 2e5) * 1e-6);
        Assert.Equal(2.0, m.MinLoss, 1e-9);

        var falling = ns.Select(n => new ScalingPoint(n, c / (6 * n), 3.0 - 0.1 * Math.Log(n))).ToList();
        var edge = IsoFlopMinimum.Fit(c, falling);
        Assert.False(edge.Interior);
        Assert.Equal(8e5, edge.OptimalN, 1e-3);
        Assert.Throws<ArgumentException>(() => IsoFlopMinimum.Fit(c, points.Take(2).ToList()));
    }

    [Fact]
    public void PolynomialLeastSquaresIsExactOnPolynomialDataWithLargeOffsets()
    {
        // ln N lives around 10–16; the centred normal equations must still be exact to ~1e-9.
        double[] x = [10, 11.5, 12, 13.7, 15, 16];
        double[] y = [.. x.Select(v => 1.5 - 0.25 * v + 0.125 * v * v)];
        var c = Polynomial.LeastSquares(x, y, 2);
        Assert.Equal(1.5, c[0], 1e-8);
        Assert.Equal(-0.25, c[1], 1e-9);
        Assert.Equal(0.125, c[2], 1e-10);
    }

    [Fact]
    public void NelderMeadMinimisesRosenbrock()
    {
        static double Rosenbrock(double[] p) => 100 * Math.Pow(p[1] - p[0] * p[0], 2) + Math.Pow(1 - p[0], 2);
        var (x, f) = NelderMead.Minimize(Rosenbrock, [-1.2, 1.0], [0.5, 0.5]);
        Assert.True(f < 1e-10, $"f = {f}");
        Assert.Equal(1.0, x[0], 1e-4);
        Assert.Equal(1.0, x[1], 1e-4);
    }

    [Fact]
    public void DataCurveAndRepetitionFitRecoverTheGeneratingParameters()
    {
        var curve = new DataCurve(E: 1.2, B: 60, Beta: 0.35);
        double[] fresh = [2e5, 4e5, 8e5, 1.6e6, 3.2e6];
        var fitCurve = DataCurve.Fit([.. fresh.Select(d => (d, curve.Loss(d)))]);
        foreach (double d in new[] { 1e5, 6.4e6 })
            Assert.InRange(fitCurve.Loss(d) / curve.Loss(d), 0.999, 1.001);

        // Runs at D = 3.2e6 tokens seen, U = D / epochs, generated with R* = 5, η = 0.9.
        var truth = new RepetitionFit(RStar: 5, Efficiency: 0.9, RmsLogError: 0);
        var runs = new[] { 1, 2, 4, 8, 16 }.Select(e => (U: 3.2e6 / e, E: (double)e, L: curve.Loss(truth.EffectiveTokens(3.2e6 / e, e)))).ToList();
        var fit = RepetitionFit.Fit(curve, runs);
        Assert.InRange(fit.RStar, 4.9, 5.1);
        Assert.InRange(fit.Efficiency, 0.895, 0.905);
        // The value of a token falls with repetition: 1·η at one epoch, less at four.
        Assert.Equal(0.9, fit.ValuePerToken(1), 1e-3);
        Assert.True(fit.ValuePerToken(4) < fit.ValuePerToken(2));
        Assert.True(double.IsNaN(RepetitionFit.Fit(curve, runs.Take(1).ToList()).RStar), "one epoch count cannot identify R*");

        // With η pinned at 1 (the no-dropout series), R* alone is fitted.
        var anchored = new RepetitionFit(RStar: 3, Efficiency: 1, RmsLogError: 0);
        var pinned = RepetitionFit.Fit(curve, [.. runs.Select(r => (r.U, r.E, curve.Loss(anchored.EffectiveTokens(r.U, r.E))))], fitEfficiency: false);
        Assert.Equal(1.0, pinned.Efficiency);
        Assert.InRange(pinned.RStar, 2.95, 3.05);
    }
}
