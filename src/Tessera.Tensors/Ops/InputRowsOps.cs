namespace Tessera.Tensors;

/// <summary>
/// The model's input rows: each row is either a token id (a row of the embedding table) or a
/// vector supplied by the caller (an image patch, a retrieved chunk, a soft prompt).
/// </summary>
public sealed partial class Graph
{
    /// <summary>
    /// y (n, D): row i = table[ids[i]] when ids[i] ≥ 0, else the next unused row of
    /// <paramref name="vectors"/> (M, D), in order; exactly M ids must be negative. Rows are copied,
    /// so a vector equal to an embedding row gives a bit-identical y. Backward scatter-adds dy into
    /// the table rows (in row order, like <see cref="Embedding"/>) and copies it into the vectors' gradient.
    /// </summary>
    public Tensor EmbedInputs(Tensor table, ReadOnlySpan<int> ids, Tensor? vectors)
    {
        const string op = "EmbedInputs";
        if (vectors is null) return Embedding(table, ids);
        Usable(op, table); Usable(op, vectors);
        if (table.Rank != 2 || vectors.Rank != 2 || vectors.Dim(1) != table.Dim(1))
            throw new ArgumentException($"{op}: table {Describe(table)} and vectors {Describe(vectors)} must be (V, D) and (M, D).");
        int dim = table.Dim(1), vocab = table.Dim(0), m = 0;
        var idx = ids.ToArray();
        var vectorRow = new int[idx.Length];
        for (int i = 0; i < idx.Length; i++)
        {
            if (idx[i] >= vocab) throw new ArgumentOutOfRangeException(nameof(ids), idx[i], $"{op}: token id {idx[i]} at row {i} is outside the vocabulary of {vocab}.");
            vectorRow[i] = idx[i] < 0 ? m++ : -1;
        }
        if (m != vectors.Dim(0)) throw new ArgumentException($"{op}: {m} rows ask for a vector but {Describe(vectors)} holds {vectors.Dim(0)}.");
        var y = NewOutput(op, [idx.Length, dim], false, table, vectors);
        var ys = y.AsSpan(op); var ts = table.AsSpan(op); var vs = vectors.AsSpan(op);
        for (int i = 0; i < idx.Length; i++)
            (idx[i] >= 0 ? ts.Slice(idx[i] * dim, dim) : vs.Slice(vectorRow[i] * dim, dim)).CopyTo(ys.Slice(i * dim, dim));
        Record(op, y, [table, vectors], () =>
        {
            var dy = y.Grad!.AsSpan(op);
            var dt = table.RequiresGrad ? GradSpan(table) : default;
            var dv = vectors.RequiresGrad ? GradSpan(vectors) : default;
            for (int i = 0; i < idx.Length; i++)
            {
                var row = dy.Slice(i * dim, dim);
                if (idx[i] >= 0) { if (table.RequiresGrad) System.Numerics.Tensors.TensorPrimitives.Add(dt.Slice(idx[i] * dim, dim), row, dt.Slice(idx[i] * dim, dim)); }
                else if (vectors.RequiresGrad) row.CopyTo(dv.Slice(vectorRow[i] * dim, dim));
            }
        });
        return y;
    }
}
