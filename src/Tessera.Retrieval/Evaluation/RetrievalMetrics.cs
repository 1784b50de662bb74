using Microsoft.Extensions.AI;
using Tessera.Retrieval.Dense;

namespace Tessera.Retrieval.Evaluation;

/// <summary>Quality and latency of one retriever (or funnel stage) over a query set.</summary>
/// <param name="Name">What was measured.</param>
/// <param name="Depth">How many candidates the recall counts.</param>
/// <param name="Recall">Fraction of queries whose relevant document is among the first <paramref name="Depth"/>.</param>
/// <param name="PrecisionAt5">Mean fraction of the top 5 that is relevant (one relevant document per query, so at most 0.2).</param>
/// <param name="HitAt5">Fraction of queries with the relevant document in the top 5.</param>
/// <param name="Mrr">Mean reciprocal rank within <paramref name="Depth"/>.</param>
/// <param name="MeanMilliseconds">Mean latency per query of this retriever or stage.</param>
public sealed record RetrievalScore(string Name, int Depth, double Recall, double PrecisionAt5, double HitAt5, double Mrr, double MeanMilliseconds);

/// <summary>Recall@k, precision@5, hit@5 and MRR from ranked document ids.</summary>
public static class RetrievalMetrics
{
    /// <summary>Scores ranked lists (one per query, document ids best first) against the queries' relevant ids.</summary>
    public static RetrievalScore Score(string name, int depth, IReadOnlyList<LabelledQuery> queries, IReadOnlyList<IReadOnlyList<string>> ranked, double totalMilliseconds)
    {
        double recall = 0, p5 = 0, hit5 = 0, mrr = 0;
        for (int i = 0; i < queries.Count; i++)
        {
            var list = ranked[i];
            int rank = -1;
            for (int r = 0; r < list.Count && r < depth; r++) if (list[r] == queries[i].Relevant) { rank = r; break; }
            if (rank >= 0) { recall++; mrr += 1.0 / (rank + 1); }
            int inTop5 = list.Take(5).Count(d => d == queries[i].Relevant);
            p5 += inTop5 / 5.0; hit5 += inTop5 > 0 ? 1 : 0;
        }
        int n = queries.Count;
        return new RetrievalScore(name, depth, recall / n, p5 / n, hit5 / n, mrr / n, totalMilliseconds / n);
    }

    /// <summary>Exact dense retrieval over a whole corpus with any embedding generator (the "dense alone" rows: our model, MiniLM).</summary>
    public static async Task<RetrievalScore> DenseAlone(string name, IEmbeddingGenerator<string, Embedding<float>> generator, IReadOnlyList<SourceDocument> corpus,
        IReadOnlyList<LabelledQuery> queries, int depth, int batch = 64, Action<string>? progress = null)
        => await DenseAlone(name, generator, corpus, await EmbedCorpus(name, generator, corpus, batch, progress), queries, depth);

    /// <summary>
    /// Every document's embedding, L2-normalised, in corpus order. With <paramref name="cache"/>
    /// (text → vector, from the same generator) only texts not in it are embedded, each once, and
    /// they are added to it: a second corpus that shares most passages with the first (the
    /// validation index of <c>--hold-out-sentence</c>) costs only its new passages.
    /// </summary>
    public static async Task<float[][]> EmbedCorpus(string name, IEmbeddingGenerator<string, Embedding<float>> generator, IReadOnlyList<SourceDocument> corpus,
        int batch = 64, Action<string>? progress = null, IDictionary<string, float[]>? cache = null)
    {
        cache ??= new Dictionary<string, float[]>(StringComparer.Ordinal);
        var missing = corpus.Select(d => d.Text).Where(t => !cache.ContainsKey(t)).Distinct(StringComparer.Ordinal).ToList();
        if (missing.Count < corpus.Count) progress?.Invoke($"{name}: {corpus.Count - missing.Count:N0} of {corpus.Count:N0} documents need no embedding (a repeated text, or cached)");
        for (int i = 0; i < missing.Count; i += batch)
        {
            var chunk = missing.GetRange(i, Math.Min(batch, missing.Count - i));
            var embedded = await generator.GenerateAsync(chunk);
            if (embedded.Count != chunk.Count) throw new InvalidOperationException($"dense retrieval '{name}': {embedded.Count} embeddings for {chunk.Count} texts.");
            for (int j = 0; j < chunk.Count; j++)
            {
                var v = embedded[j].Vector.ToArray();
                AnnBenchmark.Normalise(v);
                cache[chunk[j]] = v;
            }
            if ((i / batch) % 10 == 0) progress?.Invoke($"{name}: embedded {Math.Min(i + batch, missing.Count):N0}/{missing.Count:N0} documents");
        }
        return [.. corpus.Select(d => cache[d.Text])];
    }

    /// <summary>Exact dense retrieval over precomputed document vectors (<see cref="EmbedCorpus"/>); only the queries are embedded here (their time is the latency).</summary>
    public static async Task<RetrievalScore> DenseAlone(string name, IEmbeddingGenerator<string, Embedding<float>> generator, IReadOnlyList<SourceDocument> corpus,
        float[][] vectors, IReadOnlyList<LabelledQuery> queries, int depth)
    {
        if (vectors.Length != corpus.Count || vectors.Length == 0) throw new ArgumentException($"dense retrieval '{name}': {vectors.Length} vectors for {corpus.Count} documents.");
        int dims = vectors[0].Length;
        var exact = new ExactVectorSearch([.. vectors.SelectMany(v => v)], Enumerable.Range(0, corpus.Count).Select(i => (long)i).ToArray(), dims);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var ranked = new List<IReadOnlyList<string>>();
        foreach (var q in queries)
        {
            var v = (await generator.GenerateAsync([q.Query]))[0].Vector.ToArray();
            AnnBenchmark.Normalise(v);
            ranked.Add(exact.Search(v, depth).Select(p => corpus[(int)p.Key].Id).ToList());
        }
        return Score(name, depth, queries, ranked, clock.Elapsed.TotalMilliseconds);
    }
}
