using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>Embedding gather and scatter-add. Same contract as <see cref="ScalarEmbedding"/>.</summary>
public static class Embedding
{
    public static void Gather(ReadOnlySpan<float> table, ReadOnlySpan<int> ids, Span<float> output, int dim) => ScalarEmbedding.Gather(table, ids, output, dim);
    public static void ScatterAdd(ReadOnlySpan<float> dOutput, ReadOnlySpan<int> ids, Span<float> dTable, int dim) => ScalarEmbedding.ScatterAdd(dOutput, ids, dTable, dim);
}
