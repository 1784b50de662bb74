namespace Tessera.Inference;

/// <summary>
/// How the next token is drawn from logits. <see cref="LogitBias"/> is added to the logits first;
/// then temperature 0 is greedy (argmax, ties to the lower id), otherwise filters apply in the order
/// top-k, top-p (nucleus), min-p, each to the tempered distribution.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>Divides the logits before sampling; 0 is greedy decoding (argmax).</summary>
    public float Temperature { get; init; } = 1f;
    /// <summary>Keep the k most likely tokens; 0 = off.</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set whose probability reaches p; 1 = off.</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Drop tokens below min-p × the top probability; 0 = off.</summary>
    public float MinP { get; init; }
    /// <summary>Seed of the sampler's random stream: the same seed and prompt give the same tokens.</summary>
    public ulong Seed { get; init; }

    /// <summary>
    /// OpenAI's frequency penalty in [−2, 2]: subtracted from a token's logit once per time the
    /// sequence has generated it so far (prompt tokens do not count), after the logit bias.
    /// </summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>OpenAI's presence penalty in [−2, 2]: subtracted once from the logit of every token generated so far.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>
    /// Added to the logit of each listed token id before anything else (OpenAI's <c>logit_bias</c>):
    /// −100 all but bans a token, +100 all but forces it. Reported log-probabilities stay those of
    /// the unbiased model. Ids must lie in the vocabulary (engines check; the sampler throws otherwise).
    /// </summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }

    /// <summary>
    /// Applied to the (biased) logits before temperature and filters; it sees the prompt and the
    /// tokens sampled so far, so a sampler that uses it must be given the prompt. Reported
    /// log-probabilities stay those of the model. Speculative decoding does not support it.
    /// </summary>
    public ILogitsProcessor? LogitsProcessor { get; init; }

    /// <summary>Greedy decoding.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0f };

    /// <summary>Throws one clear <see cref="ArgumentException"/> for an impossible setting.</summary>
    public SamplingOptions Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentException($"temperature must be a finite number ≥ 0, got {Temperature}.");
        if (TopK < 0) throw new ArgumentException($"top-k must be ≥ 0, got {TopK}.");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}.");
        if (!(MinP >= 0 && MinP < 1)) throw new ArgumentException($"min-p must be in [0, 1), got {MinP}.");
        if (!(FrequencyPenalty >= -2 && FrequencyPenalty <= 2)) throw new ArgumentException($"frequency penalty must be in [-2, 2], got {FrequencyPenalty}.");
        if (!(PresencePenalty >= -2 && PresencePenalty <= 2)) throw new ArgumentException($"presence penalty must be in [-2, 2], got {PresencePenalty}.");
        if (LogitBias is not null)
            foreach (var (id, bias) in LogitBias)
            {
                if (id < 0) throw new ArgumentException($"logit bias: token id {id} is negative.");
                if (!float.IsFinite(bias)) throw new ArgumentException($"logit bias for token {id} must be finite, got {bias}.");
            }
        return this;
    }
}
