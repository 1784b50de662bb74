namespace Tessera.Data.NGram;

/// <summary>
/// The 2007 baseline (Brants et al., "Large Language Models in Machine Translation"): a 5-gram
/// Stupid Backoff score S(w | context) = f(context·w) / f(context) at the highest order whose
/// n-gram occurs, times α = 0.4 per order backed off; the unigram level is f(w) / N. Counts come
/// from the same suffix arrays, so no separate n-gram tables are stored. Scores are not
/// normalised probabilities (they are what the paper ranks with).
/// </summary>
public static class StupidBackoff
{
    /// <summary>The paper's order.</summary>
    public const int DefaultOrder = 5;
    /// <summary>The paper's backoff factor.</summary>
    public const double DefaultAlpha = 0.4;

    /// <summary>S(<paramref name="token"/> | the last order − 1 tokens of <paramref name="context"/>).</summary>
    public static double Score(NGramStore store, ReadOnlySpan<int> context, int token, int order = DefaultOrder, double alpha = DefaultAlpha, bool validate = true)
    {
        if (order < 1) throw new ArgumentOutOfRangeException(nameof(order), order, "stupid backoff: the order must be ≥ 1.");
        if (validate)
        {
            store.Validate(context, "stupid backoff", allowEmpty: true);
            store.Validate([token], "stupid backoff", allowEmpty: false);
        }
        double factor = 1;
        var shards = store.Shards;
        for (int k = Math.Min(order - 1, context.Length); k >= 0; k--, factor *= alpha)
        {
            var ctx = context[^k..];
            long contextCount = 0, hits = 0;
            for (int s = 0; s < shards.Count; s++)
            {
                var r = k == 0 ? shards[s].All : shards[s].Find(ctx);
                contextCount += r.Count;
                if (!r.IsEmpty) hits += shards[s].Narrow(r, k, token).Count;
            }
            if (hits > 0) return factor * hits / contextCount;
        }
        return 0;
    }
}
