using Tessera.Inference;
using Tessera.Model;
using Tessera.Retrieval.Dense;
using Tessera.Retrieval.Evaluation;
using Tessera.Retrieval.Expansion;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Tests;

public class FunnelTests
{
    static readonly ITokenizer Bytes = TokenizerFiles.Load("bytes");

    [Fact]
    public void Funnel_stages_narrow_the_candidates_and_likelihood_is_the_engines_score()
    {
        using var tmp = new TempFolder();
        string dir = tmp["idx"];
        var docs = Enumerable.Range(0, 60).Select(i => new SourceDocument($"d{i}", $"river bank number {i} water boat {(i % 3 == 0 ? "fishing" : "rowing")}",
            new DateTimeOffset(2000 + i % 20, 1, 1, 0, 0, 0, TimeSpan.Zero))).ToList();
        Bm25IndexBuilder.Build(dir, docs, new IndexBuildOptions { Shards = 2 });
        using var model = new Transformer(DenseTests.TinyConfig(), seed: 13);
        using var engine = new BatchingEngine(model);
        using var gen = new ModelEmbeddingGenerator(engine, Bytes, null, "tiny");
        using (var s = Bm25Index.Open(dir)) DenseStage.Build(s, gen);
        using var sparse = Bm25Index.Open(dir);
        using var hnsw = DenseStage.Open(dir, sparse.Manifest, gen.Dimensions);
        var funnel = new SearchFunnel(sparse, hnsw, gen, engine, Bytes);
        var stages = funnel.Run("fishing boat", new FunnelOptions { SparseK = 40, DenseK = 10, FinalK = 3 });
        Assert.Equal(["bm25", "dense", "likelihood"], stages.Select(s => s.Name).ToArray());
        Assert.Equal(40, stages[0].Hits.Count);
        Assert.Equal(10, stages[1].Hits.Count);
        Assert.Equal(3, stages[2].Hits.Count);
        // Each stage picks from the previous stage's candidates only.
        Assert.All(stages[1].Hits, h => Assert.Contains(stages[0].Hits, b => b.Passage.Key == h.Passage.Key));
        Assert.All(stages[2].Hits, h => Assert.Contains(stages[1].Hits, b => b.Passage.Key == h.Passage.Key));
        // The likelihood stage (weight 1) orders by mean log p(query | passage), computed independently here with the slow reference engine.
        var reference = new ReferenceEngine(model);
        var q = Bytes.Encode(" fishing boat");
        double LL(string passage)
        {
            var ids = Bytes.Encode(passage).Concat(q).ToList();
            var ev = reference.Score(ids, 0);
            return Enumerable.Range(ids.Count - q.Count, q.Count).Average(i => (double)ev[i].Logprob);
        }
        var want = stages[1].Hits.OrderByDescending(h => LL(h.Passage.Text)).ThenBy(h => h.Passage.Key).Take(3).Select(h => h.Passage.Key);
        Assert.Equal(want, stages[2].Hits.Select(h => h.Passage.Key));
        Assert.All(stages, s => Assert.True(s.Milliseconds >= 0));
    }

    [Fact]
    public void Recency_prior_prefers_newer_passages_at_equal_relevance()
    {
        Passage P(long key, int year) => new(key, $"d{key}", 0, 1, "x", new DateTimeOffset(year, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var hits = new List<SearchHit> { new(P(1, 1990), 2.0), new(P(2, 2020), 2.0), new(P(3, 2000), 1.0) };
        var ranked = SearchFunnel.RecencyPrior(hits, 365);
        Assert.Equal(2, ranked[0].Passage.Key);
        Assert.Throws<ArgumentOutOfRangeException>(() => SearchFunnel.RecencyPrior(hits, 0));
    }

    [Fact]
    public void Metrics_count_recall_precision_and_reciprocal_rank()
    {
        var qs = new List<LabelledQuery> { new("a", "x"), new("b", "y") };
        var ranked = new List<IReadOnlyList<string>> { new[] { "q", "x", "r" }, new[] { "z", "w", "v", "u", "t", "y" } };
        var s = RetrievalMetrics.Score("t", 6, qs, ranked, 10);
        Assert.Equal(1.0, s.Recall);
        Assert.Equal(0.1, s.PrecisionAt5, 12);   // (1/5 + 0) / 2
        Assert.Equal(0.5, s.HitAt5);
        Assert.Equal((0.5 + 1.0 / 6) / 2, s.Mrr, 12);
        Assert.Equal(5, s.MeanMilliseconds);
    }
}

public class WordNetTests
{
    [WordNetFact]
    public void WordNet_synonyms_and_glosses_load()
    {
        var wn = WordNet.Load();
        Assert.True(wn.SynsetCount > 100_000);
        Assert.Contains("automobile", wn.Synonyms("car"));
        var (def, ex) = WordNet.SplitGloss("a motor vehicle with four wheels; \"he needs a car to get to work\"");
        Assert.Equal("a motor vehicle with four wheels", def);
        Assert.Equal(["he needs a car to get to work"], ex);
    }

    [WordNetFact]
    public void Reverse_dictionary_task_hides_the_definition_and_expansion_adds_at_most_50_terms()
    {
        var wn = WordNet.Load();
        var (corpus, queries) = ReverseDictionaryTask.Generate(wn, 600, 40, seed: 3);
        Assert.Equal(600, corpus.Count);
        Assert.Equal(40, queries.Count);
        var byId = corpus.ToDictionary(d => d.Id);
        foreach (var q in queries)
        {
            Assert.True(byId.ContainsKey(q.Relevant));
            Assert.All(corpus, d => Assert.DoesNotContain(q.Query, d.Text));   // the held-out definition is nowhere in the corpus
        }
        using var tmp = new TempFolder();
        Bm25IndexBuilder.Build(tmp["idx"], corpus, new IndexBuildOptions { Shards = 2, PassageWords = 10_000 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var expander = new QueryExpander(index, wn);
        using var analyzer = Bm25Index.CreateAnalyzer();
        foreach (var q in queries.Take(10))
        {
            var original = QueryTerms.Analyze(analyzer, q.Query);
            var expanded = expander.Expand(q.Query);
            Assert.All(original, p => Assert.Equal(p.Value, expanded[p.Key]));
            Assert.InRange(expanded.Count - original.Count, 0, 50);
            Assert.All(expanded.Where(p => !original.ContainsKey(p.Key)), p => Assert.InRange(p.Value, 0f, 0.3f + 1e-6f));
        }
        // The task is not trivial and not hopeless for BM25.
        double recall = queries.Count(q => index.Search(q.Query, 100).Any(h => h.Passage.DocumentId == q.Relevant)) / (double)queries.Count;
        Assert.InRange(recall, 0.05, 0.99);
    }

    [WordNetFact]
    public void Bi_encoder_training_pairs_never_use_a_held_out_headword()
    {
        var wn = WordNet.Load();
        var pairs = ReverseDictionaryTask.TrainPairs(wn, 2000, seed: 2);
        Assert.Equal(2000, pairs.Count);
        var trained = pairs.Select(p => p.Positive[..p.Positive.IndexOf(". ", StringComparison.Ordinal)]).ToHashSet();
        Assert.Equal(2000, trained.Count);                                    // one pair per headword
        Assert.All(trained, l => Assert.False(ReverseDictionaryTask.IsHeldOut(l)));
        Assert.All(pairs, p => Assert.DoesNotContain(p.Query, p.Positive));   // the query's definition is left out of its entry
        var (_, queries) = ReverseDictionaryTask.Generate(wn, 400, 60, seed: 2, heldOutTargets: true);
        Assert.All(queries, q => Assert.True(ReverseDictionaryTask.IsHeldOut(q.Relevant), q.Relevant));
        Assert.Empty(queries.Select(q => q.Relevant).Intersect(trained));
        // The split is about one headword in five.
        var lemmas = wn.Lemmas.Take(20_000).ToList();
        Assert.InRange(lemmas.Count(ReverseDictionaryTask.IsHeldOut) / (double)lemmas.Count, 0.17, 0.23);
    }
}

/// <summary>A fact skipped, with the install command, where WordNet (Debian wordnet-base) is absent.</summary>
public sealed class WordNetFactAttribute : FactAttribute
{
    public WordNetFactAttribute()
    {
        if (!WordNet.IsInstalled()) Skip = $"WordNet is not installed in {WordNet.DefaultFolder}: skipped (apt-get install wordnet-base; .ci/run installs it).";
    }
}

public class FunnelMixTests
{
    static Passage P(long key) => new(key, $"d{key}", 0, 1, "x", null);

    [Fact]
    public void Mix_is_the_weighted_sum_of_standardised_scores_and_one_signal_is_the_single_weight_rerank()
    {
        var hits = Enumerable.Range(0, 6).Select(i => new SearchHit(P(i), 6 - i)).ToList();       // BM25 order 0..5
        double[] a = [0.1, 0.5, 0.2, 0.9, 0.0, 0.3], b = [1, 0, 0, 0, 0, 2];
        static double[] Z(double[] x)
        {
            double m = x.Average(), sd = Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / x.Length);
            return x.Select(v => (v - m) / sd).ToArray();
        }
        var zb = Z(hits.Select(h => h.Score).ToArray());
        var za = Z(a);
        var zbb = Z(b);
        var mixed = SearchFunnel.Mix(hits, [a, b], [0.3, 0.5], 4);
        var want = Enumerable.Range(0, 6).Select(i => (Key: (long)i, S: 0.2 * zb[i] + 0.3 * za[i] + 0.5 * zbb[i]))
            .OrderByDescending(x => x.S).ThenBy(x => x.Key).Take(4).ToList();
        Assert.Equal(want.Select(x => x.Key), mixed.Select(h => h.Passage.Key));
        Assert.All(mixed.Zip(want), x => Assert.Equal(x.Second.S, x.First.Score, 9));
        // Weight 0 keeps the BM25 order; weight 1 on a signal is that signal's order.
        Assert.Equal([0L, 1, 2, 3, 4, 5], SearchFunnel.Mix(hits, [a], [0], 6).Select(h => h.Passage.Key));
        Assert.Equal([3L, 1, 5, 2, 0, 4], SearchFunnel.Mix(hits, [a], [1], 6).Select(h => h.Passage.Key));
        Assert.Throws<ArgumentException>(() => SearchFunnel.Mix(hits, [a, b], [0.5], 3));
    }

    [Fact]
    public void Weight_search_puts_weight_on_the_signal_that_ranks_the_relevant_document_first()
    {
        Assert.Equal(11, FunnelWeightSearch.Grid(1).Count);
        Assert.Equal(66, FunnelWeightSearch.Grid(2).Count);
        Assert.All(FunnelWeightSearch.Grid(3, 5), w => Assert.True(w.Sum() <= 1 + 1e-12 && w.All(x => x >= 0)));
        var rng = new Random(7);
        var queries = new List<LabelledQuery>();
        var cands = new List<IReadOnlyList<SearchHit>>();
        var scores = new List<IReadOnlyList<double[]>>();
        for (int q = 0; q < 30; q++)
        {
            int rel = rng.Next(20);
            queries.Add(new LabelledQuery($"q{q}", $"d{rel}"));
            cands.Add(Enumerable.Range(0, 20).Select(i => new SearchHit(P(i), rng.NextDouble())).ToList());   // BM25: noise
            scores.Add([Enumerable.Range(0, 20).Select(_ => rng.NextDouble()).ToArray(),                      // signal 0: noise
                        Enumerable.Range(0, 20).Select(i => i == rel ? 1.0 : rng.NextDouble() * 0.5).ToArray()]); // signal 1: finds it
        }
        var t = FunnelWeightSearch.Tune(queries, cands, scores, k: 20);
        Assert.Equal(0.2, t.PrecisionAt5, 12);
        Assert.Equal(1.0, t.Mrr, 12);
        Assert.True(t.Weights[1] > t.Weights[0] && t.Weights[1] > 1 - t.Weights.Sum(), $"weights {string.Join(", ", t.Weights)}");
        Assert.Equal(66, t.Tried);
    }

    [Fact]
    public void Expansion_choice_keeps_the_candidate_set_whose_tuned_rerank_scores_better_on_validation()
    {
        var rng = new Random(11);
        var queries = new List<LabelledQuery>();
        var good = new List<IReadOnlyList<SearchHit>>();
        var bad = new List<IReadOnlyList<SearchHit>>();
        var goodScores = new List<IReadOnlyList<double[]>>();
        var badScores = new List<IReadOnlyList<double[]>>();
        for (int q = 0; q < 30; q++)
        {
            int rel = rng.Next(20);
            queries.Add(new LabelledQuery($"q{q}", $"d{rel}"));
            // "good": the relevant passage is a candidate and the dense signal ranks it first.
            good.Add(Enumerable.Range(0, 20).Select(i => new SearchHit(P(i), rng.NextDouble())).ToList());
            goodScores.Add([Enumerable.Range(0, 20).Select(i => i == rel ? 1.0 : rng.NextDouble() * 0.5).ToArray()]);
            // "bad": the relevant passage is missing from the candidates (ids 20..39), so no weight can find it.
            bad.Add(Enumerable.Range(20, 20).Select(i => new SearchHit(P(i), rng.NextDouble())).ToList());
            badScores.Add([Enumerable.Range(0, 20).Select(_ => rng.NextDouble()).ToArray()]);
        }
        var (plainWins, expandedSide, plainSide) = FunnelWeightSearch.TuneExpansion(queries, bad, badScores, good, goodScores, k: 20);
        Assert.False(plainWins.Expand);
        Assert.Equal(0.2, plainWins.PrecisionAt5, 12);
        Assert.Equal(22, plainWins.Tried);   // 11 weights for each candidate set
        Assert.Equal(0, expandedSide.PrecisionAt5, 12);   // the relevant passage is never among those candidates
        Assert.True(expandedSide.Expand);
        Assert.Equal(plainWins.Weights, plainSide.Weights);
        var expandedWins = FunnelWeightSearch.TuneExpansion(queries, good, goodScores, bad, badScores, k: 20).Chosen;
        Assert.True(expandedWins.Expand);
        Assert.Equal(0.2, expandedWins.PrecisionAt5, 12);
        Assert.Equal(FunnelWeightSearch.Tune(queries, good, goodScores, k: 20).Weights, expandedWins.Weights);
        // A tie keeps expansion (the funnel's default).
        Assert.True(FunnelWeightSearch.TuneExpansion(queries, good, goodScores, good, goodScores, k: 20).Chosen.Expand);
    }
}
