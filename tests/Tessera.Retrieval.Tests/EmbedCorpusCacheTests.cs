using Microsoft.Extensions.AI;
using Tessera.Retrieval.Evaluation;

namespace Tessera.Retrieval.Tests;

/// <summary><see cref="RetrievalMetrics.EmbedCorpus"/> with a text cache: each distinct text is embedded once across corpora, and the vectors are the uncached ones.</summary>
public class EmbedCorpusCacheTests
{
    /// <summary>A deterministic embedder that records every text it was asked for.</summary>
    sealed class CountingGenerator : IEmbeddingGenerator<string, Embedding<float>>
    {
        public List<string> Seen { get; } = [];

        public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
        {
            var list = values.ToList();
            Seen.AddRange(list);
            return Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(list.Select(t => new Embedding<float>(new float[] { t.Length, t[0], 1 }))));
        }

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose() { }
    }

    static SourceDocument Doc(string id, string text) => new(id, text, null);

    [Fact]
    public async Task A_second_corpus_embeds_only_its_new_texts_and_gets_the_same_vectors()
    {
        var a = new List<SourceDocument> { Doc("1", "alpha"), Doc("2", "beta gamma"), Doc("3", "alpha") };
        var b = new List<SourceDocument> { Doc("1", "alpha"), Doc("2", "beta"), Doc("3", "beta gamma") };
        var gen = new CountingGenerator();
        var cache = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var va = await RetrievalMetrics.EmbedCorpus("t", gen, a, batch: 2, cache: cache);
        Assert.Equal(["alpha", "beta gamma"], gen.Seen);   // the repeated text once
        var vb = await RetrievalMetrics.EmbedCorpus("t", gen, b, batch: 2, cache: cache);
        Assert.Equal(["alpha", "beta gamma", "beta"], gen.Seen);   // only the new text
        // The cached vectors are the ones an uncached call computes: normalised, in corpus order.
        var fresh = new CountingGenerator();
        var wantA = await RetrievalMetrics.EmbedCorpus("t", fresh, a, batch: 2);
        var wantB = await RetrievalMetrics.EmbedCorpus("t", fresh, b, batch: 2);
        Assert.Equal(wantA.Select(v => string.Join(",", v)), va.Select(v => string.Join(",", v)));
        Assert.Equal(wantB.Select(v => string.Join(",", v)), vb.Select(v => string.Join(",", v)));
        float[] beta = [4, 'b', 1];
        double norm = Math.Sqrt(beta.Sum(x => (double)x * x));
        for (int d = 0; d < 3; d++) Assert.Equal(beta[d] / norm, vb[1][d], 1e-6);
        Assert.NotEqual(vb[1], vb[2]);
    }
}
