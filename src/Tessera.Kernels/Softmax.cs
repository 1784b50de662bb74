using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>Row softmax and log-softmax, forward and backward. Same contract as <see cref="ScalarSoftmax"/>.</summary>
public static class Softmax
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols) => ScalarSoftmax.Forward(x, y, rows, cols);
    public static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols) => ScalarSoftmax.Backward(y, dy, dx, rows, cols);
    public static void LogForward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols) => ScalarSoftmax.LogForward(x, y, rows, cols);
    public static void LogBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols) => ScalarSoftmax.LogBackward(y, dy, dx, rows, cols);
}
