using System.Diagnostics;
using Tessera.Inference;
using Tessera.Retrieval.Dense;
using Tessera.Retrieval.Expansion;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval;

/// <summary>Options of <see cref="SearchFunnel"/>.</summary>
public sealed record FunnelOptions
{
    /// <summary>Passages the BM25 stage keeps.</summary>
    public int SparseK { get; init; } = 1000;

    /// <summary>Passages the dense rerank keeps.</summary>
    public int DenseK { get; init; } = 100;

    /// <summary>Passages the log-likelihood rerank returns.</summary>
    public int FinalK { get; init; } = 5;

    /// <summary>
    /// Weight of the stage's own score against the previous stage's in each rerank, both
    /// standardised over the candidates (1: the stage's score alone; 0: keep the previous order).
    /// </summary>
    public double DenseWeight { get; init; } = 1.0;

    /// <summary>
    /// Per-signal weights of the dense rerank when it mixes several dense scores: one per signal in
    /// <see cref="SearchFunnel.DenseSignals"/> order (the index's own vectors first when present);
    /// the previous stage's score gets 1 − their sum. Null: <see cref="DenseWeight"/> split evenly.
    /// </summary>
    public IReadOnlyList<double>? DenseWeights { get; init; }

    /// <summary>Same as <see cref="DenseWeight"/> for the log-likelihood stage.</summary>
    public double LikelihoodWeight { get; init; } = 1.0;

    /// <summary>Expand the query (WordNet synonyms and corpus co-occurrence) before BM25.</summary>
    public bool Expand { get; init; }

    /// <summary>Recency prior: a passage's final score loses one standard deviation per this many days of age relative to the newest candidate (null: off).</summary>
    public double? RecencyHalfLifeDays { get; init; }
}

/// <summary>
/// A dense score for the funnel's dense rerank: how a query is embedded and where a candidate
/// passage's vector is (by passage key; null when the passage has none). Lets the rerank mix
/// embedders beside the index's own vectors (e.g. an off-the-shelf sentence embedder).
/// </summary>
/// <param name="Name">Signal name (for reports).</param>
/// <param name="EmbedQuery">Query embedding.</param>
/// <param name="PassageVector">A passage's vector by key.</param>
public sealed record DenseSignal(string Name, Func<string, float[]> EmbedQuery, Func<long, float[]?> PassageVector);

/// <summary>Candidates and timing of one funnel stage.</summary>
/// <param name="Name">Stage name.</param>
/// <param name="Hits">What the stage kept, best first.</param>
/// <param name="Milliseconds">Wall time of the stage.</param>
public sealed record FunnelStage(string Name, IReadOnlyList<SearchHit> Hits, double Milliseconds);

/// <summary>
/// The search funnel: BM25 top-<see cref="FunnelOptions.SparseK"/> (optionally on an expanded
/// query) → rerank by embedding cosine to top-<see cref="FunnelOptions.DenseK"/> → rerank by the
/// model's own log-likelihood of the query given each passage (mean log p per query token,
/// "query likelihood") to top-<see cref="FunnelOptions.FinalK"/>. Each stage is optional beyond
/// BM25; every stage's candidates and latency are returned so recall can be measured per stage.
/// The dense rerank can mix several dense signals (<paramref name="extraDense"/>) with BM25.
/// </summary>
public sealed class SearchFunnel(Bm25Index sparse, HnswVectorIndex? vectors = null, ModelEmbeddingGenerator? embedder = null,
    IGenerationEngine? scorer = null, ITokenizer? tokenizer = null, QueryExpander? expander = null, IReadOnlyList<DenseSignal>? extraDense = null)
{
    /// <summary>The dense rerank's signals in weight order: the index's own vectors (when given), then the extra ones.</summary>
    public IReadOnlyList<DenseSignal> DenseSignals { get; } =
        [.. vectors is not null && embedder is not null ? [new DenseSignal(embedder.ModelId, embedder.Embed, vectors.Get)] : Array.Empty<DenseSignal>(), .. extraDense ?? []];

    /// <summary>Each dense signal's cosine between <paramref name="query"/> and every hit (−∞ for a passage without a vector), signals in <see cref="DenseSignals"/> order.</summary>
    public IReadOnlyList<double[]> DenseScores(string query, IReadOnlyList<SearchHit> hits) => DenseSignals.Select(s =>
    {
        var q = s.EmbedQuery(query);
        return hits.Select(h => s.PassageVector(h.Passage.Key) is { } v ? Dot(q, v) : double.NegativeInfinity).ToArray();
    }).ToList();

    /// <summary>Runs the funnel for <paramref name="query"/>; the last stage's hits are the answer.</summary>
    public IReadOnlyList<FunnelStage> Run(string query, FunnelOptions options)
    {
        var stages = new List<FunnelStage>();
        var clock = Stopwatch.StartNew();
        IReadOnlyList<SearchHit> hits;
        if (options.Expand)
        {
            if (expander is null) throw new InvalidOperationException("search funnel: query expansion was asked for but no expander was given.");
            hits = sparse.Search(expander.Expand(query), options.SparseK);
        }
        else hits = sparse.Search(query, options.SparseK);
        stages.Add(new FunnelStage(options.Expand ? "bm25+expansion" : "bm25", hits, clock.Elapsed.TotalMilliseconds));

        if (DenseSignals.Count > 0)
        {
            clock.Restart();
            var weights = options.DenseWeights ?? Enumerable.Repeat(options.DenseWeight / DenseSignals.Count, DenseSignals.Count).ToList();
            if (weights.Count != DenseSignals.Count)
                throw new ArgumentException($"search funnel: {weights.Count} dense weights for {DenseSignals.Count} dense signals ({string.Join(", ", DenseSignals.Select(d => d.Name))}).");
            hits = Mix(hits, DenseScores(query, hits), weights, options.DenseK);
            stages.Add(new FunnelStage("dense", hits, clock.Elapsed.TotalMilliseconds));
        }

        if (scorer is not null && tokenizer is not null)
        {
            clock.Restart();
            var queryIds = tokenizer.Encode(" " + query);
            var ll = hits.Select(h => QueryLikelihood(h.Passage.Text, queryIds)).ToArray();
            hits = Rerank(hits, ll, options.LikelihoodWeight, options.FinalK);
            stages.Add(new FunnelStage("likelihood", hits, clock.Elapsed.TotalMilliseconds));
        }
        else if (hits.Count > options.FinalK) hits = hits.Take(options.FinalK).ToList();

        if (options.RecencyHalfLifeDays is { } days)
        {
            clock.Restart();
            hits = RecencyPrior(hits, days);
            stages.Add(new FunnelStage("recency", hits, clock.Elapsed.TotalMilliseconds));
        }
        return stages;
    }

    /// <summary>Mean log p(query tokens | passage) under the scoring model; the passage is cut from the left to fit the context.</summary>
    public double QueryLikelihood(string passage, IReadOnlyList<int> queryIds)
    {
        int ctx = scorer!.Config.ContextLength;
        var q = queryIds.Take(Math.Max(1, ctx / 2)).ToList();
        var p = tokenizer!.Encode(passage);
        int room = ctx - q.Count - 1;
        if (p.Count > room) p = p.GetRange(p.Count - room, room);
        var ids = new List<int>(p.Count + q.Count + 1);
        if (tokenizer.SpecialTokens.TryGetId(ChatTemplate.Bos, out int bos)) ids.Add(bos);
        ids.AddRange(p);
        int first = ids.Count;
        ids.AddRange(q);
        if (first == 0) return double.NegativeInfinity;
        var events = scorer.Score(ids, 0);
        double sum = 0;
        for (int i = first; i < ids.Count; i++) sum += events[i].Logprob;
        return sum / q.Count;
    }

    /// <summary>Reorders by w·z(new) + (1−w)·z(previous rank score) and keeps <paramref name="k"/>.</summary>
    static List<SearchHit> Rerank(IReadOnlyList<SearchHit> hits, double[] score, double weight, int k) => Mix(hits, [score], [weight], k);

    /// <summary>
    /// Reorders <paramref name="hits"/> by Σᵢ wᵢ·z(scoresᵢ) + (1 − Σᵢ wᵢ)·z(hit score), each score
    /// standardised over the candidates (non-finite ones count as −10 standard deviations), and keeps the best <paramref name="k"/> (ties by passage key).
    /// </summary>
    public static List<SearchHit> Mix(IReadOnlyList<SearchHit> hits, IReadOnlyList<double[]> scores, IReadOnlyList<double> weights, int k)
    {
        if (scores.Count != weights.Count) throw new ArgumentException($"search funnel: {scores.Count} score lists for {weights.Count} weights.");
        var z = scores.Select(s => s.Length == hits.Count ? Standardise(s) : throw new ArgumentException($"search funnel: {s.Length} scores for {hits.Count} hits.")).ToList();
        var zOld = Standardise(hits.Select(h => h.Score).ToArray());
        double rest = 1 - weights.Sum();
        return hits.Select((h, i) =>
        {
            double v = rest * zOld[i];
            for (int j = 0; j < z.Count; j++) v += weights[j] * z[j][i];
            return new SearchHit(h.Passage, v);
        }).OrderByDescending(h => h.Score).ThenBy(h => h.Passage.Key).Take(k).ToList();
    }

    static double[] Standardise(double[] x)
    {
        var finite = x.Where(double.IsFinite).ToArray();
        if (finite.Length == 0) return new double[x.Length];
        double mean = finite.Average(), sd = Math.Sqrt(finite.Sum(v => (v - mean) * (v - mean)) / finite.Length);
        if (sd == 0) sd = 1;
        return x.Select(v => double.IsFinite(v) ? (v - mean) / sd : -10).ToArray();
    }

    /// <summary>Subtracts age / half-life (in standard deviations of the scores) from each score, age measured from the newest dated candidate; undated passages are untouched.</summary>
    public static List<SearchHit> RecencyPrior(IReadOnlyList<SearchHit> hits, double halfLifeDays)
    {
        if (halfLifeDays <= 0) throw new ArgumentOutOfRangeException(nameof(halfLifeDays), halfLifeDays, "recency prior: the half-life must be > 0 days");
        var newest = hits.Where(h => h.Passage.Date is not null).Select(h => h.Passage.Date!.Value).DefaultIfEmpty().Max();
        var z = Standardise(hits.Select(h => h.Score).ToArray());
        return hits.Select((h, i) => new SearchHit(h.Passage, z[i] - (h.Passage.Date is { } d ? (newest - d).TotalDays / halfLifeDays : 0)))
            .OrderByDescending(h => h.Score).ThenBy(h => h.Passage.Key).ToList();
    }

    static double Dot(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);
}
