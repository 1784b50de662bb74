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

    /// <summary>
    /// For every position t of <paramref name="sequence"/>, the ∞-gram evidence a mixing gate can use
    /// (<see cref="NGramEvidence"/>): the ∞-gram probability of token t (the batched pass above), the
    /// same probability under the suffix one token shorter (the backoff: found afresh, one range
    /// search per position), and the number of distinct continuations of the longest suffix and the
    /// count of the commonest one. Equals <see cref="NGramStore.Evidence"/> at every position.
    /// </summary>
    public static NGramEvidence[] Evidence(NGramStore store, ReadOnlySpan<int> sequence)
    {
        var longest = Infinity(store, sequence);
        var result = new NGramEvidence[sequence.Length];
        for (int t = 0; t < sequence.Length; t++)
            result[t] = store.Evidence(longest[t], sequence[..t], sequence[t]);
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
    /// Stupid Backoff scores (<see cref="NGram.StupidBackoff"/>) at every position, equal to
    /// <see cref="NGram.StupidBackoff.Score"/> at each. Shared work: the context x[t−k, t) of
    /// position t is x[t−k, t−1) (position t−1's context one order lower) extended by x[t−1], which
    /// position t−1 already narrowed to count its target, so each position costs one narrowing per order.
    /// </summary>
    public static double[] StupidBackoff(NGramStore store, ReadOnlySpan<int> sequence, int order = NGram.StupidBackoff.DefaultOrder, double alpha = NGram.StupidBackoff.DefaultAlpha)
    {
        if (order < 1) throw new ArgumentOutOfRangeException(nameof(order), order, "stupid backoff: the order must be ≥ 1.");
        store.Validate(sequence, "stupid backoff batch", allowEmpty: true);
        var shards = store.Shards;
        int S = shards.Count;
        var scores = new double[sequence.Length];
        // context[k][s]: range of x[t−k, t) in shard s; target[k][s]: range of x[t−k, t].
        var context = new SaRange[order][];
        var target = new SaRange[order][];
        for (int k = 0; k < order; k++) { context[k] = new SaRange[S]; target[k] = new SaRange[S]; }
        for (int s = 0; s < S; s++) context[0][s] = shards[s].All;
        for (int t = 0; t < sequence.Length; t++)
        {
            int top = Math.Min(order - 1, t);
            for (int k = 0; k <= top; k++)
                for (int s = 0; s < S; s++)
                    target[k][s] = context[k][s].IsEmpty ? context[k][s] : shards[s].Narrow(context[k][s], k, sequence[t]);
            double factor = 1;
            for (int k = top; k >= 0; k--, factor *= alpha)
            {
                long contextCount = 0, hits = 0;
                for (int s = 0; s < S; s++) { contextCount += context[k][s].Count; hits += target[k][s].Count; }
                if (hits > 0) { scores[t] = factor * hits / contextCount; break; }
            }
            // Next position's contexts: x[t+1−k, t+1) = x[t−(k−1), t], i.e. this position's target one order lower.
            for (int k = Math.Min(order - 1, t + 1); k >= 1; k--) (context[k], target[k - 1]) = (target[k - 1], context[k]);
        }
        return scores;
    }
}
