using Tessera.Model;

namespace Tessera.Inference;

/// <summary>
/// One sequence on one model with its own one-slot KV cache, driven synchronously: feed tokens,
/// read logits, roll back. The building block of speculative decoding (a target and a draft
/// decoder side by side) and of batch-1 measurements. Not thread-safe.
/// </summary>
public sealed class SequenceDecoder : IDisposable
{
    readonly KvCache cache;
    readonly ForwardPass pass;
    TokenRow[] rows;
    int[] outputRows;
    readonly List<int> tokens = [];

    /// <summary>A decoder over <paramref name="weights"/>.</summary>
    public SequenceDecoder(InferenceWeights weights)
    {
        Config = weights.Config;
        cache = new KvCache(Config, 1);
        cache.Ensure(0);
        pass = new ForwardPass(weights, cache, rows: 8);
        rows = new TokenRow[8];
        outputRows = new int[8];
    }

    /// <summary>Configuration of the model being decoded.</summary>
    public ModelConfig Config { get; }

    /// <summary>The forward pass over this decoder's one-slot cache (slot 0), for scoring and embedding.</summary>
    internal ForwardPass Pass => pass;

    /// <summary>Tokens whose keys and values are in the cache, in order.</summary>
    public IReadOnlyList<int> Tokens => tokens;

    /// <summary>Forgets the sequence.</summary>
    public void Reset() => tokens.Clear();

    /// <summary>Keeps only the first <paramref name="length"/> tokens (the cache past them is overwritten later).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > tokens.Count) throw new ArgumentOutOfRangeException(nameof(length), length, $"SequenceDecoder: cannot truncate {tokens.Count} tokens to {length}.");
        tokens.RemoveRange(length, tokens.Count - length);
    }

    /// <summary>
    /// Appends <paramref name="ids"/> to the sequence in one forward pass. With
    /// <paramref name="allLogits"/> every new row's logits are readable through <see cref="Logits"/>
    /// (i = 0 … ids.Length − 1), otherwise only the last one's (i = 0).
    /// </summary>
    public void Feed(ReadOnlySpan<int> ids, bool allLogits = false)
    {
        if (ids.IsEmpty) throw new ArgumentException("SequenceDecoder.Feed: nothing to feed.");
        if (tokens.Count + ids.Length > Config.ContextLength)
            throw new ArgumentException($"SequenceDecoder: {tokens.Count} + {ids.Length} tokens exceed the context of {Config.ContextLength}.");
        int n = ids.Length;
        if (rows.Length < n) { rows = new TokenRow[Math.Max(n, rows.Length * 2)]; outputRows = new int[rows.Length]; }
        for (int i = 0; i < n; i++)
        {
            rows[i] = new TokenRow(0, tokens.Count + i, ids[i]);
            outputRows[i] = allLogits ? i : n - 1;
        }
        pass.Run(rows.AsMemory(0, n), outputRows.AsSpan(0, allLogits ? n : 1));
        foreach (int id in ids) tokens.Add(id);
    }

    /// <summary>Logits of the i-th output of the last <see cref="Feed"/>.</summary>
    public ReadOnlySpan<float> Logits(int i) => pass.Logits(i);

    /// <summary>Frees the key/value cache.</summary>
    public void Dispose() => cache.Dispose();
}
