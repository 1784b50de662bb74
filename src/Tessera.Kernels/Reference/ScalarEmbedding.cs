namespace Tessera.Kernels.Reference;

/// <summary>Scalar twin of <see cref="Embedding"/>: row gather and its adjoint, scatter-add.</summary>
public static class ScalarEmbedding
{
    /// <summary>output[i, :] = table[ids[i], :]. Rows of <paramref name="dim"/> floats.</summary>
    public static void Gather(ReadOnlySpan<float> table, ReadOnlySpan<int> ids, Span<float> output, int dim)
    {
        int rows = table.Length / Math.Max(dim, 1);
        for (int i = 0; i < ids.Length; i++)
        {
            EmbeddingChecks.Id(ids[i], i, rows);
            table.Slice(ids[i] * dim, dim).CopyTo(output.Slice(i * dim, dim));
        }
    }

    /// <summary>dTable[ids[i], :] += dOutput[i, :] in order of i (so results are deterministic).</summary>
    public static void ScatterAdd(ReadOnlySpan<float> dOutput, ReadOnlySpan<int> ids, Span<float> dTable, int dim)
    {
        int rows = dTable.Length / Math.Max(dim, 1);
        for (int i = 0; i < ids.Length; i++)
        {
            EmbeddingChecks.Id(ids[i], i, rows);
            for (int j = 0; j < dim; j++) dTable[ids[i] * dim + j] += dOutput[i * dim + j];
        }
    }
}
