namespace Tessera.Tensors;

/// <summary>Softmax and log-softmax over the last axis.</summary>
public sealed partial class Graph
{
    /// <summary>y = softmax(x) along the last axis. Backward uses the saved output: dx = y ⊙ (dy − Σ dy⊙y).</summary>
    public Tensor Softmax(Tensor x) => RowWise("Softmax", x, Kernels.Softmax.Forward, Kernels.Softmax.Backward);

    /// <summary>y = log_softmax(x) along the last axis.</summary>
    public Tensor LogSoftmax(Tensor x) => RowWise("LogSoftmax", x, Kernels.Softmax.LogForward, Kernels.Softmax.LogBackward);

    delegate void RowForward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols);
    delegate void RowBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols);

    Tensor RowWise(string op, Tensor x, RowForward forward, RowBackward backward)
    {
        Usable(op, x);
        if (x.Rank < 1) throw new ArgumentException($"{op}: input {Describe(x)} needs at least one axis.");
        int cols = x.Dim(-1), rows = cols == 0 ? 0 : x.Length / cols;
        var y = NewOutput(op, x.Shape, false, x);
        forward(x.AsSpan(op), y.AsSpan(op), rows, cols);
        Record(op, y, [x], () =>
        {
            var dx = BeginGrad(x, out bool scratch);
            backward(y.AsSpan(op), y.Grad!.AsSpan(op), dx.AsSpan(op), rows, cols);
            EndGrad(x, dx, scratch);
        });
        return y;
    }
}
