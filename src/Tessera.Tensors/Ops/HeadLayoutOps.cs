namespace Tessera.Tensors;

/// <summary>
/// The attention head layout changes, fused with RoPE: projections come out token-major
/// (B·T, H·D) and the attention kernel wants head-major (B, H, T, D). Doing the reorder, the
/// rotation and the reshape as one op saves a full copy of q and k each way, compared with
/// Reshape + Rope + Permute, and gives the same numbers (the same RoPE kernel, plain copies).
/// </summary>
public sealed partial class Graph
{
    /// <summary>
    /// x (B·T, H·D) read as (B, T, H, D) → y (B, H, T, D); with <paramref name="rope"/>, each head
    /// vector of token t is rotated to position <paramref name="positionOffset"/> + t (as
    /// <see cref="Rope"/> does). Backward: the inverse rotation of dy, reordered back.
    /// </summary>
    public unsafe Tensor SplitHeads(Tensor x, int batch, int seq, int heads, RopeTable? rope = null, int positionOffset = 0)
    {
        const string op = "SplitHeads";
        Usable(op, x);
        if (batch < 1 || seq < 1 || heads < 1 || x.Length % ((long)batch * seq * heads) != 0)
            throw new ArgumentException($"{op}: input {Describe(x)} does not hold (B={batch}, T={seq}, H={heads}, D) elements.");
        int d = x.Length / (batch * seq * heads);
        if (rope is not null && (d != rope.HeadDim || positionOffset < 0 || positionOffset + seq > rope.MaxPositions))
            throw new ArgumentException($"{op}: head dim {d} and positions [{positionOffset}, {positionOffset + seq}) do not fit the RoPE table (head dim {rope.HeadDim}, {rope.MaxPositions} positions).");
        var y = NewOutput(op, [batch, heads, seq, d], false, x);
        SwapMiddleAxes(x.Pointer(op), y.Pointer(op), batch, seq, heads, d, accumulate: false);
        // (B, H, T, D) is (B·H, T, 1, D) to the RoPE kernel: position = t either way.
        if (rope is not null) Kernels.Rope.Apply(y.AsSpan(op), batch * heads, seq, 1, d, rope.Cos, rope.Sin, positionOffset);
        Record(op, y, [x], () =>
        {
            var dy = y.Grad!;
            if (rope is null)
            {
                var dx = GradTarget(x, out bool add);
                fixed (float* pdx = dx) SwapMiddleAxes(dy.Pointer(op), pdx, batch, heads, seq, d, add);
                return;
            }
            var g = GradTarget(x, out bool accumulate);
            if (!accumulate)
            {
                // Reorder into dx, then rotate back in place there ((B, T, H, D): position = t).
                fixed (float* pg = g) SwapMiddleAxes(dy.Pointer(op), pg, batch, heads, seq, d, accumulate: false);
                Kernels.Rope.Apply(g, batch, seq, heads, d, rope.Cos, rope.Sin, positionOffset, inverse: true);
                return;
            }
            // dx already holds a gradient: rotate back on a scratch copy of dy, then add it in reordered.
            using var r = Tensor.Empty(y.Shape, op + ".scratch");
            dy.AsSpan(op).CopyTo(r.AsSpan(op));
            Kernels.Rope.Apply(r.AsSpan(op), batch * heads, seq, 1, d, rope.Cos, rope.Sin, positionOffset, inverse: true);
            fixed (float* pg = g) SwapMiddleAxes(r.Pointer(op), pg, batch, heads, seq, d, accumulate: true);
        });
        return y;
    }

    /// <summary>o (B, H, T, D) → y (B·T, H·D), the token-major layout the output projection reads.</summary>
    public unsafe Tensor MergeHeads(Tensor o)
    {
        const string op = "MergeHeads";
        Usable(op, o);
        if (o.Rank != 4) throw new ArgumentException($"{op}: input {Describe(o)} must be (B, H, T, D).");
        int b = o.Dim(0), h = o.Dim(1), t = o.Dim(2), d = o.Dim(3);
        var y = NewOutput(op, [b * t, h * d], false, o);
        SwapMiddleAxes(o.Pointer(op), y.Pointer(op), b, h, t, d, accumulate: false);
        Record(op, y, [o], () =>
        {
            var dx = GradTarget(o, out bool add);
            fixed (float* pdx = dx) SwapMiddleAxes(y.Grad!.Pointer(op), pdx, b, t, h, d, add);
        });
        return y;
    }

    /// <summary>
    /// dst (B, A2, A1, D) = src (B, A1, A2, D), or += when <paramref name="accumulate"/>: rows of D
    /// floats moved whole, in parallel over the destination's (B, A2) blocks.
    /// </summary>
    static unsafe void SwapMiddleAxes(float* src, float* dst, int b, int a1, int a2, int d, bool accumulate)
    {
        long srcPtr = (long)src, dstPtr = (long)dst;
        ForTokens(b * a2, (long)b * a1 * a2 * d, (start, end) =>
        {
            float* s0 = (float*)srcPtr; float* d0 = (float*)dstPtr;
            for (int block = start; block < end; block++)
            {
                int bi = block / a2, j = block % a2;
                float* to = d0 + (long)block * a1 * d;
                float* from = s0 + ((long)bi * a1 * a2 + j) * d;
                for (int i = 0; i < a1; i++)
                {
                    var row = new ReadOnlySpan<float>(from + (long)i * a2 * d, d);
                    var target = new Span<float>(to + (long)i * d, d);
                    if (accumulate) System.Numerics.Tensors.TensorPrimitives.Add(target, row, target);
                    else row.CopyTo(target);
                }
            }
        });
    }
}
