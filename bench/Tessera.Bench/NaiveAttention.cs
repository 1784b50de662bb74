using Tessera.Kernels;

namespace Tessera.Bench;

/// <summary>
/// The textbook causal attention the flash kernel is judged against, built from our own GEMM
/// and softmax: per head S = q·kᵀ·scale (T×T), causal mask, P = softmax(S), o = P·v; backward
/// dV = Pᵀ·dO, dP = dO·vᵀ, dS = softmax'(P, dP)·scale, dQ = dS·k, dK = dSᵀ·q. Like autograd it
/// keeps every head's P (B, Hq, T, T) from forward for backward, plus two T×T work buffers.
/// Layouts as <see cref="Attention"/>; full causal only (no window).
/// </summary>
public sealed class NaiveAttention
{
    readonly int batch, heads, kvHeads, seq, dim;
    readonly float scale;
    readonly float[] probs;     // (B, Hq, T, T) saved for backward
    readonly float[] work1, work2; // (T, T): scores before softmax / dP, then dS

    public NaiveAttention(int batch, int heads, int kvHeads, int seq, int dim, float scale)
    {
        (this.batch, this.heads, this.kvHeads, this.seq, this.dim, this.scale) = (batch, heads, kvHeads, seq, dim, scale);
        if ((long)batch * heads * seq * seq > Array.MaxLength || (long)batch * heads * seq * dim > Array.MaxLength)
            throw new ArgumentException($"Naive attention would need B·H·T² = {(long)batch * heads * seq * seq} floats for its saved probabilities; use a smaller shape.");
        probs = new float[(long)batch * heads * seq * seq];
        work1 = new float[seq * seq];
        work2 = new float[seq * seq];
    }

    /// <summary>Bytes held in T×T buffers (saved P plus the two work buffers).</summary>
    public long ScratchBytes => ((long)probs.Length + work1.Length + work2.Length) * sizeof(float);

    public void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o)
    {
        int T = seq, D = dim, group = heads / kvHeads;
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            {
                var qh = q.Slice(((b * heads + h) * T) * D, T * D);
                int kvOff = ((b * kvHeads + h / group) * T) * D;
                var kh = k.Slice(kvOff, T * D); var vh = v.Slice(kvOff, T * D);
                var p = probs.AsSpan((int)((long)(b * heads + h) * T * T), T * T);
                Gemm.Sgemm(false, true, T, T, D, qh, D, kh, D, work1, T);   // S = q·kᵀ  (T, T)
                for (int i = 0; i < T; i++)
                {
                    var row = work1.AsSpan(i * T, T);
                    for (int j = 0; j <= i; j++) row[j] *= scale;
                    row[(i + 1)..].Fill(float.NegativeInfinity);              // causal mask
                }
                Softmax.Forward(work1, p, T, T);
                Gemm.Sgemm(false, false, T, D, T, p, T, vh, D, o.Slice(((b * heads + h) * T) * D, T * D), D); // o = P·v
            }
    }

    /// <summary>Gradients given dO; uses the P saved by the last <see cref="Forward"/>. dq, dk, dv are overwritten.</summary>
    public void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> dO,
        Span<float> dq, Span<float> dk, Span<float> dv)
    {
        int T = seq, D = dim, group = heads / kvHeads;
        dk.Clear(); dv.Clear();
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            {
                int qOff = ((b * heads + h) * T) * D, kvOff = ((b * kvHeads + h / group) * T) * D;
                var qh = q.Slice(qOff, T * D); var dOh = dO.Slice(qOff, T * D);
                var kh = k.Slice(kvOff, T * D); var vh = v.Slice(kvOff, T * D);
                var p = probs.AsSpan((int)((long)(b * heads + h) * T * T), T * T);
                Gemm.Sgemm(true, false, T, D, T, p, T, dOh, D, dv.Slice(kvOff, T * D), D, accumulate: true); // dV += Pᵀ·dO
                Gemm.Sgemm(false, true, T, T, D, dOh, D, vh, D, work1, T);                               // dP = dO·vᵀ
                Softmax.Backward(p, work1, work2, T, T);                                                 // dS
                for (int i = 0; i < work2.Length; i++) work2[i] *= scale;
                Gemm.Sgemm(false, false, T, D, T, work2, T, kh, D, dq.Slice(qOff, T * D), D);            // dQ = dS·k
                Gemm.Sgemm(true, false, T, D, T, work2, T, qh, D, dk.Slice(kvOff, T * D), D, accumulate: true); // dK += dSᵀ·q
            }
    }
}
