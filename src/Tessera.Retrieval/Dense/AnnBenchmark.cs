using System.Diagnostics;

namespace Tessera.Retrieval.Dense;

/// <summary>One ANN measurement: HNSW against exact search on the same vectors and queries, in the same run.</summary>
/// <param name="Vectors">Vectors indexed.</param>
/// <param name="Dimensions">Vector width.</param>
/// <param name="Queries">Queries timed.</param>
/// <param name="K">Neighbours per query.</param>
/// <param name="RecallAtK">Mean fraction of the exact top-k that HNSW returned.</param>
/// <param name="ExactQps">Exact search queries per second (one thread).</param>
/// <param name="HnswQps">HNSW queries per second (one thread).</param>
/// <param name="BuildSeconds">HNSW build time.</param>
/// <param name="ExpansionSearch">The search beam width used.</param>
public sealed record AnnResult(int Vectors, int Dimensions, int Queries, int K, double RecallAtK, double ExactQps, double HnswQps, double BuildSeconds, int ExpansionSearch)
{
    /// <summary>HNSW throughput over exact throughput.</summary>
    public double Speedup => HnswQps / ExactQps;
}

/// <summary>
/// Recall@k and throughput of <see cref="HnswVectorIndex"/> against <see cref="ExactVectorSearch"/>.
/// The vectors are L2-normalised draws from a mixture of Gaussian clusters (seeded), a stand-in for
/// sentence embeddings, which cluster by topic; queries are fresh draws from the same mixture.
/// Both searches run on one thread, so the ratio compares algorithms, not core counts.
/// </summary>
public static class AnnBenchmark
{
    /// <summary>Runs the measurement.</summary>
    public static AnnResult Run(int vectors, int dimensions, int queries, int k = 10, int clusters = 1000, int expansionSearch = 64, int seed = 1, Action<string>? progress = null)
    {
        var rng = new Random(seed);
        var centres = new float[clusters * dimensions];
        for (int i = 0; i < centres.Length; i++) centres[i] = Gaussian(rng);
        float[] Draw()
        {
            int c = rng.Next(clusters);
            var v = new float[dimensions];
            for (int d = 0; d < dimensions; d++) v[d] = centres[c * dimensions + d] + 0.6f * Gaussian(rng);
            Normalise(v);
            return v;
        }
        var data = new float[(long)vectors * dimensions];
        var keys = new long[vectors];
        using var hnsw = new HnswVectorIndex(dimensions, expansionSearch: expansionSearch);
        var clock = Stopwatch.StartNew();
        var rows = new float[vectors][];
        for (int i = 0; i < vectors; i++) { rows[i] = Draw(); rows[i].CopyTo(data, (long)i * dimensions); keys[i] = i; }
        clock.Restart();
        progress?.Invoke($"bench ann: adding {vectors:N0} vectors to the HNSW graph");
        hnsw.Add(keys, rows);
        double build = clock.Elapsed.TotalSeconds;
        var exact = new ExactVectorSearch(data, keys, dimensions);
        var qs = new float[queries][];
        for (int i = 0; i < queries; i++) qs[i] = Draw();

        var truth = new (long Key, float Similarity)[queries][];
        clock.Restart();
        for (int i = 0; i < queries; i++) truth[i] = exact.Search(qs[i], k);
        double exactSeconds = clock.Elapsed.TotalSeconds;

        var found = new (long Key, float Similarity)[queries][];
        for (int i = 0; i < Math.Min(queries, 20); i++) hnsw.Search(qs[i], k);   // warm the JIT and caches
        clock.Restart();
        for (int i = 0; i < queries; i++) found[i] = hnsw.Search(qs[i], k);
        double hnswSeconds = clock.Elapsed.TotalSeconds;

        double recall = 0;
        for (int i = 0; i < queries; i++)
        {
            var want = truth[i].Select(p => p.Key).ToHashSet();
            recall += found[i].Count(p => want.Contains(p.Key)) / (double)want.Count;
        }
        return new AnnResult(vectors, dimensions, queries, k, recall / queries, queries / exactSeconds, queries / hnswSeconds, build, expansionSearch);
    }

    static float Gaussian(Random r) => (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));

    /// <summary>Scales <paramref name="v"/> to unit length (zero stays zero).</summary>
    public static void Normalise(Span<float> v)
    {
        double n = 0;
        foreach (float x in v) n += (double)x * x;
        if (n == 0) return;
        float inv = (float)(1 / Math.Sqrt(n));
        for (int i = 0; i < v.Length; i++) v[i] *= inv;
    }
}
