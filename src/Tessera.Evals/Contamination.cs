using Tessera.Data.NGram;
using Tessera.Text;

namespace Tessera.Evals;

/// <summary>What the contamination report needs of an index: its n, and whether a token sequence shares an n-gram with the training data.</summary>
public interface IOverlapIndex
{
    /// <summary>The n of the n-grams checked.</summary>
    int N { get; }
    /// <summary>True when any n-gram of <paramref name="tokens"/> occurs in the training data.</summary>
    bool Overlaps(ReadOnlySpan<int> tokens);
}

/// <summary>
/// The ∞-gram store as a contamination index: exact counts from the suffix arrays instead of a
/// hash set, and any n without rebuilding.
/// </summary>
public sealed class StoreOverlapIndex(NGramStore store, int n) : IOverlapIndex
{
    /// <inheritdoc/>
    public int N { get; } = n >= 1 ? n : throw new ArgumentOutOfRangeException(nameof(n), n, "N-gram length must be ≥ 1.");

    /// <inheritdoc/>
    public bool Overlaps(ReadOnlySpan<int> tokens)
    {
        for (int i = 0; i + N <= tokens.Length; i++)
            if (store.Count(tokens.Slice(i, N)) > 0) return true;
        return false;
    }
}

/// <summary>Score of a subset of an eval set: item count, accuracy, and the set's mean per-item score.</summary>
public sealed record SubsetScore(int Items, double Accuracy, double MeanScore);

/// <summary>
/// The contamination report of one eval set: how many items share at least one <see cref="N"/>-gram
/// with the training data, and the score on the clean and on the overlapping items. Items whose
/// every text is shorter than N tokens cannot be checked; they count as clean and are reported
/// in <see cref="Unchecked"/>. <see cref="ScoreName"/> says what <see cref="SubsetScore.MeanScore"/> is.
/// </summary>
public sealed record ContaminationResult(string Set, int N, int Items, int Overlapping, int Unchecked, string ScoreName,
    SubsetScore Clean, SubsetScore Overlap)
{
    /// <summary>Share of items with an overlap.</summary>
    public double OverlapShare => Items > 0 ? (double)Overlapping / Items : double.NaN;
}

/// <summary>
/// Flags eval items whose text shares an n-gram with the training data, then splits scores by
/// flag. Texts are tokenized the way training text was; each is checked both as given and with a
/// leading space, because a sentence inside a training document usually follows a space and a
/// BPE tokenizer then encodes its first word differently.
/// </summary>
public static class Contamination
{
    /// <summary>Per item: does any of its texts overlap the index; <paramref name="uncheckable"/> counts items too short to check.</summary>
    public static bool[] Flag(IOverlapIndex index, ITokenizer tokenizer, IReadOnlyList<IReadOnlyList<string>> itemTexts, out int uncheckable)
    {
        var flags = new bool[itemTexts.Count];
        uncheckable = 0;
        for (int i = 0; i < itemTexts.Count; i++)
        {
            bool checkable = false;
            foreach (var text in itemTexts[i])
            {
                var plain = tokenizer.Encode(text);
                var spaced = tokenizer.Encode(" " + text);
                checkable |= plain.Count >= index.N || spaced.Count >= index.N;
                if (index.Overlaps(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(plain))
                    || index.Overlaps(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(spaced)))
                {
                    flags[i] = true;
                    break;
                }
            }
            if (!checkable) uncheckable++;
        }
        return flags;
    }

    /// <summary>The texts of a minimal pair that are checked: both sentences.</summary>
    public static IReadOnlyList<IReadOnlyList<string>> Texts(IReadOnlyList<MinimalPair> pairs)
    {
        var texts = new IReadOnlyList<string>[pairs.Count];
        for (int i = 0; i < pairs.Count; i++) texts[i] = [pairs[i].Good, pairs[i].Bad];
        return texts;
    }

    /// <summary>The texts of a multiple-choice item that are checked: the context followed by each ending.</summary>
    public static IReadOnlyList<IReadOnlyList<string>> Texts(IReadOnlyList<MultipleChoiceItem> items)
    {
        var texts = new IReadOnlyList<string>[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            var t = new string[items[i].Endings.Count];
            for (int k = 0; k < t.Length; k++) t[k] = items[i].Context + " " + items[i].Endings[k];
            texts[i] = t;
        }
        return texts;
    }

    /// <summary>Splits per-item correctness and scores by the overlap flags.</summary>
    public static ContaminationResult Report(string set, int n, bool[] overlaps, int uncheckable, bool[] correct, double[] scores, string scoreName)
    {
        if (overlaps.Length != correct.Length || correct.Length != scores.Length)
            throw new ArgumentException($"Contamination report for {set}: {overlaps.Length} flags, {correct.Length} results and {scores.Length} scores differ in length.");
        int dirty = 0;
        foreach (bool f in overlaps) if (f) dirty++;
        return new ContaminationResult(set, n, overlaps.Length, dirty, uncheckable, scoreName, Subset(overlaps, correct, scores, false), Subset(overlaps, correct, scores, true));
    }

    static SubsetScore Subset(bool[] overlaps, bool[] correct, double[] scores, bool flag)
    {
        int items = 0, right = 0;
        double sum = 0;
        for (int i = 0; i < overlaps.Length; i++)
        {
            if (overlaps[i] != flag) continue;
            items++;
            if (correct[i]) right++;
            sum += scores[i];
        }
        return items == 0 ? new SubsetScore(0, double.NaN, double.NaN) : new SubsetScore(items, (double)right / items, sum / items);
    }
}
