using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>RMSNorm forward/backward. Same contract as <see cref="ScalarRmsNorm"/>.</summary>
/// <remarks>
/// Rows are independent (row-parallel over <see cref="WorkerPool.Shared"/> when large). The
/// backward's dWeight sum over rows runs column-parallel instead: each worker owns a block of
/// columns and adds the rows in order, so the accumulation order is that of the twin and does not
/// depend on the thread count.
/// </remarks>
public static class RmsNorm
{
    /// <summary>Normalizes each row of <paramref name="dim"/> floats; saves rstd per row for backward.</summary>
    public static unsafe void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, Span<float> rstd, int rows, int dim, float eps)
    {
        const string op = "RmsNorm.Forward";
        Check(op, rows, dim, x.Length, weight.Length, rstd.Length);
        SpanChecks.Length(y.Length, (long)rows * dim, op, "y", rows, dim);
        fixed (float* px = x, pw = weight, py = y, prs = rstd)
            RowParallel.Run(new ForwardRows(px, pw, py, prs, dim, eps), rows, (long)rows * dim);
    }

    /// <summary>
    /// dx = rstd·(w⊙dy) − rstd³·x·Σ(w⊙dy⊙x)/dim; dWeight += Σ_rows dy⊙x·rstd (accumulated).
    /// </summary>
    public static unsafe void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dWeight, int rows, int dim)
    {
        const string op = "RmsNorm.Backward";
        Check(op, rows, dim, x.Length, weight.Length, rstd.Length);
        SpanChecks.Length(dy.Length, (long)rows * dim, op, "dy", rows, dim);
        SpanChecks.Length(dx.Length, (long)rows * dim, op, "dx", rows, dim);
        SpanChecks.Length(dWeight.Length, dim, op, "dWeight", dim);
        if (rows == 0) return;
        fixed (float* px = x, pw = weight, prs = rstd, pdy = dy, pdx = dx, pdw = dWeight)
        {
            RowParallel.Run(new BackwardRows(px, pw, prs, pdy, pdx, dim), rows, 2L * rows * dim);
            RowParallel.Run(new WeightGradColumns(px, prs, pdy, pdw, rows, dim), dim, 2L * rows * dim);
        }
    }

    static void Check(string op, int rows, int dim, int xLength, int weightLength, int rstdLength)
    {
        SpanChecks.NonNegative(rows, op, "rows");
        SpanChecks.NonNegative(dim, op, "dim");
        SpanChecks.Length(xLength, (long)rows * dim, op, "x", rows, dim);
        SpanChecks.Length(weightLength, dim, op, "weight", dim);
        SpanChecks.Length(rstdLength, rows, op, "rstd", rows);
    }

    unsafe readonly struct ForwardRows(float* x, float* w, float* y, float* rstd, int dim, float eps) : IRowRange
    {
        public void Run(int start, int end)
        {
            var wr = new ReadOnlySpan<float>(w, dim);
            for (int r = start; r < end; r++)
            {
                var xr = new ReadOnlySpan<float>(x + (long)r * dim, dim);
                var yr = new Span<float>(y + (long)r * dim, dim);
                float rs = (float)(1.0 / Math.Sqrt((double)TensorPrimitives.SumOfSquares(xr) / dim + eps));
                rstd[r] = rs;
                TensorPrimitives.Multiply(xr, wr, yr);
                TensorPrimitives.Multiply(yr, rs, yr);
            }
        }
    }

    unsafe readonly struct BackwardRows(float* x, float* w, float* rstd, float* dy, float* dx, int dim) : IRowRange
    {
        public void Run(int start, int end)
        {
            var wr = new ReadOnlySpan<float>(w, dim);
            for (int r = start; r < end; r++)
            {
                var xr = new ReadOnlySpan<float>(x + (long)r * dim, dim);
                var dyr = new ReadOnlySpan<float>(dy + (long)r * dim, dim);
                var dxr = new Span<float>(dx + (long)r * dim, dim);
                double rs = rstd[r];
                TensorPrimitives.Multiply(wr, dyr, dxr);                      // dx ← w⊙dy (scratch)
                double dot = TensorPrimitives.Dot(dxr, xr);                    // Σ w⊙dy⊙x
                float c = (float)(rs * rs * rs * dot / dim);
                TensorPrimitives.Multiply(dxr, (float)rs, dxr);               // rstd·(w⊙dy)
                TensorPrimitives.MultiplyAdd(xr, -c, dxr, dxr);               // − c·x
            }
        }
    }

    // dWeight[i] += (dy·x)·rstd for every row in order; the same two roundings in vector and scalar form.
    unsafe readonly struct WeightGradColumns(float* x, float* rstd, float* dy, float* dWeight, int rows, int dim) : IRowRange
    {
        public void Run(int start, int end)
        {
            for (int r = 0; r < rows; r++)
            {
                long o = (long)r * dim;
                float rs = rstd[r];
                ref float xs = ref Unsafe.AsRef<float>(x + o);
                ref float dys = ref Unsafe.AsRef<float>(dy + o);
                ref float dws = ref Unsafe.AsRef<float>(dWeight);
                int i = start;
                if (Vector512.IsHardwareAccelerated)
                {
                    var vrs = Vector512.Create(rs);
                    for (; i <= end - 16; i += 16)
                        (Vector512.LoadUnsafe(ref dws, (nuint)i) + Vector512.LoadUnsafe(ref dys, (nuint)i) * Vector512.LoadUnsafe(ref xs, (nuint)i) * vrs)
                            .StoreUnsafe(ref dws, (nuint)i);
                }
                else if (Vector256.IsHardwareAccelerated)
                {
                    var vrs = Vector256.Create(rs);
                    for (; i <= end - 8; i += 8)
                        (Vector256.LoadUnsafe(ref dws, (nuint)i) + Vector256.LoadUnsafe(ref dys, (nuint)i) * Vector256.LoadUnsafe(ref xs, (nuint)i) * vrs)
                            .StoreUnsafe(ref dws, (nuint)i);
                }
                for (; i < end; i++) Unsafe.Add(ref dws, i) += Unsafe.Add(ref dys, i) * Unsafe.Add(ref xs, i) * rs;
            }
        }
    }
}
