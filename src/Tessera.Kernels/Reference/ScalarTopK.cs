namespace Tessera.Kernels.Reference;

/// <summary>Scalar twin of <see cref="TopK"/>.</summary>
public static class ScalarTopK
{
    /// <summary>Index of the largest value, ties to the lower index; a NaN is never larger than anything.</summary>
    public static int ArgMax(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty) throw new ArgumentException("ScalarTopK.ArgMax: the span is empty.");
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    /// <summary>
    /// For each row of <paramref name="cols"/> floats, writes the k largest values in descending
    /// order with their column indices; ties go to the lower index (deterministic routing).
    /// </summary>
    public static void Select(ReadOnlySpan<float> x, int rows, int cols, int k, Span<int> indices, Span<float> values)
    {
        TopKChecks.Check(cols, k);
        var taken = new bool[cols];
        for (int r = 0; r < rows; r++)
        {
            Array.Clear(taken);
            for (int j = 0; j < k; j++)
            {
                int best = -1;
                for (int c = 0; c < cols; c++)
                {
                    if (taken[c]) continue;
                    if (best < 0 || x[r * cols + c] > x[r * cols + best]) best = c;
                }
                taken[best] = true;
                indices[r * k + j] = best;
                values[r * k + j] = x[r * cols + best];
            }
        }
    }
}
