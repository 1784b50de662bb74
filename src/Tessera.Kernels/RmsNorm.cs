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
    /// <summary>
    /// Normalizes each row of <paramref name="dim"/> floats, y = x·rstd·(w + <paramref name="gainOffset"/>);
    /// saves rstd per row for backward. Gemma stores its gain as w with offset 1 (y = x·rstd·(1 + w)).
    /// With a non-zero offset the gain is formed in y first, so y must not overlap x.
    /// </summary>
    public static unsafe void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, Span<float> rstd, int rows, int dim, float eps,
        float gainOffset = 0f)
    {
        const string op = "RmsNorm.Forward";
        Check(op, rows, dim, x.Length, weight.Length, rstd.Length);
        SpanChecks.Length(y.Length, (long)rows * dim, op, "y", rows, dim);
        fixed (float* px = x, pw = weight, py = y, prs = rstd)
            RowParallel.Run(new ForwardRows(px, pw, py, prs, dim, eps, gainOffset), rows, (long)rows * dim);
    }

    /// <summary>
    /// dx = rstd·(g⊙dy) − rstd³·x·Σ(g⊙dy⊙x)/dim with the gain g = w + <paramref name="gainOffset"/>;
    /// dWeight += Σ_rows dy⊙x·rstd (accumulated; the offset is a constant, so it does not enter).
    /// </summary>
    public static unsafe void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dWeight, int rows, int dim,
        float gainOffset = 0f)
    {
        const string op = "RmsNorm.Backward";
        Check(op, rows, dim, x.Length, weight.Length, rstd.Length);
        SpanChecks.Length(dy.Length, (long)rows * dim, op, "dy", rows, dim);
        SpanChecks.Length(dx.Length, (long)rows * dim, op, "dx", rows, dim);
        SpanChecks.Length(dWeight.Length, dim, op, "dWeight", dim);
        if (rows == 0) return;
        fixed (float* px = x, pw = weight, prs = rstd, pdy = dy, pdx = dx, pdw = dWeight)
        {
            RowParallel.Run(new BackwardRows(px, pw, prs, pdy, pdx, dim, gainOffset), rows, 2L * rows * dim);
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

    unsafe readonly struct ForwardRows(float* x, float* w, float* y, float* rstd, int dim, float eps, float gainOffset) : IRowRange
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
                if (gainOffset != 0f)
                {
                    TensorPrimitives.Add(wr, gainOffset, yr);                 // g = w + offset, rounded once as in fp32 HF
                    TensorPrimitives.Multiply(xr, yr, yr);
                }
                else TensorPrimitives.Multiply(xr, wr, yr);
                TensorPrimitives.Multiply(yr, rs, yr);
            }
        }
    }

    unsafe readonly struct BackwardRows(float* x, float* w, float* rstd, float* dy, float* dx, int dim, float gainOffset) : IRowRange
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
                if (gainOffset != 0f)
                {
                    TensorPrimitives.Add(wr, gainOffset, dxr);                // dx ← g = w + offset (scratch)
                    TensorPrimitives.Multiply(dxr, dyr, dxr);                 // dx ← g⊙dy
                }
                else TensorPrimitives.Multiply(wr, dyr, dxr);                 // dx ← w⊙dy (scratch)
                double dot = TensorPrimitives.Dot(dxr, xr);                    // Σ g⊙dy⊙x
                float c = (float)(rs * rs * rs * dot / dim);
                TensorPrimitives.Multiply(dxr, (float)rs, dxr);               // rstd·(g⊙dy)
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
