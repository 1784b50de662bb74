using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>
/// Row softmax and log-softmax, forward and backward. Same contract as <see cref="ScalarSoftmax"/>.
/// </summary>
/// <remarks>
/// Each row: max (TensorPrimitives), then one fused pass y = exp(x − max) with the sum of the
/// terms (<see cref="VectorMath.Exp(Vector512{float})"/>, fp32 accumulation in a fixed lane order),
/// then a scale. Rows are independent and computed identically on any worker, so results do not
/// depend on the thread count; ≥ <see cref="RowParallel.MinParallelElements"/> elements go over
/// <see cref="WorkerPool.Shared"/>.
/// </remarks>
public static class Softmax
{
    /// <summary>
    /// log Σ exp(x), max-subtracted: float exps (<see cref="VectorMath.Exp(Vector512{float})"/>, ≤ 2u each)
    /// summed in double lanes, so a whole vocabulary costs a few microseconds rather than the ~100 µs of a
    /// scalar double loop (it runs once per generated token of every sequence). An infinite or NaN
    /// maximum is returned as is. Twin: <see cref="ScalarSoftmax.LogSumExp"/> (double exps, one accumulator).
    /// </summary>
    public static unsafe float LogSumExp(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty) throw new ArgumentException("Softmax.LogSumExp: the span is empty.");
        float max = TensorPrimitives.Max(x);
        if (float.IsInfinity(max) || float.IsNaN(max)) return max;
        double sum = 0;
        int i = 0;
        fixed (float* p = x)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                var m = Vector512.Create(max);
                Vector512<double> s0 = default, s1 = default;
                for (; i + 16 <= x.Length; i += 16)
                {
                    var (lo, hi) = Vector512.Widen(VectorMath.Exp(Vector512.Load(p + i) - m));
                    s0 += lo; s1 += hi;
                }
                sum = Vector512.Sum(s0 + s1);
            }
            for (; i < x.Length; i++) sum += VectorMath.Exp(p[i] - max);
        }
        return (float)(max + Math.Log(sum));
    }

    /// <summary>y = softmax(x) per row (max-subtracted).</summary>
    public static unsafe void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        Check("Softmax.Forward", x.Length, "x", y.Length, "y", rows, cols);
        fixed (float* px = x, py = y)
            RowParallel.Run(new ForwardRows(px, py, cols, log: false), rows, (long)rows * cols);
    }

    /// <summary>dx = y ⊙ (dy − Σ dy⊙y) per row, given the forward output y.</summary>
    public static unsafe void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        Check("Softmax.Backward", y.Length, "y", dx.Length, "dx", rows, cols);
        SpanChecks.Length(dy.Length, (long)rows * cols, "Softmax.Backward", "dy", rows, cols);
        fixed (float* py = y, pdy = dy, pdx = dx)
            RowParallel.Run(new BackwardRows(py, pdy, pdx, cols, log: false), rows, 2L * rows * cols);
    }

    /// <summary>y = log_softmax(x) per row.</summary>
    public static unsafe void LogForward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        Check("Softmax.LogForward", x.Length, "x", y.Length, "y", rows, cols);
        fixed (float* px = x, py = y)
            RowParallel.Run(new ForwardRows(px, py, cols, log: true), rows, (long)rows * cols);
    }

    /// <summary>dx = dy − softmax(x)·Σ dy per row, given the forward output y = log_softmax(x).</summary>
    public static unsafe void LogBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        Check("Softmax.LogBackward", y.Length, "y", dx.Length, "dx", rows, cols);
        SpanChecks.Length(dy.Length, (long)rows * cols, "Softmax.LogBackward", "dy", rows, cols);
        fixed (float* py = y, pdy = dy, pdx = dx)
            RowParallel.Run(new BackwardRows(py, pdy, pdx, cols, log: true), rows, 2L * rows * cols);
    }

    static void Check(string op, int inLength, string inName, int outLength, string outName, int rows, int cols)
    {
        SpanChecks.NonNegative(rows, op, "rows");
        SpanChecks.NonNegative(cols, op, "cols");
        long n = (long)rows * cols;
        SpanChecks.Length(inLength, n, op, inName, rows, cols);
        SpanChecks.Length(outLength, n, op, outName, rows, cols);
    }

    /// <summary>exp(x − shift), the max-subtracted softmax numerator.</summary>
    internal readonly struct ExpShift(float shift) : IUnaryOp
    {
        public float Invoke(float x) => VectorMath.Exp(x - shift);
        public Vector256<float> Invoke(Vector256<float> x) => VectorMath.Exp(x - Vector256.Create(shift));
        public Vector512<float> Invoke(Vector512<float> x) => VectorMath.Exp(x - Vector512.Create(shift));
    }

    // dy − exp(y)·s, the log-softmax backward.
    readonly struct LogBackwardOp(float s) : IBinaryOp
    {
        public float Invoke(float y, float dy) => MathF.FusedMultiplyAdd(-VectorMath.Exp(y), s, dy);
        public Vector256<float> Invoke(Vector256<float> y, Vector256<float> dy) => Vector256.FusedMultiplyAdd(-VectorMath.Exp(y), Vector256.Create(s), dy);
        public Vector512<float> Invoke(Vector512<float> y, Vector512<float> dy) => Vector512.FusedMultiplyAdd(-VectorMath.Exp(y), Vector512.Create(s), dy);
    }

    unsafe readonly struct ForwardRows(float* x, float* y, int cols, bool log) : IRowRange
    {
        public void Run(int start, int end)
        {
            if (cols == 0) return;
            for (int r = start; r < end; r++)
            {
                var xr = new ReadOnlySpan<float>(x + (long)r * cols, cols);
                var yr = new Span<float>(y + (long)r * cols, cols);
                float max = TensorPrimitives.Max(xr);
                float sum = Elementwise.MapSum(new ExpShift(max), ref x[(long)r * cols], ref y[(long)r * cols], cols);
                if (log)
                    TensorPrimitives.Subtract(xr, (float)(max + Math.Log(sum)), yr);
                else
                    TensorPrimitives.Multiply(yr, 1f / sum, yr);
            }
        }
    }

    unsafe readonly struct BackwardRows(float* y, float* dy, float* dx, int cols, bool log) : IRowRange
    {
        public void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                long o = (long)r * cols;
                var yr = new ReadOnlySpan<float>(y + o, cols);
                var dyr = new ReadOnlySpan<float>(dy + o, cols);
                var dxr = new Span<float>(dx + o, cols);
                if (log)
                    Elementwise.Map(new LogBackwardOp(TensorPrimitives.Sum(dyr)), ref y[o], ref dy[o], ref dx[o], cols);
                else
                    TensorPrimitives.AddMultiply(dyr, -TensorPrimitives.Dot(dyr, yr), yr, dxr);   // (dy − dot)·y
            }
        }
    }
}
