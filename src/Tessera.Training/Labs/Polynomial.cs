namespace Tessera.Training.Labs;

/// <summary>Polynomial least squares for the lab fits (IsoFLOP parabolas, power laws as lines in log-log).</summary>
public static class Polynomial
{
    /// <summary>
    /// Coefficients c₀..c_degree minimising Σ (y − Σ cₖ xᵏ)², via the normal equations on x centred
    /// and scaled to unit spread (which keeps them well conditioned for ln N ≈ 10–16), then mapped back.
    /// </summary>
    public static double[] LeastSquares(IReadOnlyList<double> x, IReadOnlyList<double> y, int degree)
    {
        int n = x.Count, m = degree + 1;
        if (n != y.Count || n < m) throw new ArgumentException($"A degree-{degree} least-squares fit needs at least {m} points with one y each, got {n} x and {y.Count} y.");
        double mean = 0; foreach (var v in x) mean += v; mean /= n;
        double scale = 0; foreach (var v in x) scale = Math.Max(scale, Math.Abs(v - mean));
        if (scale == 0) throw new ArgumentException("A least-squares fit needs at least two distinct x values.");
        var a = new double[m, m + 1];
        for (int i = 0; i < n; i++)
        {
            double u = (x[i] - mean) / scale;
            var pow = new double[2 * m];
            pow[0] = 1;
            for (int k = 1; k < pow.Length; k++) pow[k] = pow[k - 1] * u;
            for (int r = 0; r < m; r++)
            {
                for (int col = 0; col < m; col++) a[r, col] += pow[r + col];
                a[r, m] += pow[r] * y[i];
            }
        }
        var cu = Solve(a, m);
        // Expand Σ cuₖ ((x − mean)/scale)ᵏ into powers of x.
        var c = new double[m];
        for (int k = 0; k < m; k++)
        {
            double coef = cu[k] / Math.Pow(scale, k);
            for (int j = 0; j <= k; j++) c[j] += coef * Binomial(k, j) * Math.Pow(-mean, k - j);
        }
        return c;
    }

    static double Binomial(int k, int j)
    {
        double r = 1;
        for (int i = 1; i <= j; i++) r = r * (k - j + i) / i;
        return r;
    }

    /// <summary>Gaussian elimination with partial pivoting on an m × (m + 1) augmented matrix.</summary>
    static double[] Solve(double[,] a, int m)
    {
        for (int col = 0; col < m; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < m; r++) if (Math.Abs(a[r, col]) > Math.Abs(a[pivot, col])) pivot = r;
            if (Math.Abs(a[pivot, col]) < 1e-300) throw new ArgumentException("Least-squares fit is singular (too few distinct points).");
            if (pivot != col)
                for (int k = 0; k <= m; k++) (a[col, k], a[pivot, k]) = (a[pivot, k], a[col, k]);
            for (int r = col + 1; r < m; r++)
            {
                double f = a[r, col] / a[col, col];
                for (int k = col; k <= m; k++) a[r, k] -= f * a[col, k];
            }
        }
        var x = new double[m];
        for (int r = m - 1; r >= 0; r--)
        {
            double s = a[r, m];
            for (int k = r + 1; k < m; k++) s -= a[r, k] * x[k];
            x[r] = s / a[r, r];
        }
        return x;
    }
}
