using System.Runtime.CompilerServices;
using Tessera.Model;

namespace Tessera.Inference;

/// <summary>
/// <see cref="IGenerationEngine"/> over a <see cref="SpeculativeDecoder"/>: one sequence at a time
/// (callers queue), each generated speculatively with the draft model. Score and Embed use the
/// target's fast path. For many concurrent users prefer <see cref="BatchingEngine"/>.
/// </summary>
public sealed class SpeculativeEngine : IGenerationEngine, IDisposable
{
    readonly SemaphoreSlim turn = new(1, 1);

    /// <summary>Target and draft borrowed from loaded models (keep them alive).</summary>
    public SpeculativeEngine(Transformer target, Transformer draft, int draftTokens = 4)
        : this(InferenceWeights.FromTransformer(target), InferenceWeights.FromTransformer(draft), draftTokens) { }

    /// <summary>Target and draft from prepared (possibly quantized) weights.</summary>
    public SpeculativeEngine(InferenceWeights target, InferenceWeights draft, int draftTokens = 4)
        => Decoder = new SpeculativeDecoder(target, draft, draftTokens);

    /// <summary>The decoder, with its acceptance counters.</summary>
    public SpeculativeDecoder Decoder { get; }

    /// <inheritdoc />
    public ModelConfig Config => Decoder.Config;

    /// <inheritdoc />
    public IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, CancellationToken cancel = default)
    {
        EngineChecks.Request(request, Config);
        return Stream(request, cancel);
    }

    async IAsyncEnumerable<TokenEvent> Stream(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancel)
    {
        try { await turn.WaitAsync(cancel).ConfigureAwait(false); }
        catch (OperationCanceledException) { yield break; }
        try
        {
            foreach (var ev in Decoder.Generate(request, cancel))
            {
                yield return ev;
                await Task.Yield();
            }
        }
        finally { turn.Release(); }
    }

    /// <inheritdoc />
    public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs)
    {
        EngineChecks.Prompt(prompt, Config);
        turn.Wait();
        try { return SequenceReadout.Score(Decoder.Target.Pass, 0, prompt, topLogprobs); }
        finally { turn.Release(); }
    }

    /// <inheritdoc />
    public float[] Embed(IReadOnlyList<int> ids)
    {
        EngineChecks.Prompt(ids, Config);
        turn.Wait();
        try { return SequenceReadout.Embed(Decoder.Target.Pass, 0, ids); }
        finally { turn.Release(); }
    }

    /// <inheritdoc />
    public void Dispose() { Decoder.Dispose(); turn.Dispose(); }
}
