namespace Tessera.Tensors;

/// <summary>Fused log-softmax + negative log-likelihood.</summary>
public sealed partial class Graph
{
    /// <summary>
    /// Mean cross-entropy of logits (N, V) against targets (N), a rank-0 tensor. Rows whose target
    /// is <paramref name="ignoreIndex"/> are skipped. Saves each row's log-sum-exp; backward
    /// is (softmax − onehot)·dLoss / count, never materialising the probabilities twice.
    /// </summary>
    public Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, int ignoreIndex = -100)
    {
        const string op = "CrossEntropy";
        Usable(op, logits);
        if (logits.Rank != 2 || logits.Dim(0) != targets.Length)
            throw new ArgumentException($"{op}: logits {Describe(logits)} must be (N, V) with N = {targets.Length} targets.");
        int n = logits.Dim(0), v = logits.Dim(1);
        var t = targets.ToArray();
        var lse = NewSaved(op, [n]);
        var y = NewOutput(op, [], false, logits);
        y.AsSpan(op)[0] = Kernels.CrossEntropy.Forward(logits.AsSpan(op), t, lse.AsSpan(op), n, v, ignoreIndex);
        Record(op, y, [logits], () =>
        {
            var dl = BeginGrad(logits, out bool scratch);
            Kernels.CrossEntropy.Backward(logits.AsSpan(op), t, lse.AsSpan(op), y.Grad!.AsSpan(op)[0], dl.AsSpan(op), n, v, ignoreIndex);
            EndGrad(logits, dl, scratch);
        });
        return y;
    }
}
