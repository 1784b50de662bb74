using Tessera.Text;

namespace Tessera.Retrieval.Retro;

/// <summary>
/// Copy practice with numbers a model cannot guess. The tokens that decode to digits only
/// (<c>"19"</c>, <c>"5"</c>, <c>"194"</c> under a cl100k-style pre-tokenizer) are grouped by digit
/// count; <see cref="Draw"/> makes one random bijection inside each group, and <see cref="Apply"/>
/// sends every token of an example (its neighbour and its own chunks alike) through it. The
/// neighbour still holds the example's text token for token, so copying predicts the scrambled
/// digits exactly, while the model's prior over numbers (for a model trained on addresses up to
/// 1950, the 1940s) predicts them no better than chance. Reading practice with this rewards the
/// copy of digits the model would otherwise overrule. No text is added: only digit tokens of the
/// training side are exchanged for other digit tokens of the same length.
/// </summary>
public sealed class NumberScramble
{
    readonly int vocab;
    readonly int[][] groups;   // token ids by digit count, shortest first
    readonly bool[] isNumber;

    /// <summary>Groups the tokenizer's digit-only tokens by their digit count (special tokens are never digits).</summary>
    /// <param name="tokenizer">The tokenizer the examples were encoded with.</param>
    public NumberScramble(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        vocab = tokenizer.VocabSize;
        isNumber = new bool[vocab];
        var byLength = new SortedDictionary<int, List<int>>();
        for (int id = 0; id < vocab; id++)
        {
            if (tokenizer.SpecialTokens.IsSpecial(id)) continue;
            var bytes = tokenizer.DecodeBytes([id]);
            if (bytes.Length == 0 || !bytes.All(b => b is >= (byte)'0' and <= (byte)'9')) continue;
            isNumber[id] = true;
            if (!byLength.TryGetValue(bytes.Length, out var list)) byLength[bytes.Length] = list = [];
            list.Add(id);
        }
        groups = [.. byLength.Values.Select(l => l.ToArray())];
    }

    /// <summary>Number of digit-only tokens in the vocabulary.</summary>
    public int NumberTokens => groups.Sum(g => g.Length);

    /// <summary>Whether <paramref name="id"/> decodes to digits only.</summary>
    /// <param name="id">A token id of the tokenizer.</param>
    public bool IsNumber(int id) => (uint)id < (uint)vocab && isNumber[id];

    /// <summary>Whether any token of <paramref name="tokens"/> decodes to digits only.</summary>
    /// <param name="tokens">Token ids.</param>
    public bool Touches(ReadOnlySpan<int> tokens)
    {
        foreach (int t in tokens) if (IsNumber(t)) return true;
        return false;
    }

    /// <summary>
    /// One random map over the vocabulary: the identity on every token that is not digits only, a
    /// random permutation inside each digit-count group (so a token keeps its number of digits).
    /// </summary>
    /// <param name="rng">The random stream (one draw per example).</param>
    public int[] Draw(Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var map = new int[vocab];
        for (int i = 0; i < vocab; i++) map[i] = i;
        foreach (var g in groups)
        {
            var perm = (int[])g.Clone();
            for (int i = perm.Length - 1; i > 0; i--) { int j = rng.Next(i + 1); (perm[i], perm[j]) = (perm[j], perm[i]); }
            for (int i = 0; i < g.Length; i++) map[g[i]] = perm[i];
        }
        return map;
    }

    /// <summary>A copy of <paramref name="tokens"/> with every id sent through <paramref name="map"/> (from <see cref="Draw"/>).</summary>
    /// <param name="map">A map over the vocabulary.</param>
    /// <param name="tokens">Token ids, each below the map's length.</param>
    public static int[] Apply(int[] map, ReadOnlySpan<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(map);
        var result = new int[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
        {
            int t = tokens[i];
            if ((uint)t >= (uint)map.Length) throw new ArgumentOutOfRangeException(nameof(tokens), $"token id {t} is outside the map's vocabulary of {map.Length}.");
            result[i] = map[t];
        }
        return result;
    }
}
