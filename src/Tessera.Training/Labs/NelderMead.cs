namespace Tessera.Training.Labs;

/// <summary>
/// Derivative-free minimisation (Nelder &amp; Mead 1965, standard coefficients: reflect 1, expand 2,
/// contract ½, shrink ½) for the lab's small curve fits, where objectives are smooth but the
/// Huber loss and exponentials make hand-written gradients error-prone. Restarts from the best
/// vertex until a restart no longer improves, which guards against a collapsed simplex.
/// </summary>
public static class NelderMead
{
    /// <summary>
    /// Minimises <paramref name="f"/> from <paramref name="start"/> with initial steps
    /// <paramref name="step"/> per coordinate; returns the best point and its value.
    /// Non-finite objective values count as +∞, so a fit can wander into overflow safely.
    /// </summary>
    public static (double[] X, double F) Minimize(Func<double[], double> f, double[] start, double[] step,
        int maxEvaluations = 20_000, double tolerance = 1e-12)
    {
        if (start.Length == 0 || step.Length != start.Length) throw new ArgumentException("NelderMead: start and step must have the same, non-zero length.");
        double F(double[] x) { double v = f(x); return double.IsFinite(v) ? v : double.PositiveInfinity; }
        var best = (X: (double[])start.Clone(), F: F(start));
        int evaluations = 1;
        for (int restart = 0; restart < 10 && evaluations < maxEvaluations; restart++)
        {
            var run = Run(F, best.X, step, maxEvaluations - evaluations, tolerance, ref evaluations);
            bool improved = run.F < best.F - tolerance * (Math.Abs(best.F) + tolerance);
            if (run.F <= best.F) best = run;
            if (!improved && restart > 0) break;
        }
        return best;
    }

    static (double[] X, double F) Run(Func<double[], double> f, double[] start, double[] step, int budget, double tolerance, ref int evaluations)
    {
        int n = start.Length;
        var x = new double[n + 1][];
        var fx = new double[n + 1];
        x[0] = (double[])start.Clone();
        fx[0] = f(x[0]);
        for (int i = 0; i < n; i++)
        {
            x[i + 1] = (double[])start.Clone();
            x[i + 1][i] += step[i] != 0 ? step[i] : 0.1;
            fx[i + 1] = f(x[i + 1]);
        }
        int used = n + 1;
        var centroid = new double[n];
        var order = new int[n + 1];
        while (used < budget)
        {
            for (int i = 0; i <= n; i++) order[i] = i;
            Array.Sort(order, (a, b) => fx[a].CompareTo(fx[b]));
            int lo = order[0], hi = order[n], second = order[n - 1];
            if (Math.Abs(fx[hi] - fx[lo]) <= tolerance * (Math.Abs(fx[lo]) + tolerance) && Spread(x, lo) <= 1e-10) break;

            Array.Clear(centroid);
            for (int i = 0; i <= n; i++)
                if (i != hi)
                    for (int j = 0; j < n; j++) centroid[j] += x[i][j] / n;

            var reflected = Toward(centroid, x[hi], -1);
            double fr = f(reflected); used++;
            if (fr < fx[lo])
            {
                var expanded = Toward(centroid, x[hi], -2);
                double fe = f(expanded); used++;
                if (fe < fr) { x[hi] = expanded; fx[hi] = fe; }
                else { x[hi] = reflected; fx[hi] = fr; }
            }
            else if (fr < fx[second])
            {
                x[hi] = reflected; fx[hi] = fr;
            }
            else
            {
                bool outside = fr < fx[hi];
                var contracted = outside ? Toward(centroid, reflected, 0.5) : Toward(centroid, x[hi], 0.5);
                double fc = f(contracted); used++;
                if (fc < (outside ? fr : fx[hi]))
                {
                    x[hi] = contracted; fx[hi] = fc;
                }
                else
                {
                    for (int i = 0; i <= n; i++)
                    {
                        if (i == lo) continue;
                        x[i] = Toward(x[lo], x[i], 0.5);
                        fx[i] = f(x[i]); used++;
                    }
                }
            }
        }
        evaluations += used;
        int bestIndex = 0;
        for (int i = 1; i <= n; i++) if (fx[i] < fx[bestIndex]) bestIndex = i;
        return (x[bestIndex], fx[bestIndex]);
    }

    /// <summary>c + t·(p − c): t = −1 reflects p through c, −2 expands, ½ contracts.</summary>
    static double[] Toward(double[] c, double[] p, double t)
    {
        var r = new double[c.Length];
        for (int j = 0; j < c.Length; j++) r[j] = c[j] + t * (p[j] - c[j]);
        return r;
    }

    static double Spread(double[][] x, int lo)
    {
        double s = 0;
        foreach (var v in x)
            for (int j = 0; j < v.Length; j++) s = Math.Max(s, Math.Abs(v[j] - x[lo][j]));
        return s;
    }
}
