namespace Tessera.Retrieval.Evaluation;

/// <summary>Weights of the dense rerank chosen on a validation query set, with what they scored there.</summary>
/// <param name="Weights">One weight per dense signal (BM25 gets 1 − their sum).</param>
/// <param name="PrecisionAt5">Validation precision@5 of the rerank's top 5 at these weights.</param>
/// <param name="Mrr">Validation mean reciprocal rank within the rerank's top <c>k</c>.</param>
/// <param name="Tried">Weight vectors tried.</param>
/// <param name="Expand">Whether the first stage's candidates come from the expanded query (<see cref="FunnelWeightSearch.TuneExpansion"/> chooses; <see cref="FunnelWeightSearch.Tune"/> leaves it as the caller's candidates were made, true by default).</param>
public sealed record TunedWeights(IReadOnlyList<double> Weights, double PrecisionAt5, double Mrr, int Tried, bool Expand = true);

/// <summary>
/// Grid search of the funnel's dense-rerank weights (<see cref="SearchFunnel.Mix"/>) on validation
/// queries: every weight vector on the simplex grid (each weight a multiple of the step, the sum at
/// most 1) is scored by precision@5 of the reranked candidates, ties broken by MRR and then by the
/// grid order (smaller dense weights first). The candidates and scores are computed once, so the
/// search costs no model calls. <see cref="TuneExpansion"/> also chooses whether the candidates come
/// from the expanded or the plain query.
/// </summary>
public static class FunnelWeightSearch
{
    /// <summary>Weight vectors of <paramref name="signals"/> entries, each a multiple of 1/<paramref name="steps"/>, summing to at most 1, in lexicographic order.</summary>
    public static List<double[]> Grid(int signals, int steps = 10)
    {
        if (signals < 1 || steps < 1) throw new ArgumentException($"funnel weight search: need ≥ 1 signal and ≥ 1 step, got {signals} and {steps}.");
        var all = new List<double[]>();
        var cur = new int[signals];
        void Walk(int i, int left)
        {
            if (i == signals) { all.Add(cur.Select(c => c / (double)steps).ToArray()); return; }
            for (int c = 0; c <= left; c++) { cur[i] = c; Walk(i + 1, left - c); }
        }
        Walk(0, steps);
        return all;
    }

    /// <summary>
    /// The best weights for queries <paramref name="queries"/>, whose first-stage candidates are
    /// <paramref name="candidates"/> and whose dense scores per signal are <paramref name="scores"/>
    /// (<see cref="SearchFunnel.DenseScores"/>). MRR counts the top <paramref name="k"/>.
    /// </summary>
    public static TunedWeights Tune(IReadOnlyList<LabelledQuery> queries, IReadOnlyList<IReadOnlyList<SearchHit>> candidates,
        IReadOnlyList<IReadOnlyList<double[]>> scores, int k = 100, int steps = 10)
    {
        if (queries.Count == 0 || candidates.Count != queries.Count || scores.Count != queries.Count)
            throw new ArgumentException($"funnel weight search: {queries.Count} queries, {candidates.Count} candidate lists, {scores.Count} score lists (must be equal and > 0).");
        int signals = scores[0].Count;
        TunedWeights? best = null;
        var grid = Grid(signals, steps);
        foreach (var w in grid)
        {
            var ranked = new List<IReadOnlyList<string>>(queries.Count);
            for (int i = 0; i < queries.Count; i++)
                ranked.Add(SearchFunnel.Mix(candidates[i], scores[i], w, k).Select(h => h.Passage.DocumentId).ToList());
            var s = RetrievalMetrics.Score("tune", k, queries, ranked, 0);
            var t = new TunedWeights(w, s.PrecisionAt5, s.Mrr, grid.Count);
            if (best is null || Beats(t, best)) best = t;
        }
        return best!;
    }

    /// <summary>
    /// Chooses per task whether the funnel's first stage expands the query: the weights are tuned
    /// (<see cref="Tune"/>) once on the candidates of the expanded query and once on those of the
    /// plain query, and the better validation result wins (precision@5, then MRR; a tie keeps
    /// expansion). The chosen result's <see cref="TunedWeights.Tried"/> counts both searches;
    /// <c>Expanded</c> and <c>Plain</c> are the two searches' own results (for reporting what the
    /// other choice would have scored).
    /// </summary>
    public static (TunedWeights Chosen, TunedWeights Expanded, TunedWeights Plain) TuneExpansion(IReadOnlyList<LabelledQuery> queries,
        IReadOnlyList<IReadOnlyList<SearchHit>> expandedCandidates, IReadOnlyList<IReadOnlyList<double[]>> expandedScores,
        IReadOnlyList<IReadOnlyList<SearchHit>> plainCandidates, IReadOnlyList<IReadOnlyList<double[]>> plainScores, int k = 100, int steps = 10)
    {
        var expanded = Tune(queries, expandedCandidates, expandedScores, k, steps) with { Expand = true };
        var plain = Tune(queries, plainCandidates, plainScores, k, steps) with { Expand = false };
        var best = Beats(plain, expanded) ? plain : expanded;
        return (best with { Tried = expanded.Tried + plain.Tried }, expanded, plain);
    }

    /// <summary>Strictly better on validation: higher precision@5, or equal precision@5 and higher MRR.</summary>
    static bool Beats(TunedWeights a, TunedWeights b) =>
        a.PrecisionAt5 > b.PrecisionAt5 + 1e-12 || (Math.Abs(a.PrecisionAt5 - b.PrecisionAt5) <= 1e-12 && a.Mrr > b.Mrr + 1e-12);
}
