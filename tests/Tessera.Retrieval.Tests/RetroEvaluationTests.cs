using Tessera.Inference;
using Tessera.Model;
using Tessera.Retrieval.Retro;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Tests;

/// <summary><c>tessera eval ralm --layout retro</c>: chunk u+1 scored after its neighbours, checked against the reference engine.</summary>
public class RetroEvaluationTests
{
    static readonly ITokenizer Bytes = TokenizerFiles.Load("bytes");
    const int C = 16;

    [Fact]
    public void Retro_layout_scores_chunk_u_plus_1_after_its_neighbours_as_the_reference_engine_does()
    {
        using var tmp = new TempFolder();
        var (train, validation) = RetroTrainingDataTests.Corpus();
        // The index holds the held-out documents too: the rule must keep each document from reading itself or the other.
        Bm25IndexBuilder.Build(tmp["idx"], [.. train.Concat(validation).Select(d => new SourceDocument(d.Key, d.Text))], new IndexBuildOptions { Shards = 2, PassageWords = 10 });
        using var index = Bm25Index.Open(tmp["idx"]);
        using var model = new Transformer(DenseTests.TinyConfig(), seed: 21);
        using var engine = new BatchingEngine(model);
        int bos = Bytes.SpecialTokens.Id(ChatTemplate.Bos);
        var docs = validation.Select(d => Bytes.Encode(d.Text).ToArray()).ToList();
        // The index holds the evaluated documents under their ids: the id rule.
        var named = validation.Select((d, i) => (d.Key, docs[i])).ToList();

        var r = RetroEvaluation.Run(engine, Bytes, bos, index, named, C, neighbours: 1, maxExamples: 0, seed: 1);
        Assert.Equal("document ids", r.ExclusionRule);
        Assert.Equal(docs.Sum(d => d.Length / C - 2), r.Examples);
        Assert.Equal(r.Examples * (long)C, r.ScoredBytes);   // ASCII: one byte per token
        Assert.Equal(0, r.FillerSlots);
        Assert.True(r.SkippedOwnText > 0, "the index holds each evaluated document, so its own passages must have been passed over");

        // Independent recomputation: the reference engine on the same rows, built here by hand.
        var reference = new ReferenceEngine(model);
        var search = new PassageNeighbours(index, Bytes, C, 1, bos, validation.Select(d => d.Key).ToHashSet());
        var everyDocument = train.Concat(validation).ToList();
        double with = 0, without = 0;
        var byOverlap = new (int Examples, double Without, double With)[3];
        for (int d = 0; d < docs.Count; d++)
        {
            for (int u = 1; (u + 2) * C <= docs[d].Length; u++)
            {
                var context = docs[d][((u - 1) * C)..((u + 2) * C)];
                var neighbour = search.Search(docs[d].AsSpan(u * C, C), validation[d].Key, null)[0];
                // Lined up with chunk u, the neighbour may start inside a passage and run on into the next: find it in the documents' text.
                string text = Bytes.Decode(RetroTrainingDataTests.Trimmed(neighbour, bos));
                Assert.StartsWith("t", Assert.Single(everyDocument, x => x.Text.Contains(text, StringComparison.Ordinal)).Key);   // a training document
                double a = Nats(reference, [bos, .. context]), b = Nats(reference, [bos, .. neighbour, .. context]);
                without += a; with += b;
                // The overlap bucket, by counting chunk u+1's 13-grams found in the neighbour here.
                var next = docs[d][((u + 1) * C)..((u + 2) * C)];
                int hit = Enumerable.Range(0, C - 12).Count(i => Enumerable.Range(0, 2 * C - 12).Any(j => next.AsSpan(i, 13).SequenceEqual(neighbour.AsSpan(j, 13))));
                ref var slot = ref byOverlap[hit == 0 ? 0 : 2 * hit <= C - 12 ? 1 : 2];
                slot = (slot.Examples + 1, slot.Without + a, slot.With + b);
            }
        }
        double bytes = r.ScoredBytes * Math.Log(2);
        // fp32 logits in two engines: per-token log-probabilities agree to ~1e-5, the mean over bytes closer still.
        Assert.Equal(without / bytes, r.BitsPerByteWithout, 1e-4);
        Assert.Equal(with / bytes, r.BitsPerByteWith, 1e-4);
        Assert.NotEqual(r.BitsPerByteWithout, r.BitsPerByteWith, 1e-6);
        Assert.Equal(["0", "(0, 0.5]", "(0.5, 1]"], r.Buckets.Select(x => x.Range));
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(byOverlap[i].Examples, r.Buckets[i].Examples);
            if (byOverlap[i].Examples == 0) { Assert.True(double.IsNaN(r.Buckets[i].BitsPerByteWith)); continue; }
            double scored = byOverlap[i].Examples * (double)C * Math.Log(2);   // ASCII: C bytes per example
            Assert.Equal(byOverlap[i].Without / scored, r.Buckets[i].BitsPerByteWithout, 1e-4);
            Assert.Equal(byOverlap[i].With / scored, r.Buckets[i].BitsPerByteWith, 1e-4);
        }
        Assert.Equal(r.Examples, r.Buckets.Sum(x => x.Examples));

        // A draw of a few examples, and the refusals.
        // Ids the index does not hold: the text rule, and still no evaluated document's text as a neighbour.
        var anonymous = docs.Select((t, i) => ($"file{i}", t)).ToList();
        var byText = RetroEvaluation.Run(engine, Bytes, bos, index, anonymous, C, 1, maxExamples: 5, seed: 2);
        Assert.Equal("text", byText.ExclusionRule);
        Assert.Equal(5, byText.Examples);
        Assert.True(byText.SkippedOwnText > 0);
        Assert.Contains("context length 128", Assert.Throws<ArgumentException>(() => RetroEvaluation.Run(engine, Bytes, bos, index, named, 26, 1, 5, 1)).Message);
        Assert.Contains("3 chunks", Assert.Throws<ArgumentException>(() => RetroEvaluation.Run(engine, Bytes, bos, index, [("x", [1, 2, 3])], C, 1, 5, 1)).Message);
    }

    static double Nats(ReferenceEngine engine, int[] row)
    {
        var ev = engine.Score(row, 0);
        double nats = 0;
        for (int i = row.Length - C; i < row.Length; i++) nats -= ev[i].Logprob;
        return nats;
    }
}
