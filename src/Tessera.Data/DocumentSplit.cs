namespace Tessera.Data;

/// <summary>Which held-out part a document belongs to.</summary>
public enum Split
{
    /// <summary>Documents the model is trained on.</summary>
    Train,
    /// <summary>Held-out documents for loss and bits-per-byte during training.</summary>
    Validation,
    /// <summary>Held-out documents kept for the final evaluation.</summary>
    Test
}

/// <summary>
/// Deterministic document-level split: a document's split depends only on its key (e.g. file
/// name plus index) and the seed, never on the order documents arrive in, so adding a file
/// does not reshuffle the others and a document never straddles train and test.
/// </summary>
public sealed record DocumentSplit(double ValidationFraction = 0.05, double TestFraction = 0.05, ulong Seed = 0)
{
    /// <summary>Checks the fractions; call before any work so bad flags fail fast.</summary>
    public DocumentSplit Validate()
    {
        if (ValidationFraction < 0 || TestFraction < 0 || ValidationFraction + TestFraction >= 1)
            throw new ArgumentException($"Split fractions must be ≥ 0 and leave room for training: validation={ValidationFraction}, test={TestFraction}.");
        return this;
    }

    /// <summary>Assigns a split from a stable 64-bit hash of the key.</summary>
    public Split Assign(string key)
    {
        double u = (Hash(key) >> 11) * (1.0 / (1UL << 53));
        if (u < ValidationFraction) return Split.Validation;
        if (u < ValidationFraction + TestFraction) return Split.Test;
        return Split.Train;
    }

    // FNV-1a over UTF-16 code units, then a SplitMix64 finaliser mixed with the seed: stable
    // across runs and platforms (unlike string.GetHashCode, which is randomised per process).
    ulong Hash(string key)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in key) { h ^= c; h *= 1099511628211UL; }
        h ^= Seed + 0x9E3779B97F4A7C15UL;
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9UL;
        h = (h ^ (h >> 27)) * 0x94D049BB133111EBUL;
        return h ^ (h >> 31);
    }
}
