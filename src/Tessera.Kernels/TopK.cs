using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>Row-wise top-k (descending, ties to the lower index). Same contract as <see cref="ScalarTopK"/>.</summary>
public static class TopK
{
    public static void Select(ReadOnlySpan<float> x, int rows, int cols, int k, Span<int> indices, Span<float> values)
        => ScalarTopK.Select(x, rows, cols, k, indices, values);
}
