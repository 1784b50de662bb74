namespace Tessera.Kernels.Reference;

/// <summary>Scalar twin of <see cref="RmsNorm"/>: y = x · rstd · (w + offset) with rstd = 1/sqrt(mean(x²) + eps).</summary>
public static class ScalarRmsNorm
{
    /// <summary>Normalizes each row of <paramref name="dim"/> floats with gain w + <paramref name="gainOffset"/>; saves rstd per row for backward.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, Span<float> rstd,
        int rows, int dim, float eps, float gainOffset = 0f)
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * dim;
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += (double)x[o + i] * x[o + i];
            double rs = 1.0 / Math.Sqrt(ss / dim + eps);
            rstd[r] = (float)rs;
            for (int i = 0; i < dim; i++) y[o + i] = (float)(x[o + i] * rs * ((double)weight[i] + gainOffset));
        }
    }

    /// <summary>
    /// dx = rstd·(g⊙dy) − rstd³·x·Σ(g⊙dy⊙x)/dim with g = w + <paramref name="gainOffset"/>;
    /// dWeight += Σ_rows dy⊙x·rstd (accumulated).
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy, Span<float> dx, Span<float> dWeight, int rows, int dim, float gainOffset = 0f)
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * dim;
            double rs = rstd[r], dot = 0;
            for (int i = 0; i < dim; i++) dot += ((double)weight[i] + gainOffset) * dy[o + i] * x[o + i];
            for (int i = 0; i < dim; i++)
            {
                dx[o + i] = (float)(rs * ((double)weight[i] + gainOffset) * dy[o + i] - rs * rs * rs * x[o + i] * dot / dim);
                dWeight[i] += (float)(dy[o + i] * x[o + i] * rs);
            }
        }
    }
}
