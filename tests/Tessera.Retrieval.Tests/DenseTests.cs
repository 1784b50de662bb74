using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Retrieval.Dense;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Tests;

public class DenseTests
{
    static readonly ITokenizer Bytes = TokenizerFiles.Load("bytes");

    internal static ModelConfig TinyConfig(int dim = 32) => new()
    {
        VocabSize = Bytes.VocabSize, Dim = dim, Layers = 2, Heads = 2, KvHeads = 1, HiddenDim = 48, Experts = 2, TopK = 1, ContextLength = 128, TiedEmbeddings = false,
    };

    [Fact]
    public async Task Embeddings_are_the_reference_engines_mean_pooled_hidden_states()
    {
        using var model = new Transformer(TinyConfig(), seed: 11);
        using var engine = new BatchingEngine(model);
        using var gen = new ModelEmbeddingGenerator(engine, Bytes, null, "tiny");
        var reference = new ReferenceEngine(model);
        string[] texts = ["a river bank", "interest on a loan", "x"];
        var result = await ((IEmbeddingGenerator<string, Embedding<float>>)gen).GenerateAsync(texts);
        Assert.Equal(3, result.Count);
        for (int i = 0; i < texts.Length; i++)
        {
            var want = reference.Embed(Bytes.Encode(texts[i]));
            var got = result[i].Vector.Span;
            Assert.Equal(32, got.Length);
            double norm = 0;
            for (int d = 0; d < got.Length; d++) { Assert.Equal(want[d], got[d], 1e-4f); norm += got[d] * got[d]; }
            Assert.Equal(1.0, norm, 1e-4);
        }
        Assert.Equal(32, gen.Metadata.DefaultModelDimensions);
        await Assert.ThrowsAsync<ArgumentException>(() => gen.GenerateAsync(["a"], new EmbeddingGenerationOptions { Dimensions = 64 }));
    }

    [Fact]
    public void Hnsw_recall_at_10_against_exact_search_on_clustered_vectors()
    {
        var r = AnnBenchmark.Run(vectors: 4000, dimensions: 32, queries: 100, k: 10, clusters: 100);
        Assert.True(r.RecallAtK >= 0.95, $"recall@10 {r.RecallAtK:F3}");
        Assert.True(r.HnswQps > 0 && r.ExactQps > 0);
    }

    [Fact]
    public void Exact_search_returns_the_true_top_k_in_order()
    {
        var rng = new Random(3);
        int n = 500, d = 8;
        var data = new float[n * d];
        for (int i = 0; i < data.Length; i++) data[i] = (float)rng.NextDouble() - 0.5f;
        var keys = Enumerable.Range(0, n).Select(i => (long)i * 7).ToArray();
        var exact = new ExactVectorSearch(data, keys, d);
        var q = Enumerable.Range(0, d).Select(_ => (float)rng.NextDouble()).ToArray();
        var got = exact.Search(q, 5);
        var want = Enumerable.Range(0, n).Select(i => (Key: keys[i], S: Enumerable.Range(0, d).Sum(j => (double)q[j] * data[i * d + j])))
            .OrderByDescending(p => p.S).Take(5).Select(p => p.Key).ToArray();
        Assert.Equal(want, got.Select(p => p.Key).ToArray());
    }

    [Fact]
    public void Dense_stage_builds_reopens_and_refuses_a_model_of_another_width()
    {
        using var tmp = new TempFolder();
        string dir = tmp["idx"];
        var docs = new[] { "the river bank was muddy", "the bank raised its interest rate", "a guitar has six strings", "comets orbit the sun" }
            .Select((t, i) => new SourceDocument($"d{i}", t)).ToList();
        Bm25IndexBuilder.Build(dir, docs, new IndexBuildOptions { Shards = 2 });
        using var model = new Transformer(TinyConfig(), seed: 12);
        using var engine = new BatchingEngine(model);
        using var gen = new ModelEmbeddingGenerator(engine, Bytes, null, "tiny");
        using (var sparse = Bm25Index.Open(dir)) DenseStage.Build(sparse, gen);
        var m = IndexManifest.Load(dir);
        Assert.Equal(32, m.Dense!.Dimensions);
        Assert.Equal(4, m.Dense.Count);
        using (var hnsw = DenseStage.Open(dir, m, 32))
        {
            var self = hnsw.Search(gen.Embed(docs[2].Text), 1);
            Assert.Equal(docs[2].Text, Bm25Index.Open(dir).AllPassages().Single(p => p.Key == self[0].Key).Text);
            Assert.Contains("64-dimensional vector", Assert.Throws<ArgumentException>(() => hnsw.Search(new float[64], 1)).Message);
        }
        var e = Assert.Throws<InvalidDataException>(() => DenseStage.Open(dir, m, 64));
        Assert.Contains("embedding-dimension mismatch", e.Message);
        Assert.Contains("32", e.Message);

        // Extending the index drops the now-stale dense stage rather than serving vectors for the wrong passages.
        Bm25IndexBuilder.Build(dir, [new SourceDocument("d9", "a new page")]);
        Assert.Null(IndexManifest.Load(dir).Dense);
        Assert.Contains("no dense stage", Assert.Throws<InvalidDataException>(() => DenseStage.Open(dir, IndexManifest.Load(dir), 32)).Message);
    }

    [Fact]
    public async Task Vector_store_collection_upserts_searches_filters_and_deletes()
    {
        var rng = new Random(5);
        using var c = new PassageVectorCollection("test", 16);
        var records = Enumerable.Range(0, 300).Select(i => new PassageRecord
        {
            Key = i, DocumentId = $"doc{i % 3}", Text = $"passage {i}",
            Vector = Enumerable.Range(0, 16).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(),
        }).ToList();
        await c.UpsertAsync(records);
        VectorStoreCollection<long, PassageRecord> api = c;
        var top = await api.SearchAsync(records[42].Vector, 3).ToListAsync();
        Assert.Equal(42, top[0].Record.Key);
        Assert.Equal(1.0, top[0].Score!.Value, 1e-4);
        var filtered = await api.SearchAsync(records[42].Vector, 5, new VectorSearchOptions<PassageRecord> { Filter = r => r.DocumentId == "doc1" }).ToListAsync();
        Assert.Equal(5, filtered.Count);
        Assert.All(filtered, r => Assert.Equal("doc1", r.Record.DocumentId));
        Assert.Equal("passage 7", (await api.GetAsync(7))!.Text);
        Assert.Equal(100, await api.GetAsync(r => r.DocumentId == "doc2", 1000).CountAsync());
        await api.DeleteAsync(42);
        Assert.Null(await api.GetAsync(42));
        Assert.NotEqual(42, (await api.SearchAsync(records[42].Vector, 1).ToListAsync())[0].Record.Key);
        await Assert.ThrowsAsync<ArgumentException>(() => api.UpsertAsync(new PassageRecord { Key = 1, Vector = new float[8] }));
        await Assert.ThrowsAsync<ArgumentException>(async () => await api.SearchAsync(new float[8], 1).ToListAsync());
    }
}
