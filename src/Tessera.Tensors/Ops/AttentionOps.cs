namespace Tessera.Tensors;

/// <summary>Causal (optionally sliding-window or prefix-LM) scaled-dot-product attention with grouped-query heads.</summary>
public sealed partial class Graph
{
    /// <summary>
    /// o = softmax(q·kᵀ·scale + causal mask)·v with q (B, H, T, D) and k, v (B, Hkv, T, D); query head
    /// h reads key/value head h / (H / Hkv). <paramref name="scale"/> defaults to 1/√D.
    /// <paramref name="window"/> &gt; 0 limits each query to the last <c>window</c> keys.
    /// <paramref name="softCap"/> &gt; 0 replaces each score s by softCap·tanh(s/softCap) before the
    /// mask and softmax (Gemma 2); 0 means none. <paramref name="prefix"/> (empty, or one length per
    /// batch row) makes row b's first prefix[b] positions see each other both ways (prefix-LM).
    /// </summary>
    public Tensor Attention(Tensor q, Tensor k, Tensor v, float? scale = null, int window = 0, float softCap = 0f, ReadOnlySpan<int> prefix = default)
    {
        const string op = "Attention";
        Usable(op, q, k, v);
        if (q.Rank != 4 || k.Rank != 4 || !k.Shape.SequenceEqual(v.Shape) || k.Dim(0) != q.Dim(0)
            || k.Dim(2) != q.Dim(2) || k.Dim(3) != q.Dim(3) || k.Dim(1) == 0 || q.Dim(1) % k.Dim(1) != 0)
            throw new ArgumentException(
                $"{op}: expected q (B, H, T, D) and k, v (B, Hkv, T, D) with H a multiple of Hkv; got q {q.ShapeString}, k {k.ShapeString}, v {v.ShapeString}.");
        int b = q.Dim(0), h = q.Dim(1), hkv = k.Dim(1), t = q.Dim(2), d = q.Dim(3);
        float s = scale ?? 1f / MathF.Sqrt(d);
        var o = NewOutput(op, q.Shape, false, q, k, v);
        var lse = NewSaved(op, [b, h, t]);
        int[]? pre = prefix.IsEmpty ? null : prefix.ToArray();
        Kernels.Attention.Forward(q.AsSpan(op), k.AsSpan(op), v.AsSpan(op), o.AsSpan(op), lse.AsSpan(op), b, h, hkv, t, d, s, window, softCap, pre);
        Record(op, o, [q, k, v], () =>
        {
            var dq = BeginGrad(q, out bool sq);
            var dk = BeginGrad(k, out bool sk);
            var dv = BeginGrad(v, out bool sv);
            Kernels.Attention.Backward(q.AsSpan(op), k.AsSpan(op), v.AsSpan(op), o.AsSpan(op), lse.AsSpan(op), o.Grad!.AsSpan(op),
                dq.AsSpan(op), dk.AsSpan(op), dv.AsSpan(op), b, h, hkv, t, d, s, window, softCap, pre);
            EndGrad(q, dq, sq);
            EndGrad(k, dk, sk);
            EndGrad(v, dv, sv);
        }, AttentionFlops(b, h, t, d, window));
        return o;
    }

    /// <summary>Model FLOPs of the forward: q·kᵀ and p·v over the keys each query sees (causal, optionally windowed).</summary>
    static double AttentionFlops(int b, int h, int t, int d, int window)
    {
        double keys = window > 0 && window < t ? (double)window * t - window * (window - 1.0) / 2 : t * (t + 1.0) / 2;
        return 4.0 * b * h * d * keys;
    }
}
