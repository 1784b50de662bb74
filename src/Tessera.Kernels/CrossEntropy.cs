using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>Fused log-softmax + cross-entropy. Same contract as <see cref="ScalarCrossEntropy"/>.</summary>
/// <remarks>
/// Targets are validated before anything is written, so a bad target leaves the outputs untouched.
/// The per-row log-sum-exp runs over <see cref="WorkerPool.Shared"/> for large inputs; the mean
/// loss is then summed serially in row order (in double), so it is identical for any thread count.
/// </remarks>
public static class CrossEntropy
{
    /// <summary>
    /// Returns the mean loss over the rows that are not ignored (0 when all are ignored) and
    /// writes each row's log-sum-exp into <paramref name="lse"/> for the backward pass.
    /// </summary>
    public static unsafe float Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> lse, int rows, int vocab, int ignoreIndex = -100)
    {
        Check("CrossEntropy.Forward", logits.Length, targets.Length, rows, vocab);
        SpanChecks.Length(lse.Length, rows, "CrossEntropy.Forward", "lse", rows);
        int count = CountAndCheckTargets(targets, rows, vocab, ignoreIndex);
        fixed (float* pl = logits, plse = lse)
            RowParallel.Run(new LseRows(pl, plse, vocab), rows, (long)rows * vocab);
        if (count == 0) return 0f;
        double total = 0;
        for (int r = 0; r < rows; r++)
        {
            int t = targets[r];
            if (t != ignoreIndex) total += (double)lse[r] - logits[r * vocab + t];
        }
        return (float)(total / count);
    }

    /// <summary>dlogits = (softmax − onehot(target)) · dLoss / count; ignored rows are zero.</summary>
    public static unsafe void Backward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> lse, float dLoss, Span<float> dLogits, int rows, int vocab, int ignoreIndex = -100)
    {
        Check("CrossEntropy.Backward", logits.Length, targets.Length, rows, vocab);
        SpanChecks.Length(lse.Length, rows, "CrossEntropy.Backward", "lse", rows);
        SpanChecks.Length(dLogits.Length, (long)rows * vocab, "CrossEntropy.Backward", "dLogits", rows, vocab);
        int count = CountAndCheckTargets(targets, rows, vocab, ignoreIndex);
        double scale = count == 0 ? 0 : (double)dLoss / count;
        fixed (float* pl = logits, plse = lse, pd = dLogits)
        fixed (int* pt = targets)
            RowParallel.Run(new GradRows(pl, pt, plse, pd, vocab, ignoreIndex, scale), rows, 2L * rows * vocab);
    }

    static void Check(string op, int logitsLength, int targetsLength, int rows, int vocab)
    {
        SpanChecks.NonNegative(rows, op, "rows");
        SpanChecks.NonNegative(vocab, op, "vocab");
        SpanChecks.Length(logitsLength, (long)rows * vocab, op, "logits", rows, vocab);
        SpanChecks.Length(targetsLength, rows, op, "targets", rows);
    }

    static int CountAndCheckTargets(ReadOnlySpan<int> targets, int rows, int vocab, int ignoreIndex)
    {
        int count = 0;
        for (int r = 0; r < rows; r++)
        {
            int t = targets[r];
            if (t == ignoreIndex) continue;
            CrossEntropyChecks.Target(t, r, vocab);
            count++;
        }
        return count;
    }

    // (exp(x − lse))·scale: softmax times the loss gradient scale.
    readonly struct ScaledSoftmax(float lse, float scale) : IUnaryOp
    {
        public float Invoke(float x) => VectorMath.Exp(x - lse) * scale;
        public Vector256<float> Invoke(Vector256<float> x) => VectorMath.Exp(x - Vector256.Create(lse)) * Vector256.Create(scale);
        public Vector512<float> Invoke(Vector512<float> x) => VectorMath.Exp(x - Vector512.Create(lse)) * Vector512.Create(scale);
    }

    unsafe readonly struct LseRows(float* logits, float* lse, int vocab) : IRowRange
    {
        public void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                if (vocab == 0) { lse[r] = float.NegativeInfinity; continue; }   // log of an empty sum, as the twin gives
                var row = new ReadOnlySpan<float>(logits + (long)r * vocab, vocab);
                float max = TensorPrimitives.Max(row);
                float sum = Elementwise.Sum(new Softmax.ExpShift(max), ref logits[(long)r * vocab], vocab);
                lse[r] = (float)(max + Math.Log(sum));
            }
        }
    }

    unsafe readonly struct GradRows(float* logits, int* targets, float* lse, float* dLogits, int vocab, int ignoreIndex, double scale) : IRowRange
    {
        public void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                long o = (long)r * vocab;
                int t = targets[r];
                if (t == ignoreIndex) { new Span<float>(dLogits + o, vocab).Clear(); continue; }
                Elementwise.Map(new ScaledSoftmax(lse[r], (float)scale), ref logits[o], ref dLogits[o], vocab);
                // p − 1 cancels near p = 1, so the target entry is recomputed exactly as the twin does.
                dLogits[o + t] = (float)((Math.Exp(logits[o + t] - lse[r]) - 1) * scale);
            }
        }
    }
}
