namespace Tessera.Kernels.Reference;

/// <summary>Scalar twin of <see cref="Softmax"/>. Rows of <c>cols</c> contiguous floats.</summary>
public static class ScalarSoftmax
{
    /// <summary>log Σ exp(x) in double (max-subtracted), rounded to float; an infinite or NaN maximum is returned as is.</summary>
    public static float LogSumExp(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty) throw new ArgumentException("ScalarSoftmax.LogSumExp: the span is empty.");
        float max = float.NegativeInfinity;
        foreach (float v in x) max = float.IsNaN(v) || float.IsNaN(max) ? float.NaN : MathF.Max(max, v);
        if (float.IsInfinity(max) || float.IsNaN(max)) return max;
        double sum = 0;
        foreach (float v in x) sum += Math.Exp((double)v - max);
        return (float)(max + Math.Log(sum));
    }

    /// <summary>y = softmax(x) per row (max-subtracted).</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols); var yr = y.Slice(r * cols, cols);
            float max = float.NegativeInfinity;
            for (int i = 0; i < cols; i++) max = MathF.Max(max, xr[i]);
            double sum = 0;
            for (int i = 0; i < cols; i++) sum += Math.Exp(xr[i] - max);
            for (int i = 0; i < cols; i++) yr[i] = (float)(Math.Exp(xr[i] - max) / sum);
        }
    }

    /// <summary>dx = y ⊙ (dy − Σ dy⊙y) per row, given the forward output y.</summary>
    public static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            double dot = 0;
            for (int i = 0; i < cols; i++) dot += (double)dy[o + i] * y[o + i];
            for (int i = 0; i < cols; i++) dx[o + i] = (float)(y[o + i] * (dy[o + i] - dot));
        }
    }

    /// <summary>y = log_softmax(x) per row.</summary>
    public static void LogForward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols); var yr = y.Slice(r * cols, cols);
            float max = float.NegativeInfinity;
            for (int i = 0; i < cols; i++) max = MathF.Max(max, xr[i]);
            double sum = 0;
            for (int i = 0; i < cols; i++) sum += Math.Exp(xr[i] - max);
            double lse = max + Math.Log(sum);
            for (int i = 0; i < cols; i++) yr[i] = (float)(xr[i] - lse);
        }
    }

    /// <summary>dx = dy − softmax(x)·Σ dy per row, given the forward output y = log_softmax(x).</summary>
    public static void LogBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            double sum = 0;
            for (int i = 0; i < cols; i++) sum += dy[o + i];
            for (int i = 0; i < cols; i++) dx[o + i] = (float)(dy[o + i] - Math.Exp(y[o + i]) * sum);
        }
    }
}
