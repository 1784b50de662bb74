using System.Numerics.Tensors;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>Embedding gather and scatter-add. Same contract as <see cref="ScalarEmbedding"/>.</summary>
/// <remarks>
/// All ids are validated before anything is written. Gather splits ids over
/// <see cref="WorkerPool.Shared"/>; scatter-add splits the embedding columns instead, so each
/// dTable element still receives its additions in order of position, exactly as the twin does
/// (bitwise-equal results for any thread count, repeated ids included).
/// </remarks>
public static class Embedding
{
    /// <summary>output[i, :] = table[ids[i], :]. Rows of <paramref name="dim"/> floats.</summary>
    public static unsafe void Gather(ReadOnlySpan<float> table, ReadOnlySpan<int> ids, Span<float> output, int dim)
    {
        const string op = "Embedding.Gather";
        SpanChecks.NonNegative(dim, op, "dim");
        SpanChecks.Length(output.Length, (long)ids.Length * dim, op, "output", ids.Length, dim);
        int rows = table.Length / Math.Max(dim, 1);
        CheckIds(ids, rows);
        fixed (float* pt = table, po = output)
        fixed (int* pi = ids)
            RowParallel.Run(new GatherRows(pt, pi, po, dim), ids.Length, (long)ids.Length * dim);
    }

    /// <summary>dTable[ids[i], :] += dOutput[i, :] in order of i (so results are deterministic).</summary>
    public static unsafe void ScatterAdd(ReadOnlySpan<float> dOutput, ReadOnlySpan<int> ids, Span<float> dTable, int dim)
    {
        const string op = "Embedding.ScatterAdd";
        SpanChecks.NonNegative(dim, op, "dim");
        SpanChecks.Length(dOutput.Length, (long)ids.Length * dim, op, "dOutput", ids.Length, dim);
        int rows = dTable.Length / Math.Max(dim, 1);
        CheckIds(ids, rows);
        if (ids.Length == 0) return;
        fixed (float* pd = dOutput, pt = dTable)
        fixed (int* pi = ids)
            RowParallel.Run(new ScatterColumns(pd, pi, pt, ids.Length, dim), dim, 2L * ids.Length * dim);
    }

    static void CheckIds(ReadOnlySpan<int> ids, int rows)
    {
        for (int i = 0; i < ids.Length; i++) EmbeddingChecks.Id(ids[i], i, rows);
    }

    unsafe readonly struct GatherRows(float* table, int* ids, float* output, int dim) : IRowRange
    {
        public void Run(int start, int end)
        {
            for (int i = start; i < end; i++)
                new ReadOnlySpan<float>(table + (long)ids[i] * dim, dim).CopyTo(new Span<float>(output + (long)i * dim, dim));
        }
    }

    unsafe readonly struct ScatterColumns(float* dOutput, int* ids, float* dTable, int count, int dim) : IRowRange
    {
        public void Run(int start, int end)
        {
            int w = end - start;
            for (int i = 0; i < count; i++)
            {
                var dst = new Span<float>(dTable + (long)ids[i] * dim + start, w);
                TensorPrimitives.Add(dst, new ReadOnlySpan<float>(dOutput + (long)i * dim + start, w), dst);
            }
        }
    }
}
