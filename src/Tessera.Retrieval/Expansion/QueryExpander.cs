using Lucene.Net.Analysis;
using Tessera.Retrieval.Sparse;

namespace Tessera.Retrieval.Expansion;

/// <summary>Options of <see cref="QueryExpander"/>.</summary>
public sealed record ExpansionOptions
{
    /// <summary>Most terms added to a query (synonyms and co-occurring terms together).</summary>
    public int MaxTerms { get; init; } = 50;

    /// <summary>Query weight of a WordNet synonym term (an original term weighs its count, ≥ 1).</summary>
    public float SynonymWeight { get; init; } = 0.3f;

    /// <summary>Query weight of the strongest co-occurring term (others scale down with their frequency).</summary>
    public float CooccurrenceWeight { get; init; } = 0.3f;

    /// <summary>Top passages of a first BM25 pass whose terms count as co-occurring with the query (0: no co-occurrence terms).</summary>
    public int FeedbackPassages { get; init; } = 10;

    /// <summary>WordNet senses of each query word whose lemmas are added.</summary>
    public int SynonymSenses { get; init; } = 2;
}

/// <summary>
/// Query expansion in the 2001 search engine's spirit: each query word brings its WordNet synonyms,
/// and the corpus brings the terms that co-occur with the query's words in the passages a first
/// BM25 pass ranks highest (pseudo-relevance feedback, ranked by frequency there × rarity in the
/// corpus). At most <see cref="ExpansionOptions.MaxTerms"/> terms are added, with weights below
/// the original terms', so the expansion can widen recall without drowning the query.
/// </summary>
public sealed class QueryExpander(Bm25Index index, WordNet? wordNet, ExpansionOptions? options = null)
{
    readonly ExpansionOptions o = options ?? new ExpansionOptions();

    /// <summary>The options in force.</summary>
    public ExpansionOptions Options => o;

    /// <summary>The query's analysed terms with the expansion terms added (original terms keep their weights).</summary>
    public Dictionary<string, float> Expand(string query)
    {
        using var analyzer = Bm25Index.CreateAnalyzer();
        var terms = QueryTerms.Analyze(analyzer, query);
        var added = new Dictionary<string, float>(StringComparer.Ordinal);
        int budget = o.MaxTerms;

        if (wordNet is not null)
        {
            var words = query.ToLowerInvariant().Split((char[])[' ', '\t', '\n', ',', ';', '.', ':', '(', ')', '"', '!', '?'], StringSplitOptions.RemoveEmptyEntries);
            foreach (var word in words)
                foreach (var syn in wordNet.Synonyms(word, o.SynonymSenses))
                    foreach (var t in QueryTerms.Tokens(analyzer, syn))
                        if (budget > 0 && !terms.ContainsKey(t) && !added.ContainsKey(t) && index.DocFreq(t) > 0) { added[t] = o.SynonymWeight; budget--; }
        }

        if (o.FeedbackPassages > 0 && budget > 0)
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var hit in index.Search(terms, o.FeedbackPassages))
                foreach (var t in QueryTerms.Tokens(analyzer, hit.Passage.Text).Distinct())
                    if (!terms.ContainsKey(t) && !added.ContainsKey(t)) counts[t] = counts.GetValueOrDefault(t) + 1;
            double n = Math.Max(1, index.Passages);
            var ranked = counts.Where(p => p.Value >= 2)
                .Select(p => (Term: p.Key, Score: p.Value * Math.Log(n / Math.Max(1, index.DocFreq(p.Key)))))
                .Where(p => p.Score > 0).OrderByDescending(p => p.Score).ThenBy(p => p.Term, StringComparer.Ordinal).Take(budget).ToList();
            double top = ranked.Count > 0 ? ranked[0].Score : 1;
            foreach (var (t, s) in ranked) added[t] = (float)(o.CooccurrenceWeight * s / top);
        }

        foreach (var (t, w) in added) terms[t] = w;
        return terms;
    }
}
