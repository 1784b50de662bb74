namespace Tessera.Kernels;

/// <summary>Shape checks shared by the attention kernel and its scalar twin.</summary>
public static class AttentionChecks
{
    /// <summary>Throws an <see cref="ArgumentException"/> naming the shapes when they do not fit.</summary>
    public static void Check(int qLength, int kLength, int vLength, int oLength, int lseLength,
        int batch, int heads, int kvHeads, int seq, int headDim, int window)
    {
        if (batch < 0 || heads <= 0 || kvHeads <= 0 || seq < 0 || headDim <= 0 || window < 0)
            throw new ArgumentException($"Attention: invalid sizes B={batch} H={heads} Hkv={kvHeads} T={seq} D={headDim} window={window}.");
        if (heads % kvHeads != 0)
            throw new ArgumentException($"Attention: query heads ({heads}) must be a multiple of key/value heads ({kvHeads}).");
        long qn = (long)batch * heads * seq * headDim, kn = (long)batch * kvHeads * seq * headDim;
        if (qLength < qn || oLength < qn)
            throw new ArgumentException($"Attention: q/o need (B={batch}, H={heads}, T={seq}, D={headDim}) = {qn} floats, got q={qLength}, o={oLength}.");
        if (kLength < kn || vLength < kn)
            throw new ArgumentException($"Attention: k/v need (B={batch}, Hkv={kvHeads}, T={seq}, D={headDim}) = {kn} floats, got k={kLength}, v={vLength}.");
        if (lseLength < (long)batch * heads * seq)
            throw new ArgumentException($"Attention: lse needs (B, H, T) = {(long)batch * heads * seq} floats, got {lseLength}.");
    }

    /// <summary>The prefix lengths are absent or one per batch row, each in [0, seq].</summary>
    public static void Prefix(ReadOnlySpan<int> prefix, int batch, int seq)
    {
        if (prefix.IsEmpty) return;
        if (prefix.Length != batch)
            throw new ArgumentException($"Attention: prefix lengths need one value per batch row ({batch}), got {prefix.Length}.");
        foreach (int p in prefix)
            if ((uint)p > (uint)seq) throw new ArgumentException($"Attention: a prefix length must lie in [0, {seq}], got {p}.");
    }

    /// <summary>The logit soft-cap is 0 (none) or positive and finite.</summary>
    public static void SoftCap(float softCap)
    {
        if (!(softCap >= 0) || float.IsInfinity(softCap))
            throw new ArgumentException($"Attention: the logit soft-cap must be 0 (none) or positive and finite, got {softCap}.");
    }
}
