namespace Tessera.Tensors;

/// <summary>
/// Reshape and permute. Reshape is a zero-copy view with its own gradient; Permute materialises a
/// contiguous copy, because every kernel downstream wants contiguous rows.
/// </summary>
public sealed partial class Graph
{
    /// <summary>Same elements, new shape (one dimension may be -1). The output shares the input's buffer.</summary>
    public Tensor Reshape(Tensor x, ReadOnlySpan<int> shape)
    {
        const string op = "Reshape";
        Usable(op, x);
        var s = x.ResolveShape(op, shape);
        var y = x.View(s);
        y.Name = op;
        owned.Add(y); // disposing a view never frees the shared buffer
        if (IsRecording && x.RequiresGrad) y.RequiresGrad = true;
        Record(op, y, [x], () => AddInto(x, y.Grad!.AsSpan(op)));
        return y;
    }

    /// <summary>
    /// Reorders axes into a contiguous copy: output axis i is input axis perm[i]
    /// (e.g. perm (0, 2, 1, 3) turns (B, T, H, D) into (B, H, T, D)).
    /// </summary>
    public unsafe Tensor Permute(Tensor x, ReadOnlySpan<int> perm)
    {
        const string op = "Permute";
        ThrowIfDisposed(op);
        x.ThrowIfUnusable(op);
        x.CheckPermutation(op, perm);
        var p = perm.ToArray();
        var shape = new int[p.Length]; var strides = new int[p.Length];
        for (int i = 0; i < p.Length; i++) { shape[i] = x.Shape[p[i]]; strides[i] = x.Strides[p[i]]; }
        var y = NewOutput(op, shape, false, x);
        StridedCopy.Copy(x.Pointer(op), shape, strides, y.Pointer(op), accumulate: false);
        Record(op, y, [x], () =>
        {
            // dy is laid out in the output's axis order; read it back through the inverse permutation.
            var inv = new int[p.Length];
            for (int i = 0; i < p.Length; i++) inv[p[i]] = i;
            var yStrides = Tensor.ContiguousStrides(shape);
            var srcStrides = new int[p.Length];
            for (int i = 0; i < p.Length; i++) srcStrides[i] = yStrides[inv[i]];
            GradSpan(x);
            StridedCopy.Copy(y.Grad!.Pointer(op), x.Shape, srcStrides, x.Grad!.Pointer(op), accumulate: true);
        });
        return y;
    }
}
