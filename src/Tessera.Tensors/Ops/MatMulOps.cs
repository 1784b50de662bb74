using Tessera.Kernels;

namespace Tessera.Tensors;

/// <summary>Matrix products: Linear (x·Wᵀ, the Llama/HF weight layout) and MatMul with transpose flags, 2-D or batched 3-D.</summary>
public sealed partial class Graph
{
    /// <summary>
    /// y = x·Wᵀ with x (…, in) and W (out, in) → y (…, out). Backward: dx += dy·W, dW += dyᵀ·x.
    /// </summary>
    public Tensor Linear(Tensor x, Tensor weight)
    {
        const string op = "Linear";
        Usable(op, x, weight);
        if (x.Rank < 1 || weight.Rank != 2 || weight.Dim(1) != x.Dim(-1))
            throw new ArgumentException($"{op}: input {Describe(x)} needs a weight of shape (out, {(x.Rank < 1 ? "?" : x.Dim(-1))}), got {Describe(weight)}.");
        int inF = weight.Dim(1), outF = weight.Dim(0), rows = inF == 0 ? 0 : x.Length / inF;
        var shape = x.Shape.ToArray();
        shape[^1] = outF;
        var y = NewOutput(op, shape, false, x, weight);
        Gemm.Sgemm(false, true, rows, outF, inF, x.AsSpan(op), inF, weight.AsSpan(op), inF, y.AsSpan(op), outF);
        Record(op, y, [x, weight], () =>
        {
            var dy = y.Grad!.AsSpan(op);
            if (x.RequiresGrad)
            {
                var dx = GradTarget(x, out bool add);
                Gemm.Sgemm(false, false, rows, inF, outF, dy, outF, weight.AsSpan(op), inF, dx, inF, accumulate: add);
            }
            if (weight.RequiresGrad)
            {
                var dw = GradTarget(weight, out bool add);
                Gemm.Sgemm(true, false, outF, inF, rows, dy, outF, x.AsSpan(op), inF, dw, inF, accumulate: add);
            }
        }, 2.0 * rows * outF * inF);
        return y;
    }

    /// <summary>
    /// C = op(A)·op(B) for 2-D operands, or batch-wise for 3-D operands with equal leading size.
    /// op(A) is (M, K): A is (M, K), or (K, M) when <paramref name="transA"/>; likewise op(B) is (K, N).
    /// </summary>
    public Tensor MatMul(Tensor a, Tensor b, bool transA = false, bool transB = false)
    {
        const string op = "MatMul";
        Usable(op, a, b);
        if (a.Rank != b.Rank || a.Rank is not (2 or 3) || (a.Rank == 3 && a.Dim(0) != b.Dim(0)))
            throw new ArgumentException($"{op}: operands must both be 2-D or both 3-D with equal batch, got {Describe(a)} and {Describe(b)}.");
        int batch = a.Rank == 3 ? a.Dim(0) : 1;
        int ar = a.Dim(-2), ac = a.Dim(-1), br = b.Dim(-2), bc = b.Dim(-1);
        int m = transA ? ac : ar, k = transA ? ar : ac, kb = transB ? bc : br, n = transB ? br : bc;
        if (k != kb)
            throw new ArgumentException($"{op}: inner sizes differ: op(A) of {Describe(a)} (transA={transA}) is ({m}, {k}) but op(B) of {Describe(b)} (transB={transB}) is ({kb}, {n}).");
        int[] shape = a.Rank == 3 ? [batch, m, n] : [m, n];
        var c = NewOutput(op, shape, false, a, b);
        int sa = ar * ac, sb = br * bc, sc = m * n;
        {
            var A = a.AsSpan(op); var B = b.AsSpan(op); var C = c.AsSpan(op);
            for (int i = 0; i < batch; i++)
                Gemm.Sgemm(transA, transB, m, n, k, A.Slice(i * sa, sa), ac, B.Slice(i * sb, sb), bc, C.Slice(i * sc, sc), n);
        }
        Record(op, c, [a, b], () =>
        {
            var dC = c.Grad!.AsSpan(op);
            var A = a.AsSpan(op); var B = b.AsSpan(op);
            for (int i = 0; i < batch; i++)
            {
                var dc = dC.Slice(i * sc, sc);
                // dop(A) = dC·op(B)ᵀ (M, K); stored transposed when transA.
                if (a.RequiresGrad)
                {
                    var da = GradSpan(a).Slice(i * sa, sa);
                    if (!transA) Gemm.Sgemm(false, !transB, m, k, n, dc, n, B.Slice(i * sb, sb), bc, da, ac, accumulate: true);
                    else Gemm.Sgemm(transB, true, k, m, n, B.Slice(i * sb, sb), bc, dc, n, da, ac, accumulate: true);
                }
                // dop(B) = op(A)ᵀ·dC (K, N); stored transposed when transB.
                if (b.RequiresGrad)
                {
                    var db = GradSpan(b).Slice(i * sb, sb);
                    if (!transB) Gemm.Sgemm(!transA, false, k, n, m, A.Slice(i * sa, sa), ac, dc, n, db, bc, accumulate: true);
                    else Gemm.Sgemm(true, transA, n, k, m, dc, n, A.Slice(i * sa, sa), ac, db, bc, accumulate: true);
                }
            }
        }, 2.0 * batch * m * n * k);
        return c;
    }
}
