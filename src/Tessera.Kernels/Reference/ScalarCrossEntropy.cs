namespace Tessera.Kernels.Reference;

/// <summary>
/// Scalar twin of <see cref="CrossEntropy"/>: fused log-softmax + negative log-likelihood over
/// rows of logits. Rows whose target equals <c>ignoreIndex</c> contribute nothing and get zero gradient.
/// </summary>
public static class ScalarCrossEntropy
{
    /// <summary>
    /// Returns the mean loss over the rows that are not ignored (0 when all are ignored) and
    /// writes each row's log-sum-exp into <paramref name="lse"/> for the backward pass.
    /// </summary>
    public static float Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> lse,
        int rows, int vocab, int ignoreIndex = -100)
    {
        double total = 0; int count = 0;
        for (int r = 0; r < rows; r++)
        {
            var row = logits.Slice(r * vocab, vocab);
            float max = float.NegativeInfinity;
            for (int i = 0; i < vocab; i++) max = MathF.Max(max, row[i]);
            double sum = 0;
            for (int i = 0; i < vocab; i++) sum += Math.Exp(row[i] - max);
            double l = max + Math.Log(sum);
            lse[r] = (float)l;
            int t = targets[r];
            if (t == ignoreIndex) continue;
            CrossEntropyChecks.Target(t, r, vocab);
            total += l - row[t];
            count++;
        }
        return count == 0 ? 0f : (float)(total / count);
    }

    /// <summary>dlogits = (softmax − onehot(target)) · dLoss / count; ignored rows are zero.</summary>
    public static void Backward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> lse,
        float dLoss, Span<float> dLogits, int rows, int vocab, int ignoreIndex = -100)
    {
        int count = 0;
        for (int r = 0; r < rows; r++) if (targets[r] != ignoreIndex) count++;
        double scale = count == 0 ? 0 : (double)dLoss / count;
        for (int r = 0; r < rows; r++)
        {
            int o = r * vocab, t = targets[r];
            if (t == ignoreIndex) { dLogits.Slice(o, vocab).Clear(); continue; }
            for (int i = 0; i < vocab; i++)
                dLogits[o + i] = (float)((Math.Exp(logits[o + i] - lse[r]) - (i == t ? 1 : 0)) * scale);
        }
    }
}
