using System.IO.Compression;
using Tessera.Data;
using Tessera.Retrieval.Evaluation;
using Tessera.Retrieval.Sparse;

namespace Tessera.Retrieval.Tests;

/// <summary>The SOTU cloze-passage retrieval task: relevance labels, the validation split, and BM25 on it (the bench's --quick size).</summary>
public class SotuClozeRetrievalTests
{
    static List<Speech> Later(TempFolder tmp)
    {
        string file = Path.Combine(EmbeddedCorpus.Materialize(tmp["corpus"]), "sotu.txt.gz");
        using var gz = new GZipStream(File.OpenRead(file), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        return CorpusSwapTask.ParseSotu(reader.ReadToEnd()).Where(s => s.Year > 1950).ToList();
    }

    [Fact]
    public void Each_query_has_the_one_passage_holding_its_sentence_and_validation_queries_are_disjoint()
    {
        using var tmp = new TempFolder();
        var speeches = Later(tmp).Take(8).ToList();
        var (corpus, queries) = SotuClozeRetrievalTask.Generate(speeches, 40, seed: 3);
        Assert.Equal(40, queries.Count);
        Assert.Equal(corpus.Count, corpus.Select(d => d.Id).Distinct().Count());
        // Passages are whole sentences and together are the addresses' sentences, in order.
        foreach (var s in speeches)
            Assert.Equal(string.Join(" ", CorpusSwapTask.Sentences(s.Text)),
                string.Join(" ", corpus.Where(d => d.Id.StartsWith(s.Id + "#", StringComparison.Ordinal)).Select(d => d.Text)));
        // The label is the one passage holding the completed sentence of the cloze question the query came from.
        var questions = CorpusSwapTask.Questions(speeches, 120, seed: 3);
        var byId = corpus.ToDictionary(d => d.Id);
        foreach (var q in queries)
        {
            var source = questions.Where(c => SotuClozeRetrievalTask.Query(c) == q.Query).ToList();
            Assert.NotEmpty(source);
            string full = source[0].Filled(source[0].Answer);
            Assert.Contains(full, byId[q.Relevant].Text);
            Assert.Single(corpus, d => d.Text.Contains(full, StringComparison.Ordinal));
            Assert.DoesNotContain(ClozeQuestion.Blank, q.Query);
        }
        var exclude = questions.Select(c => c.Filled(c.Answer)).ToHashSet(StringComparer.Ordinal);
        var (_, validation) = SotuClozeRetrievalTask.Generate(speeches, 20, seed: 1003, exclude: exclude);
        Assert.NotEmpty(validation);
        Assert.Empty(validation.Select(v => v.Query).Intersect(queries.Select(q => q.Query)));
    }

    [Fact]
    public void Bm25_finds_the_labelled_passage_for_most_cloze_queries()
    {
        using var tmp = new TempFolder();
        var speeches = Later(tmp).Take(8).ToList();
        var (corpus, queries) = SotuClozeRetrievalTask.Generate(speeches, 30, seed: 1);
        Bm25IndexBuilder.Build(tmp["idx"], corpus, new IndexBuildOptions { Shards = 2, PassageWords = 10_000 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var ranked = queries.Select(q => (IReadOnlyList<string>)index.Search(q.Query, 100).Select(h => h.Passage.DocumentId).ToList()).ToList();
        var score = RetrievalMetrics.Score("bm25", 100, queries, ranked, 0);
        // The query is the passage's own sentence less one word: a wrong label would put hit@5 near 5/passages.
        Assert.True(score.HitAt5 >= 0.8, $"BM25 hit@5 {score.HitAt5:F3} on {queries.Count} queries over {corpus.Count} passages");
        Assert.Equal(score.HitAt5 / 5, score.PrecisionAt5, 12);
    }
}

public class SotuClozeHoldOutTests
{
    [Fact]
    public void Held_out_sentences_are_removed_from_their_passage_and_appear_nowhere()
    {
        using var tmp = new TempFolder();
        string file = Path.Combine(EmbeddedCorpus.Materialize(tmp["corpus"]), "sotu.txt.gz");
        using var gz = new GZipStream(File.OpenRead(file), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        var speeches = CorpusSwapTask.ParseSotu(reader.ReadToEnd()).Where(s => s.Year > 1950).Take(6).ToList();
        var (plain, plainQs) = SotuClozeRetrievalTask.Generate(speeches, 30, seed: 2);
        var (held, heldQs) = SotuClozeRetrievalTask.Generate(speeches, 30, seed: 2, holdOutSentence: true);
        Assert.Equal(plain.Select(d => d.Id), held.Select(d => d.Id));
        var questions = CorpusSwapTask.Questions(speeches, 90, seed: 2);
        var heldById = held.ToDictionary(d => d.Id);
        var plainById = plain.ToDictionary(d => d.Id);
        foreach (var q in heldQs)
        {
            var c = questions.First(x => SotuClozeRetrievalTask.Query(x) == q.Query);
            string full = c.Filled(c.Answer);
            Assert.Contains(full, plainById[q.Relevant].Text);
            Assert.DoesNotContain(held, d => d.Text.Contains(full, StringComparison.Ordinal));
            Assert.NotEmpty(heldById[q.Relevant].Text);
        }
        // Passages that gave no query are unchanged.
        var used = heldQs.Select(q => q.Relevant).ToHashSet();
        Assert.All(held.Where(d => !used.Contains(d.Id)), d => Assert.Equal(plainById[d.Id].Text, d.Text));
    }
}
