namespace Tessera.Tensors;

/// <summary>Rotary position embedding as a graph op.</summary>
public sealed partial class Graph
{
    /// <summary>
    /// Rotates x (B, T, H, D) by position (token t has position <paramref name="positionOffset"/> + t).
    /// A rotation is orthogonal, so the backward pass is the inverse rotation of dy.
    /// </summary>
    public Tensor Rope(Tensor x, RopeTable table, int positionOffset = 0)
    {
        const string op = "Rope";
        Usable(op, x);
        if (x.Rank != 4 || x.Dim(3) != table.HeadDim)
            throw new ArgumentException($"{op}: input {Describe(x)} must be (B, T, H, D) with D = {table.HeadDim} (the table's head dimension).");
        int b = x.Dim(0), t = x.Dim(1), h = x.Dim(2), d = x.Dim(3);
        if (positionOffset < 0 || positionOffset + t > table.MaxPositions)
            throw new ArgumentException($"{op}: positions [{positionOffset}, {positionOffset + t}) of input {Describe(x)} exceed the table's {table.MaxPositions}.");
        var y = NewOutput(op, x.Shape, false, x);
        x.AsSpan(op).CopyTo(y.AsSpan(op));
        Kernels.Rope.Apply(y.AsSpan(op), b, t, h, d, table.Cos, table.Sin, positionOffset);
        Record(op, y, [x], () =>
        {
            var dx = BeginGrad(x, out bool scratch);
            y.Grad!.AsSpan(op).CopyTo(dx.AsSpan(op));
            Kernels.Rope.Apply(dx.AsSpan(op), b, t, h, d, table.Cos, table.Sin, positionOffset, inverse: true);
            EndGrad(x, dx, scratch);
        });
        return y;
    }
}
