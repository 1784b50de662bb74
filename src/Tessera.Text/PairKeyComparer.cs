namespace Tessera.Text;

/// <summary>
/// Equality for a pair of token ids packed into a <see cref="long"/> (left &lt;&lt; 32 | right).
/// <see cref="long.GetHashCode"/> is the XOR of the halves, so pairs (a, b) and (b, a), and every
/// pair with the same XOR, share a bucket; with 500k merges over small ids the chains grew long
/// enough that lookups were most of the time of an uncached BPE encode (gemma3). A Fibonacci
/// multiply spreads the key over all bits instead.
/// </summary>
internal sealed class PairKeyComparer : IEqualityComparer<long>
{
    /// <summary>The one instance.</summary>
    public static readonly PairKeyComparer Instance = new();

    public bool Equals(long x, long y) => x == y;

    public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
}
