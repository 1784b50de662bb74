namespace Tessera.Data.NGram;

/// <summary>
/// Batched lookups: one call answers a query at every position of a whole sequence, sharing the
/// suffix-array work between neighbouring positions. The ∞-gram pass keeps the range of the
/// current longest suffix; moving one token right first narrows that range by the new token (two
/// binary searches on one token column) and only when the extended suffix has no continuation
/// drops tokens from the left and searches afresh. The longest suffix grows by at most one per
/// position, so a sequence of T tokens needs at most 2T range computations in total, where
/// one-query-per-position needs T binary searches on the suffix length, each of several full searches.
/// </summary>
public static class NGramBatch
{
    /// <summary>
    /// For every position t of <paramref name="sequence"/>, the ∞-gram probability of token t given
    /// tokens [0, t) (position 0 has the empty context: the unigram). Equals
    /// <see cref="NGramStore.Probability"/> at every position.
    /// </summary>
    public static InfinityProbability[] Infinity(NGramStore store, ReadOnlySpan<int> sequence)
    {
        store.Validate(sequence, "∞-gram batch", allowEmpty: true);
        var result = new InfinityProbability[sequence.Length];
        var shards = store.Shards;
        int S = shards.Count;
        var ranges = store.AllRanges();      // range of the current suffix x[t−k, t)
        var next = new SaRange[S];
        int k = 0;
        for (int t = 0; t < sequence.Length; t++)
        {
            // Invariant: x[t−k, t) is the longest suffix of x[0, t) that occurs followed by a token.
            long total = 0, hits = 0;
            for (int s = 0; s < S; s++)
            {
                total += shards[s].Continuations(ranges[s], k);
                next[s] = shards[s].Narrow(ranges[s], k, sequence[t]);
                hits += next[s].Count;
            }
            result[t] = new InfinityProbability(k, total, hits);
            if (t + 1 == sequence.Length) break;

            // Advance: try x[t−k, t] (already narrowed), then shorter suffixes of x[0, t].
            (ranges, next) = (next, ranges);
            k++;
            while (k > 0 && store.Continuations(ranges, k) == 0)
            {
                k--;
                ranges = k == 0 ? store.AllRanges() : store.Find(sequence.Slice(t + 1 - k, k));
            }
        }
        return result;
    }

    /// <summary>Runs the single-sequence ∞-gram pass over several sequences (each starts with an empty context).</summary>
    public static InfinityProbability[][] Infinity(NGramStore store, IReadOnlyList<int[]> sequences)
    {
        var all = new InfinityProbability[sequences.Count][];
        for (int i = 0; i < sequences.Count; i++) all[i] = Infinity(store, sequences[i]);
        return all;
    }

    /// <summary>
    /// Stupid Backoff scores (<see cref="StupidBackoff"/>) at every position: each position's
    /// contexts are narrowed by its token, reusing one context range per order.
    /// </summary>
    public static double[] StupidBackoff(NGramStore store, ReadOnlySpan<int> sequence, int order = NGram.StupidBackoff.DefaultOrder, double alpha = NGram.StupidBackoff.DefaultAlpha)
    {
        store.Validate(sequence, "stupid backoff batch", allowEmpty: true);
        var scores = new double[sequence.Length];
        for (int t = 0; t < sequence.Length; t++)
            scores[t] = NGram.StupidBackoff.Score(store, sequence[..t], sequence[t], order, alpha, validate: false);
        return scores;
    }
}
