using Tessera.Model;

namespace Tessera.Inference;

/// <summary>Why a sequence stopped.</summary>
public enum FinishReason
{
    /// <summary>Still generating.</summary>
    None,
    /// <summary>A stop id (end of turn or end of sequence) was produced.</summary>
    Stop,
    /// <summary>The token budget or the context length ran out.</summary>
    Length,
    /// <summary>The caller cancelled the request.</summary>
    Cancelled
}

/// <summary>
/// One sequence to generate: prompt ids (BOS included by the caller), a token budget, sampling,
/// stop ids (e.g. EOS, kept as the last token), and how many alternatives to report per token.
/// </summary>
public sealed record GenerationRequest(IReadOnlyList<int> Prompt, int MaxNewTokens, SamplingOptions Sampling,
    IReadOnlySet<int>? StopIds = null, int TopLogprobs = 0)
{
    /// <summary>
    /// Input vectors (images' patch embeddings): each negative prompt id takes the next D values, in
    /// order. Only engines that take vectors (<see cref="BatchingEngine"/>) accept a request with them.
    /// </summary>
    public float[]? InputVectors { get; init; }

    /// <summary>
    /// Prompt positions [0, PrefixLength) attend to each other both ways (prefix-LM: an image plus its
    /// prompt); 0 keeps the prompt causal. The engine feeds the whole prefix in one pass.
    /// </summary>
    public int PrefixLength { get; init; }

    /// <summary>
    /// Ids of attached modules to turn on for this sequence (docs/modules.md): each expert module's
    /// router then decides per token between its experts and "base only". Null or empty: the base
    /// alone, bit for bit — except on <see cref="ReferenceEngine"/>, where null keeps the model's own
    /// <see cref="Tessera.Model.Modules.ModuleSet"/> routing. An id that is not attached is refused.
    /// </summary>
    public IReadOnlyList<string>? Modules { get; init; }
}

/// <summary>A token id with its log-probability under the model (natural log, temperature 1).</summary>
public readonly record struct TokenLogprob(int Id, float Logprob);

/// <summary>
/// One generated (or scored) token: its id, its log-probability under the unmodified model
/// distribution, the <c>TopLogprobs</c> most likely alternatives, and — on the last event of a
/// sequence only — why generation finished.
/// </summary>
public sealed record TokenEvent(int Id, float Logprob, IReadOnlyList<TokenLogprob> Top, FinishReason Finish = FinishReason.None);

/// <summary>
/// What the server and evals need from an inference engine. Engines see token ids only; text,
/// chat templates and stop strings live with the caller. Implementations must be safe to call
/// from many threads at once.
/// </summary>
public interface IGenerationEngine
{
    /// <summary>The served model's shape (vocabulary, context length).</summary>
    ModelConfig Config { get; }

    /// <summary>
    /// Generates up to <see cref="GenerationRequest.MaxNewTokens"/> tokens, yielding each as soon as
    /// it exists. Cancelling ends the sequence and frees its slot. Throws
    /// <see cref="ArgumentException"/> before any work for a prompt that is empty, has ids outside
    /// the vocabulary, or leaves no room in the context.
    /// </summary>
    IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, CancellationToken cancel = default);

    /// <summary>
    /// Scores a prompt: element i is log p(prompt[i] | prompt[..i]) with alternatives; element 0
    /// has NaN log-probability (nothing precedes it). This is what echo + logprobs returns.
    /// </summary>
    IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs);

    /// <summary>Mean-pooled final hidden state of the sequence, L2-normalised.</summary>
    float[] Embed(IReadOnlyList<int> ids);
}
