namespace Tessera.Inference;

/// <summary>
/// Rewrites one row of logits before the sampler draws from it, given every token of the sequence
/// so far (prompt and generated). The ∞-gram mixer (Tessera.Evals) is one: it replaces the logits
/// with log((1 − λ)·softmax(logits) + λ·p∞). Called on the engine's sampling thread, once per step.
/// </summary>
public interface ILogitsProcessor
{
    /// <summary>Rewrites <paramref name="logits"/> in place for the sequence <paramref name="history"/>.</summary>
    void Process(ReadOnlySpan<int> history, Span<float> logits);
}
