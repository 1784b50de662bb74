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

    /// <summary>Same as <see cref="DenseWeight"/> for the log-likelihood stage.</summary>
    public double LikelihoodWeight { get; init; } = 1.0;

    /// <summary>Expand the query (WordNet synonyms and corpus co-occurrence) before BM25.</summary>
    public bool Expand { get; init; }

    /// <summary>Recency prior: a passage's final score loses one standard deviation per this many days of age relative to the newest candidate (null: off).</summary>
    public double? RecencyHalfLifeDays { get; init; }
}

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
/// </summary>
public sealed class SearchFunnel(Bm25Index sparse, HnswVectorIndex? vectors = null, ModelEmbeddingGenerator? embedder = null,
    IGenerationEngine? scorer = null, ITokenizer? tokenizer = null, QueryExpander? expander = null)
{
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

        if (vectors is not null && embedder is not null)
        {
            clock.Restart();
            var q = embedder.Embed(query);
            var cos = hits.Select(h => vectors.Get(h.Passage.Key) is { } v ? Dot(q, v) : double.NegativeInfinity).ToArray();
            hits = Rerank(hits, cos, options.DenseWeight, options.DenseK);
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
    static List<SearchHit> Rerank(IReadOnlyList<SearchHit> hits, double[] score, double weight, int k)
    {
        var zNew = Standardise(score);
        var zOld = Standardise(hits.Select(h => h.Score).ToArray());
        return hits.Select((h, i) => new SearchHit(h.Passage, weight * zNew[i] + (1 - weight) * zOld[i]))
            .OrderByDescending(h => h.Score).ThenBy(h => h.Passage.Key).Take(k).ToList();
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
