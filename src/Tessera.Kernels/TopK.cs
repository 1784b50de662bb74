using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>Row-wise top-k (descending, ties to the lower index). Same contract as <see cref="ScalarTopK"/>.</summary>
/// <remarks>
/// One pass per row keeps the best k so far sorted in the output slots (insertion, k small in
/// routing and sampling). Once k are held, a candidate must beat the k-th strictly, so a vector
/// compare of 16 columns against that threshold skips most of a long row. Scanning columns in
/// increasing order and inserting after equal values gives the twin's lower-index tie rule.
/// The order for NaN inputs is unspecified. Rows split over <see cref="WorkerPool.Shared"/> when large.
/// </remarks>
public static class TopK
{
    /// <summary>
    /// Index of the largest value, ties to the lower index (<see cref="ScalarTopK.ArgMax"/>'s rule). A vector
    /// pass finds the maximum, then the first index holding it; a NaN anywhere makes that maximum NaN (IEEE
    /// maximum), which matches nothing, so the scalar rule decides.
    /// </summary>
    public static unsafe int ArgMax(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty) throw new ArgumentException("TopK.ArgMax: the span is empty.");
        if (Vector512.IsHardwareAccelerated && x.Length >= 32)
            fixed (float* p = x)
            {
                var m = Vector512.Load(p);
                int i = 16;
                for (; i + 16 <= x.Length; i += 16) m = Vector512.Max(m, Vector512.Load(p + i));
                float max = m[0];
                for (int j = 1; j < 16; j++) max = MathF.Max(max, m[j]);
                for (; i < x.Length; i++) max = MathF.Max(max, p[i]);
                for (int j = 0; j < x.Length; j++) if (p[j] == max) return j;
            }
        return ScalarTopK.ArgMax(x);
    }

    /// <summary>
    /// For each row of <paramref name="cols"/> floats, writes the k largest values in descending
    /// order with their column indices; ties go to the lower index (deterministic routing).
    /// </summary>
    public static unsafe void Select(ReadOnlySpan<float> x, int rows, int cols, int k, Span<int> indices, Span<float> values)
    {
        const string op = "TopK.Select";
        TopKChecks.Check(cols, k);
        SpanChecks.NonNegative(rows, op, "rows");
        SpanChecks.Length(x.Length, (long)rows * cols, op, "x", rows, cols);
        SpanChecks.Length(indices.Length, (long)rows * k, op, "indices", rows, k);
        SpanChecks.Length(values.Length, (long)rows * k, op, "values", rows, k);
        fixed (float* px = x, pv = values)
        fixed (int* pi = indices)
            RowParallel.Run(new Rows(px, pi, pv, cols, k), rows, (long)rows * cols);
    }

    unsafe readonly struct Rows(float* x, int* indices, float* values, int cols, int k) : IRowRange
    {
        public void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
                SelectRow(x + (long)r * cols, cols, k, indices + (long)r * k, values + (long)r * k);
        }
    }

    static unsafe void SelectRow(float* row, int cols, int k, int* idx, float* val)
    {
        int filled = 0, c = 0;
        for (; c < cols && filled < k; c++) Insert(row[c], c, idx, val, filled++);
        // Full: only values strictly above the k-th can enter. A vector compare gives a bit per
        // column; the set bits are visited in increasing column order (the threshold may rise in
        // between, so each is re-checked). The last block is loaded ending at the row's end and
        // masked to the columns not yet seen, so there is no scalar tail.
        if (Vector512.IsHardwareAccelerated && cols >= 16)
        {
            for (; c < cols; c += 16)
            {
                int b = Math.Min(c, cols - 16);
                ulong m = Vector512.GreaterThan(Vector512.Load(row + b), Vector512.Create(val[k - 1])).ExtractMostSignificantBits() >> (c - b);
                for (; m != 0; m &= m - 1)
                {
                    int j = c + BitOperations.TrailingZeroCount(m);
                    if (row[j] > val[k - 1]) Insert(row[j], j, idx, val, k - 1);
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated && cols >= 8)
        {
            for (; c < cols; c += 8)
            {
                int b = Math.Min(c, cols - 8);
                uint m = Vector256.GreaterThan(Vector256.Load(row + b), Vector256.Create(val[k - 1])).ExtractMostSignificantBits() >> (c - b);
                for (; m != 0; m &= m - 1)
                {
                    int j = c + BitOperations.TrailingZeroCount(m);
                    if (row[j] > val[k - 1]) Insert(row[j], j, idx, val, k - 1);
                }
            }
        }
        for (; c < cols; c++)
            if (row[c] > val[k - 1]) Insert(row[c], c, idx, val, k - 1);
    }

    /// <summary>
    /// Places (v, c) into the sorted slots [0, last] where slot <paramref name="last"/> is free or
    /// being evicted: shifts down every held value strictly below v.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe void Insert(float v, int c, int* idx, float* val, int last)
    {
        int j = last;
        while (j > 0 && val[j - 1] < v)
        {
            val[j] = val[j - 1];
            idx[j] = idx[j - 1];
            j--;
        }
        val[j] = v;
        idx[j] = c;
    }
}
