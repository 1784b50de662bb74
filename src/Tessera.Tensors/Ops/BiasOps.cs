using System.Numerics.Tensors;

namespace Tessera.Tensors;

/// <summary>A bias added to every row (Qwen2's q/k/v projections: Linear then AddBias).</summary>
public sealed partial class Graph
{
    /// <summary>
    /// y = x + b per row, with x (…, F) and b (F). Backward: dx += dy; db += Σ_rows dy, summed row by
    /// row in order, so the bits do not depend on threads.
    /// </summary>
    public Tensor AddBias(Tensor x, Tensor bias)
    {
        const string op = "AddBias";
        Usable(op, x, bias);
        if (x.Rank < 1 || bias.Rank != 1 || bias.Dim(0) != x.Dim(-1))
            throw new ArgumentException($"{op}: bias {Describe(bias)} must be ({(x.Rank < 1 ? "?" : x.Dim(-1))}) to match input {Describe(x)}.");
        int f = bias.Dim(0), rows = f == 0 ? 0 : x.Length / f;
        var y = NewOutput(op, x.Shape, false, x, bias);
        var xs = x.AsSpan(op); var ys = y.AsSpan(op); var bs = bias.AsSpan(op);
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(xs.Slice(r * f, f), bs, ys.Slice(r * f, f));
        Record(op, y, [x, bias], () =>
        {
            var dy = y.Grad!.AsSpan(op);
            if (x.RequiresGrad) AddInto(x, dy);
            if (bias.RequiresGrad)
            {
                var db = GradSpan(bias);
                for (int r = 0; r < rows; r++) TensorPrimitives.Add(db, dy.Slice(r * f, f), db);
            }
        });
        return y;
    }
}
