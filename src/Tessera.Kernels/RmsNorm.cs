using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>RMSNorm forward/backward. Same contract as <see cref="ScalarRmsNorm"/>.</summary>
public static class RmsNorm
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, Span<float> rstd, int rows, int dim, float eps)
        => ScalarRmsNorm.Forward(x, weight, y, rstd, rows, dim, eps);
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dWeight, int rows, int dim)
        => ScalarRmsNorm.Backward(x, weight, rstd, dy, dx, dWeight, rows, dim);
}
