using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Inference;

/// <summary>
/// The plain way to generate: re-run the whole model on the whole sequence for every new token
/// (no KV cache). Slow on purpose: it is the twin that the cached, batched and speculative
/// engines must match token for token under greedy decoding.
/// </summary>
public static class ReferenceGenerator
{
    /// <summary>
    /// Appends up to <paramref name="maxNewTokens"/> tokens to <paramref name="prompt"/>; stops early
    /// at any id in <paramref name="stopIds"/> (which is kept). The window slides when the sequence
    /// outgrows the model's context.
    /// </summary>
    public static List<int> Generate(Transformer model, IReadOnlyList<int> prompt, int maxNewTokens, SamplingOptions sampling,
        IReadOnlySet<int>? stopIds = null)
    {
        if (prompt.Count == 0) throw new ArgumentException("Generation needs a non-empty prompt (start with BOS).");
        if (maxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(maxNewTokens), maxNewTokens, "max new tokens must be ≥ 0.");
        var vocab = model.Config.VocabSize;
        foreach (int id in prompt)
            if ((uint)id >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(prompt), id, $"Prompt token {id} is outside the model's vocabulary of {vocab}.");
        var sampler = new Sampler(sampling, prompt);
        var tokens = new List<int>(prompt);
        for (int step = 0; step < maxNewTokens; step++)
        {
            int start = Math.Max(0, tokens.Count - model.Config.ContextLength);
            var window = tokens.GetRange(start, tokens.Count - start).ToArray();
            int next;
            using (var g = new Graph(recordGradients: false))
            {
                var logits = model.Forward(g, window, 1, window.Length).Logits;   // (T, V)
                next = sampler.Next(logits.AsSpan("generate").Slice((window.Length - 1) * vocab, vocab));
            }
            tokens.Add(next);
            if (stopIds is not null && stopIds.Contains(next)) break;
        }
        return tokens;
    }
}
