using Tessera.Inference;
using Tessera.Model;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Tests;

public class RalmTests
{
    static readonly ITokenizer Bytes = TokenizerFiles.Load("bytes");

    static (TempFolder Tmp, Bm25Index Index) Index()
    {
        var tmp = new TempFolder();
        var docs = new[]
        {
            new SourceDocument("zeppelin", "The zeppelin Hindenburg burned at Lakehurst in 1937."),
            new SourceDocument("comet", "Halley's comet returns every seventy-six years."),
            new SourceDocument("guitar", "A classical guitar has nylon strings."),
        };
        Bm25IndexBuilder.Build(tmp["idx"], docs, new IndexBuildOptions { Shards = 2 });
        return (tmp, Bm25Index.Open(tmp["idx"]));
    }

    [Fact]
    public async Task Generation_retrieves_every_stride_with_the_last_q_tokens_and_prepends_the_passage()
    {
        var (tmp, index) = Index();
        using var _ = tmp; using var __ = index;
        using var model = new Transformer(DenseTests.TinyConfig(), seed: 17);
        using var engine = new BatchingEngine(model);
        var ralm = new InContextRalm(engine, Bytes, index, null, new RalmOptions { Stride = 4, QueryTokens = 12 });
        var prompt = Bytes.Encode("Tell me about the zeppelin");
        var tokens = new List<RalmToken>();
        await foreach (var t in ralm.GenerateAsync(prompt, 10, SamplingOptions.Greedy)) tokens.Add(t);
        Assert.Equal(10, tokens.Count);
        Assert.Equal("zeppelin", tokens[0].Retrieved.Single().DocumentId);   // last 12 bytes: "he zeppelin"

        // The first stride equals plain greedy generation from [passage "\n\n" prompt].
        var context = Bytes.Encode("The zeppelin Hindenburg burned at Lakehurst in 1937.\n\n").Concat(prompt).ToList();
        var plain = new List<int>();
        await foreach (var e in engine.GenerateAsync(new GenerationRequest(context, 4, SamplingOptions.Greedy))) plain.Add(e.Id);
        Assert.Equal(plain, tokens.Take(4).Select(t => t.Event.Id));
    }

    [Fact]
    public void Scoring_with_retrieval_is_the_engines_log_likelihood_of_each_block_after_its_passage()
    {
        var (tmp, index) = Index();
        using var _ = tmp; using var __ = index;
        using var model = new Transformer(DenseTests.TinyConfig(), seed: 18);
        using var engine = new BatchingEngine(model);
        var reference = new ReferenceEngine(model);
        var ralm = new InContextRalm(engine, Bytes, index, null, new RalmOptions { Stride = 8, QueryTokens = 16 });
        var doc = Bytes.Encode("Is the comet coming back? Halley returns.");
        var (nats, bytes) = ralm.Score(doc, retrieve: true, documentId: "held-out");
        // Independent recomputation with the reference engine: block by block, same context layout.
        double want = 0;
        for (int start = 0; start < doc.Count; start += 8)
        {
            int n = Math.Min(8, doc.Count - start);
            var before = doc.Take(start).ToList();
            var passages = start > 0 ? ralm.Retrieve(before, "held-out") : [];
            var ctx = ralm.Context(passages, before, n);
            int skip = ctx.Count == 0 ? 1 : 0;
            int first = ctx.Count + skip;
            ctx.AddRange(doc.Skip(start).Take(n));
            var ev = reference.Score(ctx, 0);
            for (int i = first; i < ctx.Count; i++) want -= ev[i].Logprob;
        }
        Assert.Equal(want, nats, 1e-3 * Math.Max(1, Math.Abs(want)));
        Assert.Equal(doc.Count - 1, bytes);   // byte tokenizer: one byte per token, the first token unscored
        var (plainNats, _) = ralm.Score(doc, retrieve: false);
        Assert.NotEqual(plainNats, nats);
        Assert.Throws<ArgumentException>(() => new InContextRalm(engine, Bytes, index, null, new RalmOptions { Stride = 0 }));
    }
}
