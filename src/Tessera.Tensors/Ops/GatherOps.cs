namespace Tessera.Tensors;

/// <summary>
/// Row and column gathers and the weighted row scatter: the index ops behind embedding lookup
/// and token→expert routing. Every backward is a scatter-add in index order, so it is deterministic.
/// </summary>
public sealed partial class Graph
{
    /// <summary>Embedding lookup: table (V, D), ids (n) → (n, D). Same op as <see cref="GatherRows"/>.</summary>
    public Tensor Embedding(Tensor table, ReadOnlySpan<int> ids) => GatherRowsCore("Embedding", table, ids);

    /// <summary>y[i, :] = x[rows[i], :] with x (N, D) → y (rows.Length, D). Backward scatter-adds dy into dx.</summary>
    public Tensor GatherRows(Tensor x, ReadOnlySpan<int> rows) => GatherRowsCore("GatherRows", x, rows);

    Tensor GatherRowsCore(string op, Tensor x, ReadOnlySpan<int> rows)
    {
        Usable(op, x);
        if (x.Rank != 2) throw new ArgumentException($"{op}: source {Describe(x)} must be 2-D (rows, dim).");
        int dim = x.Dim(1);
        var ids = rows.ToArray(); // the caller may reuse its buffer before backward runs
        var y = NewOutput(op, [ids.Length, dim], false, x);
        Kernels.Embedding.Gather(x.AsSpan(op), ids, y.AsSpan(op), dim);
        Record(op, y, [x], () => Kernels.Embedding.ScatterAdd(y.Grad!.AsSpan(op), ids, GradSpan(x), dim));
        return y;
    }

    /// <summary>
    /// y[r, j] = x[r, cols[r·k + j]] with x (N, C) → y (N, k); e.g. the router probabilities of the
    /// selected experts. Backward adds dy back into the selected columns.
    /// </summary>
    public Tensor GatherColumns(Tensor x, ReadOnlySpan<int> cols, int k)
    {
        const string op = "GatherColumns";
        Usable(op, x);
        if (x.Rank != 2 || k < 0 || cols.Length != x.Dim(0) * k)
            throw new ArgumentException($"{op}: source {Describe(x)} must be (N, C) with {(x.Rank == 2 ? x.Dim(0) : 0)}·k = {cols.Length} column ids (k = {k}).");
        int n = x.Dim(0), c = x.Dim(1);
        var idx = cols.ToArray();
        for (int i = 0; i < idx.Length; i++)
            if ((uint)idx[i] >= (uint)c) throw new ArgumentOutOfRangeException(nameof(cols), idx[i], $"{op}: column id {idx[i]} at {i} is outside [0, {c}) of {Describe(x)}.");
        var y = NewOutput(op, [n, k], false, x);
        var xs = x.AsSpan(op); var ys = y.AsSpan(op);
        for (int i = 0; i < idx.Length; i++) ys[i] = xs[i / k * c + idx[i]];
        Record(op, y, [x], () =>
        {
            var dx = GradSpan(x); var dy = y.Grad!.AsSpan(op);
            for (int i = 0; i < idx.Length; i++) dx[i / k * c + idx[i]] += dy[i];
        });
        return y;
    }

    /// <summary>
    /// Divides each row by its sum: y = x / Σx (rows along the last axis). With x the top-k router
    /// probabilities this is the Mixtral gate renormalisation. Backward: dx = (dy − Σ dy⊙y) / Σx.
    /// </summary>
    public Tensor NormalizeRows(Tensor x)
    {
        const string op = "NormalizeRows";
        Usable(op, x);
        if (x.Rank < 1) throw new ArgumentException($"{op}: input {Describe(x)} needs at least one axis.");
        int cols = x.Dim(-1), rows = cols == 0 ? 0 : x.Length / cols;
        var y = NewOutput(op, x.Shape, false, x);
        var sums = NewSaved(op, [rows]);
        var xs = x.AsSpan(op); var ys = y.AsSpan(op); var ss = sums.AsSpan(op);
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int j = 0; j < cols; j++) s += xs[r * cols + j];
            ss[r] = (float)s;
            for (int j = 0; j < cols; j++) ys[r * cols + j] = (float)(xs[r * cols + j] / s);
        }
        Record(op, y, [x], () =>
        {
            var dx = GradSpan(x); var dy = y.Grad!.AsSpan(op); var yv = y.AsSpan(op); var sv = sums.AsSpan(op);
            for (int r = 0; r < rows; r++)
            {
                double dot = 0;
                for (int j = 0; j < cols; j++) dot += (double)dy[r * cols + j] * yv[r * cols + j];
                for (int j = 0; j < cols; j++) dx[r * cols + j] += (float)((dy[r * cols + j] - dot) / sv[r]);
            }
        });
        return y;
    }

    /// <summary>
    /// The weighted scatter that combines expert outputs: y (outRows, D) starts at zero and, for
    /// i in order, y[rows[i], :] += w[weightIndex[i]] · src[i, :], where src is (M, D) and w is any
    /// tensor read flat (e.g. the (N, k) gates). Backward: dsrc[i] = w·dy[rows[i]],
    /// dw[weightIndex[i]] += dy[rows[i]]·src[i].
    /// </summary>
    public Tensor ScatterRowsWeighted(Tensor src, Tensor weights, ReadOnlySpan<int> weightIndex, ReadOnlySpan<int> rows, int outRows)
    {
        const string op = "ScatterRowsWeighted";
        Usable(op, src, weights);
        if (src.Rank != 2 || rows.Length != src.Dim(0) || weightIndex.Length != src.Dim(0))
            throw new ArgumentException($"{op}: source {Describe(src)} must be (M, D) with M = {rows.Length} target rows and {weightIndex.Length} weight ids.");
        int m = src.Dim(0), d = src.Dim(1);
        var target = rows.ToArray(); var wi = weightIndex.ToArray();
        for (int i = 0; i < m; i++)
        {
            if ((uint)target[i] >= (uint)outRows) throw new ArgumentOutOfRangeException(nameof(rows), target[i], $"{op}: target row {target[i]} at {i} is outside [0, {outRows}).");
            if ((uint)wi[i] >= (uint)weights.Length) throw new ArgumentOutOfRangeException(nameof(weightIndex), wi[i], $"{op}: weight id {wi[i]} at {i} is outside {Describe(weights)}.");
        }
        var y = NewOutput(op, [outRows, d], true, src, weights);
        {
            var s = src.AsSpan(op); var w = weights.AsSpan(op); var ys = y.AsSpan(op);
            for (int i = 0; i < m; i++)
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(s.Slice(i * d, d), w[wi[i]], ys.Slice(target[i] * d, d), ys.Slice(target[i] * d, d));
        }
        Record(op, y, [src, weights], () =>
        {
            var dy = y.Grad!.AsSpan(op); var s = src.AsSpan(op); var w = weights.AsSpan(op);
            if (src.RequiresGrad)
            {
                var ds = GradSpan(src);
                for (int i = 0; i < m; i++)
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(dy.Slice(target[i] * d, d), w[wi[i]], ds.Slice(i * d, d), ds.Slice(i * d, d));
            }
            if (weights.RequiresGrad)
            {
                var dw = GradSpan(weights);
                for (int i = 0; i < m; i++)
                    dw[wi[i]] += (float)Kernels.DoubleSums.Dot(dy.Slice(target[i] * d, d), s.Slice(i * d, d));
            }
        });
        return y;
    }
}
