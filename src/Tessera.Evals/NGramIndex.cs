using Tessera.Data;

namespace Tessera.Evals;

/// <summary>
/// The set of token n-grams of a training corpus, for contamination checks. Each n-gram is
/// reduced to a 64-bit hash (a polynomial rolling hash, then a SplitMix64 finaliser so nearby
/// n-grams land far apart) and the distinct hashes are kept in one sorted array: 8 bytes per
/// distinct n-gram, no per-entry objects, lookups by binary search. With 64-bit hashes a false
/// "present" needs a collision, about count/2⁶⁴ per lookup (≈10⁻¹² for 10⁷ n-grams); a present
/// n-gram is never reported absent. N-grams never span a BOS token, so packed shards do not
/// produce n-grams that cross document boundaries.
/// </summary>
public sealed class NGramIndex : IOverlapIndex
{
    /// <summary>Multiplier of the rolling hash (odd, so multiplication is invertible mod 2⁶⁴).</summary>
    const ulong Base = 0x9E37_79B9_7F4A_7C15UL;
    readonly ulong[] hashes;

    NGramIndex(int n, ulong[] sortedDistinct, long tokensIndexed)
    {
        N = n;
        hashes = sortedDistinct;
        TokensIndexed = tokensIndexed;
    }

    /// <summary>The n of the n-grams.</summary>
    public int N { get; }

    /// <summary>Distinct n-grams held.</summary>
    public int Count => hashes.Length;

    /// <summary>Tokens of training data that were read.</summary>
    public long TokensIndexed { get; }

    /// <summary>Memory held by the index, in bytes.</summary>
    public long MemoryBytes => hashes.LongLength * sizeof(ulong);

    /// <summary>Indexes every n-gram of <paramref name="shards"/> (BOS = <paramref name="bosId"/> splits documents; −1 = none).</summary>
    public static NGramIndex Build(IEnumerable<TokenShard> shards, int n, int bosId)
    {
        CheckN(n);
        var list = shards as IReadOnlyList<TokenShard> ?? [.. shards];
        long capacity = 0, tokens = 0;
        foreach (var shard in list) capacity += Math.Max(0, shard.TokenCount - n + 1);
        // One array sized for every position: the only large allocation (8 bytes per training token).
        var all = new ulong[capacity];
        long filled = 0;
        var chunk = new int[1 << 16];
        foreach (var shard in list)
        {
            var roller = new Roller(n);
            for (long at = 0; at < shard.TokenCount; at += chunk.Length)
            {
                int len = (int)Math.Min(chunk.Length, shard.TokenCount - at);
                shard.Read(at, chunk.AsSpan(0, len));
                for (int i = 0; i < len; i++)
                {
                    if (chunk[i] == bosId) { roller.Reset(); continue; }
                    if (roller.Push(chunk[i], out ulong h)) all[filled++] = h;
                }
            }
            tokens += shard.TokenCount;
        }
        if (filled < all.LongLength) all = all[..(int)filled];
        return new NGramIndex(n, SortDistinct(all), tokens);
    }

    /// <summary>Indexes every n-gram of in-memory token sequences (each sequence is its own document).</summary>
    public static NGramIndex Build(IEnumerable<int[]> documents, int n)
    {
        CheckN(n);
        var all = new List<ulong>();
        long tokens = 0;
        foreach (var doc in documents)
        {
            var roller = new Roller(n);
            foreach (int t in doc) if (roller.Push(t, out ulong h)) all.Add(h);
            tokens += doc.Length;
        }
        return new NGramIndex(n, SortDistinct([.. all]), tokens);
    }

    static void CheckN(int n)
    {
        if (n < 1 || n > 64) throw new ArgumentOutOfRangeException(nameof(n), n, "N-gram length must be in [1, 64].");
    }

    static ulong[] SortDistinct(ulong[] values)
    {
        Array.Sort(values);
        int w = 0;
        for (int i = 0; i < values.Length; i++)
            if (w == 0 || values[i] != values[w - 1]) values[w++] = values[i];
        return w == values.Length ? values : values[..w];
    }

    /// <summary>True when the n-gram <paramref name="ngram"/> (exactly <see cref="N"/> ids) occurs in the indexed data.</summary>
    public bool Contains(ReadOnlySpan<int> ngram)
    {
        if (ngram.Length != N) throw new ArgumentException($"Expected a {N}-gram, got {ngram.Length} ids.");
        return Array.BinarySearch(hashes, Hash(ngram)) >= 0;
    }

    /// <summary>
    /// True when any n-gram of <paramref name="tokens"/> occurs in the indexed data; false for a
    /// sequence shorter than <see cref="N"/> (it has no n-gram to check).
    /// </summary>
    public bool Overlaps(ReadOnlySpan<int> tokens)
    {
        var roller = new Roller(N);
        foreach (int t in tokens)
            if (roller.Push(t, out ulong h) && Array.BinarySearch(hashes, h) >= 0) return true;
        return false;
    }

    /// <summary>The stored hash of one n-gram (what the rolling hash yields for the same ids).</summary>
    public static ulong Hash(ReadOnlySpan<int> ngram)
    {
        ulong h = 0;
        foreach (int t in ngram) h = h * Base + (uint)t + 1;
        return Mix(h);
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Rolling h = Σ (t_i + 1)·Base^(n−1−i) over the last n ids, updated in O(1) per id.</summary>
    struct Roller(int n)
    {
        readonly ulong top = Pow(Base, n - 1);   // weight of the id that leaves the window
        readonly int[] window = new int[n];
        ulong h;
        long seen;

        public void Reset() { h = 0; seen = 0; }

        public bool Push(int id, out ulong hash)
        {
            int slot = (int)(seen % window.Length);
            if (seen >= window.Length) h -= ((uint)window[slot] + 1UL) * top;
            window[slot] = id;
            h = h * Base + (uint)id + 1;
            seen++;
            hash = Mix(h);
            return seen >= window.Length;
        }

        static ulong Pow(ulong b, int e)
        {
            ulong r = 1;
            for (int i = 0; i < e; i++) r *= b;
            return r;
        }
    }
}
