using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Tessera.Kernels;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Inference;

/// <summary>
/// The one slow reference generator: <see cref="IGenerationEngine"/> the plain way, one sequence
/// at a time (callers queue on a lock), re-running the whole training graph
/// (<see cref="Transformer.Forward"/>, no KV cache) on the whole sequence for every token. The
/// batched, cached, quantized and speculative engines must produce the same greedy tokens and
/// log-probabilities as this one; <see cref="Generate"/> is the same loop for synchronous callers.
/// </summary>
public sealed class ReferenceEngine(Transformer model) : IGenerationEngine
{
    readonly object gate = new();

    /// <inheritdoc />
    public ModelConfig Config => model.Config;

    /// <inheritdoc />
    public IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, CancellationToken cancel = default)
    {
        EngineChecks.Request(request, Config);   // before any work, on the caller's thread
        CheckModules(request.Modules);
        return Stream(request, cancel);
    }

    async IAsyncEnumerable<TokenEvent> Stream(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancel)
    {
        foreach (var ev in Steps(request, cancel))
        {
            yield return ev;
            if (ev.Finish != FinishReason.None) yield break;
            await Task.Yield();
        }
    }

    /// <summary>
    /// <paramref name="prompt"/> followed by up to <paramref name="maxNewTokens"/> generated tokens;
    /// generation ends early at an id in <paramref name="stopIds"/> (which is kept) or when the
    /// sequence fills the model's context, exactly where <see cref="GenerateAsync"/> ends.
    /// </summary>
    /// <exception cref="ArgumentException">The request fails <see cref="EngineChecks.Request"/>.</exception>
    public List<int> Generate(IReadOnlyList<int> prompt, int maxNewTokens, SamplingOptions sampling, IReadOnlySet<int>? stopIds = null)
    {
        var request = new GenerationRequest(prompt, maxNewTokens, sampling, stopIds);
        EngineChecks.Request(request, Config);
        CheckModules(request.Modules);
        var tokens = new List<int>(prompt);
        foreach (var ev in Steps(request, CancellationToken.None)) tokens.Add(ev.Id);
        return tokens;
    }

    /// <summary>The generation loop of a checked request; the last event carries its finish reason.</summary>
    IEnumerable<TokenEvent> Steps(GenerationRequest request, CancellationToken cancel)
    {
        var sampler = new Sampler(request.Sampling, request.Prompt);
        var tokens = new List<int>(request.Prompt);
        for (int step = 0; step < request.MaxNewTokens; step++)
        {
            if (cancel.IsCancellationRequested) yield break;
            TokenEvent ev;
            lock (gate)
            {
                var logits = request.Modules is null ? LastLogits(tokens) : WithModules(request.Modules, () => LastLogits(tokens));
                int next = sampler.Next(logits);
                ev = Describe(logits, next, request.TopLogprobs);
            }
            tokens.Add(ev.Id);
            bool stop = request.StopIds?.Contains(ev.Id) == true;
            bool last = stop || step == request.MaxNewTokens - 1 || tokens.Count >= Config.ContextLength;
            yield return last ? ev with { Finish = stop ? FinishReason.Stop : FinishReason.Length } : ev;
            if (last) yield break;
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs)
    {
        EngineChecks.Prompt(prompt, Config);
        int V = Config.VocabSize, T = prompt.Count;
        var result = new TokenEvent[T];
        result[0] = new TokenEvent(prompt[0], float.NaN, []);
        lock (gate)
        {
            using var g = new Graph(recordGradients: false);
            var logits = model.Forward(g, prompt.ToArray(), 1, T).Logits.AsSpan("score");   // (T, V)
            for (int i = 1; i < T; i++) result[i] = Describe(logits.Slice((i - 1) * V, V), prompt[i], topLogprobs);
        }
        return result;
    }

    /// <inheritdoc />
    public float[] Embed(IReadOnlyList<int> ids)
    {
        EngineChecks.Prompt(ids, Config);
        int D = Config.Dim, T = ids.Count;
        var e = new float[D];
        lock (gate)
        {
            using var g = new Graph(recordGradients: false);
            var h = model.Forward(g, ids.ToArray(), 1, T).Hidden.AsSpan("embed");               // (T, D)
            for (int t = 0; t < T; t++) for (int d = 0; d < D; d++) e[d] += h[t * D + d];
        }
        double norm = 0;
        foreach (float v in e) norm += (double)v * v;
        float inv = norm > 0 ? (float)(1 / Math.Sqrt(norm)) : 0f;
        for (int d = 0; d < D; d++) e[d] *= inv;
        return e;
    }

    void CheckModules(IReadOnlyList<string>? ids)
    {
        if (ids is null) return;
        foreach (var id in ids)
            if (!model.Modules.Attached.Any(m => m.Id == id))
                throw new ArgumentException($"Module '{id}' is not attached to this base (attached: {(model.Modules.Attached.Count == 0 ? "none" : string.Join(", ", model.Modules.Attached.Select(m => m.Id)))}).");
    }

    /// <summary>Runs <paramref name="forward"/> with exactly <paramref name="ids"/> routed on, then restores the model's routing (caller holds the gate).</summary>
    T WithModules<T>(IReadOnlyList<string> ids, Func<T> forward)
    {
        var before = model.Modules.RoutedIds;
        model.Modules.Route(ids);
        try { return forward(); }
        finally { model.Modules.Route(before); }
    }

    float[] LastLogits(List<int> tokens)
    {
        int V = Config.VocabSize, T = tokens.Count;
        using var g = new Graph(recordGradients: false);
        return model.Forward(g, tokens.ToArray(), 1, T).Logits.AsSpan("generate").Slice((T - 1) * V, V).ToArray();
    }

    /// <summary>The event for choosing <paramref name="id"/> after <paramref name="logits"/>: log-softmax at temperature 1, plus the top alternatives.</summary>
    public static TokenEvent Describe(ReadOnlySpan<float> logits, int id, int top)
    {
        float lse = LogSumExp(logits);
        var alternatives = new TokenLogprob[Math.Min(top, logits.Length)];
        if (alternatives.Length > 0)
        {
            var idx = new int[logits.Length];
            for (int i = 0; i < idx.Length; i++) idx[i] = i;
            var copy = logits.ToArray();
            Array.Sort(idx, (a, b) => copy[b] != copy[a] ? copy[b].CompareTo(copy[a]) : a.CompareTo(b));
            for (int i = 0; i < alternatives.Length; i++) alternatives[i] = new TokenLogprob(idx[i], copy[idx[i]] - lse);
        }
        return new TokenEvent(id, logits[id] - lse, alternatives);
    }

    /// <summary>log Σ exp(logits), max-subtracted: <see cref="Softmax.LogSumExp"/>.</summary>
    public static float LogSumExp(ReadOnlySpan<float> logits) => Softmax.LogSumExp(logits);
}

/// <summary>Request checks every engine applies before doing any work.</summary>
public static class EngineChecks
{
    /// <summary>A prompt with input vectors: one D-wide vector per negative id, a prefix inside the prompt.</summary>
    static void Vectors(GenerationRequest r, ModelConfig config)
    {
        if (r.Prompt.Count == 0) throw new ArgumentException("The prompt is empty (it needs at least a BOS token).");
        if (r.Prompt.Count > config.ContextLength)
            throw new ArgumentException($"The prompt has {r.Prompt.Count} rows (tokens and image patches) but the model's context is {config.ContextLength}.");
        long negative = 0;
        foreach (int id in r.Prompt)
            if (id < 0) negative++;
            else if (id >= config.VocabSize) throw new ArgumentException($"Prompt token id {id} is outside the vocabulary of {config.VocabSize}.");
        long want = negative * config.Dim;
        if ((r.InputVectors?.Length ?? 0) != want)
            throw new ArgumentException($"The prompt has {negative} vector rows, so {want} input values (D = {config.Dim}) are needed; {r.InputVectors?.Length ?? 0} were given.");
        if ((uint)r.PrefixLength > (uint)r.Prompt.Count)
            throw new ArgumentException($"The prefix length {r.PrefixLength} must lie in [0, {r.Prompt.Count}] (the prompt).");
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="prompt"/> is non-empty, fits the context and holds only ids inside the vocabulary.</summary>
    public static void Prompt(IReadOnlyList<int> prompt, ModelConfig config)
    {
        if (prompt.Count == 0) throw new ArgumentException("The prompt is empty (it needs at least a BOS token).");
        if (prompt.Count > config.ContextLength)
            throw new ArgumentException($"The prompt has {prompt.Count} tokens but the model's context is {config.ContextLength}.");
        foreach (int id in prompt)
            if ((uint)id >= (uint)config.VocabSize) throw new ArgumentException($"Prompt token id {id} is outside the vocabulary of {config.VocabSize}.");
    }

    /// <summary>
    /// Throws <see cref="ArgumentException"/> unless the prompt passes <see cref="Prompt"/> (or, with
    /// input vectors, the vector checks, on engines that take them: <paramref name="takesVectors"/>)
    /// and the token budget, logprob count and sampling options are in range.
    /// </summary>
    public static void Request(GenerationRequest r, ModelConfig config, bool takesVectors = false)
    {
        if (r.InputVectors is null && r.PrefixLength == 0) Prompt(r.Prompt, config);
        else if (!takesVectors) throw new ArgumentException("this engine takes token ids only; input vectors (images) and prefix attention need the batching engine.");
        else Vectors(r, config);
        if (r.MaxNewTokens < 0) throw new ArgumentException($"max new tokens must be ≥ 0, got {r.MaxNewTokens}.");
        if (r.TopLogprobs < 0 || r.TopLogprobs > 20) throw new ArgumentException($"top logprobs must be in [0, 20], got {r.TopLogprobs}.");
        if (r.Prompt.Count >= config.ContextLength && r.MaxNewTokens > 0)
            throw new ArgumentException($"The prompt fills the model's context of {config.ContextLength} tokens; nothing can be generated.");
        r.Sampling.Validate();
        if (r.Sampling.LogitBias is { } bias)
            foreach (int id in bias.Keys)
                if (id >= config.VocabSize) throw new ArgumentException($"logit bias: token id {id} is outside the vocabulary of {config.VocabSize}.");
    }
}
