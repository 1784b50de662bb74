namespace Tessera.Kernels.Reference;

/// <summary>
/// Scalar twin of <see cref="Attention"/>: causal scaled-dot-product attention materialising the
/// full T×T score matrix per head. Layout q, o: (B, Hq, T, D); k, v: (B, Hkv, T, D). Query head h
/// reads key/value head h / (Hq / Hkv) (grouped-query attention). With <c>window</c> &gt; 0 query i
/// sees keys j with i − window &lt; j ≤ i; with 0 it sees all j ≤ i. With <c>softCap</c> &gt; 0 each
/// score s = q·k·scale becomes softCap·tanh(s / softCap) before the mask (HF Gemma 2). With a
/// prefix length P_b for batch row b, query i also sees the keys j &lt; P_b (prefix-LM: bidirectional
/// over the prefix, causal after it), so its keys run from lo to max(i, P_b − 1).
/// </summary>
public static class ScalarAttention
{
    /// <summary>o = softmax(q·kᵀ·scale + mask)·v; lse (B, Hq, T) keeps each row's log-sum-exp for backward.</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        Span<float> o, Span<float> lse, int batch, int heads, int kvHeads, int seq, int headDim, float scale, int window = 0, float softCap = 0f,
        ReadOnlySpan<int> prefix = default)
    {
        AttentionChecks.Check(q.Length, k.Length, v.Length, o.Length, lse.Length, batch, heads, kvHeads, seq, headDim, window);
        AttentionChecks.SoftCap(softCap);
        AttentionChecks.Prefix(prefix, batch, seq);
        var p = new double[seq];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            {
                int kh = h / (heads / kvHeads);
                int qo = (b * heads + h) * seq * headDim, ko = (b * kvHeads + kh) * seq * headDim;
                for (int i = 0; i < seq; i++)
                {
                    int lo = window > 0 ? Math.Max(0, i - window + 1) : 0, hi = Math.Max(i, (prefix.IsEmpty ? 0 : prefix[b]) - 1);
                    double max = double.NegativeInfinity;
                    for (int j = lo; j <= hi; j++)
                    {
                        double s = 0;
                        for (int d = 0; d < headDim; d++) s += (double)q[qo + i * headDim + d] * k[ko + j * headDim + d];
                        p[j] = softCap > 0 ? softCap * Math.Tanh(s * scale / softCap) : s * scale;
                        max = Math.Max(max, p[j]);
                    }
                    double sum = 0;
                    for (int j = lo; j <= hi; j++) { p[j] = Math.Exp(p[j] - max); sum += p[j]; }
                    lse[(b * heads + h) * seq + i] = (float)(max + Math.Log(sum));
                    for (int d = 0; d < headDim; d++)
                    {
                        double acc = 0;
                        for (int j = lo; j <= hi; j++) acc += p[j] * v[ko + j * headDim + d];
                        o[qo + i * headDim + d] = (float)(acc / sum);
                    }
                }
            }
    }

    /// <summary>
    /// Gradients of <see cref="Forward"/> given dO; dq, dk, dv are overwritten. Uses the saved
    /// output and lse: P = exp(S − lse), dP = dO·vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)), times 1 − tanh²
    /// under a soft-cap.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, ReadOnlySpan<float> dO,
        Span<float> dq, Span<float> dk, Span<float> dv,
        int batch, int heads, int kvHeads, int seq, int headDim, float scale, int window = 0, float softCap = 0f, ReadOnlySpan<int> prefix = default)
    {
        AttentionChecks.Check(q.Length, k.Length, v.Length, o.Length, lse.Length, batch, heads, kvHeads, seq, headDim, window);
        AttentionChecks.SoftCap(softCap);
        AttentionChecks.Prefix(prefix, batch, seq);
        dq.Slice(0, q.Length).Clear(); dk.Slice(0, k.Length).Clear(); dv.Slice(0, v.Length).Clear();
        var dqAcc = new double[q.Length]; var dkAcc = new double[k.Length]; var dvAcc = new double[v.Length];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            {
                int kh = h / (heads / kvHeads);
                int qo = (b * heads + h) * seq * headDim, ko = (b * kvHeads + kh) * seq * headDim;
                for (int i = 0; i < seq; i++)
                {
                    int lo = window > 0 ? Math.Max(0, i - window + 1) : 0, hi = Math.Max(i, (prefix.IsEmpty ? 0 : prefix[b]) - 1);
                    double l = lse[(b * heads + h) * seq + i];
                    double delta = 0;
                    for (int d = 0; d < headDim; d++) delta += (double)dO[qo + i * headDim + d] * o[qo + i * headDim + d];
                    for (int j = lo; j <= hi; j++)
                    {
                        double s = 0, dp = 0;
                        for (int d = 0; d < headDim; d++)
                        {
                            s += (double)q[qo + i * headDim + d] * k[ko + j * headDim + d];
                            dp += (double)dO[qo + i * headDim + d] * v[ko + j * headDim + d];
                        }
                        double ds;
                        double pij;
                        if (softCap > 0)
                        {
                            double t = Math.Tanh(s * scale / softCap);
                            pij = Math.Exp(softCap * t - l);
                            ds = pij * (dp - delta) * (1 - t * t) * scale;
                        }
                        else
                        {
                            pij = Math.Exp(s * scale - l);
                            ds = pij * (dp - delta) * scale;
                        }
                        for (int d = 0; d < headDim; d++)
                        {
                            dvAcc[ko + j * headDim + d] += pij * dO[qo + i * headDim + d];
                            dqAcc[qo + i * headDim + d] += ds * k[ko + j * headDim + d];
                            dkAcc[ko + j * headDim + d] += ds * q[qo + i * headDim + d];
                        }
                    }
                }
            }
        for (int i = 0; i < q.Length; i++) dq[i] = (float)dqAcc[i];
        for (int i = 0; i < k.Length; i++) { dk[i] = (float)dkAcc[i]; dv[i] = (float)dvAcc[i]; }
    }
}
