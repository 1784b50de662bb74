namespace Tessera.Inference;

/// <summary>
/// How the next token is drawn from logits. Temperature 0 is greedy (argmax, ties to the lower
/// id). Filters apply in the order top-k, top-p (nucleus), min-p, each to the tempered distribution.
/// </summary>
public sealed record SamplingOptions
{
    public float Temperature { get; init; } = 1f;
    /// <summary>Keep the k most likely tokens; 0 = off.</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set whose probability reaches p; 1 = off.</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Drop tokens below min-p × the top probability; 0 = off.</summary>
    public float MinP { get; init; }
    public ulong Seed { get; init; }

    /// <summary>Greedy decoding.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0f };

    /// <summary>Throws one clear <see cref="ArgumentException"/> for an impossible setting.</summary>
    public SamplingOptions Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentException($"temperature must be a finite number ≥ 0, got {Temperature}.");
        if (TopK < 0) throw new ArgumentException($"top-k must be ≥ 0, got {TopK}.");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}.");
        if (!(MinP >= 0 && MinP < 1)) throw new ArgumentException($"min-p must be in [0, 1), got {MinP}.");
        return this;
    }
}
