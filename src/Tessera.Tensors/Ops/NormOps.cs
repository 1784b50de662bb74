namespace Tessera.Tensors;

/// <summary>RMSNorm over the last axis with a learned gain (Llama layout; Gemma's 1 + w through the offset).</summary>
public sealed partial class Graph
{
    /// <summary>
    /// y = x / sqrt(mean(x²) + eps) ⊙ (w + <paramref name="gainOffset"/>), with x (…, D) and w (D): every
    /// run of D elements is one row, so a (N, H·Dh) activation reshaped to (N·H, Dh) is normed per head
    /// (QK-norm). Gemma stores its gain as w with offset 1. Saves 1/rms per row for backward.
    /// </summary>
    public Tensor RmsNorm(Tensor x, Tensor weight, float eps = 1e-5f, float gainOffset = 0f)
    {
        const string op = "RmsNorm";
        Usable(op, x, weight);
        if (x.Rank < 1 || weight.Rank != 1 || weight.Dim(0) != x.Dim(-1))
            throw new ArgumentException($"{op}: weight {Describe(weight)} must be ({(x.Rank < 1 ? "?" : x.Dim(-1))}) to match input {Describe(x)}.");
        int dim = weight.Dim(0), rows = dim == 0 ? 0 : x.Length / dim;
        var y = NewOutput(op, x.Shape, false, x, weight);
        var rstd = NewSaved(op, [rows]);
        Kernels.RmsNorm.Forward(x.AsSpan(op), weight.AsSpan(op), y.AsSpan(op), rstd.AsSpan(op), rows, dim, eps, gainOffset);
        Record(op, y, [x, weight], () =>
        {
            var dx = BeginGrad(x, out bool sx);
            // dWeight accumulates in the kernel, so a parameter's own gradient can be passed straight in.
            var dw = weight.RequiresGrad ? null : Tensor.Zeros(weight.Shape);
            var dwSpan = weight.RequiresGrad ? GradSpan(weight) : dw!.AsSpan(op);
            Kernels.RmsNorm.Backward(x.AsSpan(op), weight.AsSpan(op), rstd.AsSpan(op), y.Grad!.AsSpan(op), dx.AsSpan(op), dwSpan, rows, dim, gainOffset);
            EndGrad(x, dx, sx);
            dw?.Dispose();
        });
        return y;
    }
}
