using Tessera.Retrieval.Sparse;

namespace Tessera.Retrieval.Tests;

public class Bm25IndexTests
{
    // A small corpus with varied term statistics: documents about a handful of topics, built from a seed.
    static List<SourceDocument> Corpus(int n, int seed, string prefix = "doc")
    {
        string[] topics = ["river boat water fishing bank", "bank money loan interest credit", "guitar music song chord melody",
                           "planet orbit star telescope comet", "bread flour oven yeast baking", "river valley mountain snow glacier"];
        string[] filler = ["the", "a", "quiet", "old", "new", "great", "small", "morning", "evening", "people", "town", "road"];
        var rng = new Random(seed);
        var docs = new List<SourceDocument>();
        for (int i = 0; i < n; i++)
        {
            var words = topics[rng.Next(topics.Length)].Split(' ');
            var text = string.Join(' ', Enumerable.Range(0, 5 + rng.Next(40)).Select(_ => rng.Next(3) == 0 ? filler[rng.Next(filler.Length)] : words[rng.Next(words.Length)]));
            docs.Add(new SourceDocument($"{prefix}-{i}", text, new DateTimeOffset(2000 + i % 20, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        }
        return docs;
    }

    static List<(long Key, double Score)> Ranked(Bm25Index index, string q, int k)
        => index.Search(q, k).Select(h => (h.Passage.Key, h.Score)).OrderByDescending(p => p.Score).ThenBy(p => p.Key).ToList();

    [Fact]
    public void Sharded_search_scores_equal_one_unsharded_index()
    {
        using var tmp = new TempFolder();
        var docs = Corpus(300, 1);
        Bm25IndexBuilder.Build(tmp["one"], docs, new IndexBuildOptions { Shards = 1 });
        Bm25IndexBuilder.Build(tmp["four"], docs, new IndexBuildOptions { Shards = 4 });
        using var one = Bm25Index.Open(tmp["one"]);
        using var four = Bm25Index.Open(tmp["four"]);
        Assert.Equal(4, four.Manifest.Shards);
        foreach (var q in new[] { "river bank", "money interest", "song on the guitar", "comet orbit star" })
        {
            var a = Ranked(one, q, 1000);
            var b = Ranked(four, q, 1000);
            Assert.NotEmpty(a);
            Assert.Equal(a, b);   // global statistics: identical keys and scores
        }
        // Sanity: the top hit for "yeast" mentions yeast.
        Assert.Contains("yeast", four.Search("yeast", 1)[0].Passage.Text);
    }

    [Fact]
    public void Incremental_build_adds_and_replaces_documents()
    {
        using var tmp = new TempFolder();
        string dir = tmp["idx"];
        var r1 = Bm25IndexBuilder.Build(dir, Corpus(50, 2), new IndexBuildOptions { Shards = 3 });
        Assert.Equal(50, r1.AddedDocuments);
        var r2 = Bm25IndexBuilder.Build(dir, [new SourceDocument("extra", "a zeppelin over the harbour"), new SourceDocument("doc-0", "replaced text about a lighthouse")]);
        Assert.Equal(1, r2.AddedDocuments);
        Assert.Equal(1, r2.ReplacedDocuments);
        Assert.Equal(51, r2.Manifest.Documents);
        using var index = Bm25Index.Open(dir);
        Assert.Equal("extra", index.Search("zeppelin", 5).Single().Passage.DocumentId);
        Assert.Equal("doc-0", index.Search("lighthouse", 5).Single().Passage.DocumentId);
        Assert.Single(index.AllPassages(), p => p.DocumentId == "doc-0");
        // The document ids, each once; the replaced document's old passages are gone.
        Assert.Equal(index.AllPassages().Select(p => p.DocumentId).ToHashSet(), index.DocumentIds());
        Assert.Equal(51, index.DocumentIds().Count);
        Assert.Throws<ArgumentException>(() => Bm25IndexBuilder.Build(dir, [], new IndexBuildOptions { Shards = 5 }));
    }

    [Fact]
    public void A_crash_between_shard_commits_and_the_manifest_leaves_the_last_good_index()
    {
        using var tmp = new TempFolder();
        string dir = tmp["idx"];
        Bm25IndexBuilder.Build(dir, Corpus(80, 3), new IndexBuildOptions { Shards = 3 });
        List<(long, double)> before;
        using (var index = Bm25Index.Open(dir)) before = Ranked(index, "river bank money", 100);

        // The "crash": shard 0 and 1 have committed new documents, the manifest was never rewritten.
        var crash = new IOException("simulated crash");
        var thrown = Assert.Throws<IOException>(() => Bm25IndexBuilder.Build(dir, Corpus(80, 4, "new"),
            new IndexBuildOptions { AfterShardCommit = s => { if (s == 1) throw crash; } }));
        Assert.Same(crash, thrown);
        using (var index = Bm25Index.Open(dir))
        {
            Assert.Equal(before, Ranked(index, "river bank money", 100));
            Assert.DoesNotContain(index.AllPassages(), p => p.DocumentId.StartsWith("new-"));
        }

        // The next build starts from the good state and discards the orphaned commits.
        var r = Bm25IndexBuilder.Build(dir, [new SourceDocument("after", "zeppelin")]);
        Assert.Equal(81, r.Manifest.Documents);
        using (var index = Bm25Index.Open(dir))
        {
            Assert.Equal(81, index.AllPassages().Select(p => p.DocumentId).Distinct().Count());
            Assert.DoesNotContain(index.AllPassages(), p => p.DocumentId.StartsWith("new-"));
        }
    }

    [Fact]
    public void Bad_queries_and_bad_index_folders_give_clear_errors()
    {
        using var tmp = new TempFolder();
        string dir = tmp["idx"];
        Bm25IndexBuilder.Build(dir, Corpus(20, 5), new IndexBuildOptions { Shards = 2 });
        using (var index = Bm25Index.Open(dir))
        {
            Assert.Contains("empty", Assert.Throws<ArgumentException>(() => index.Search("   ", 5)).Message);
            Assert.Contains("characters", Assert.Throws<ArgumentException>(() => index.Search(new string('a', QueryTerms.MaxChars + 1), 5)).Message);
            Assert.Contains("no letters or digits", Assert.Throws<ArgumentException>(() => index.Search("🙂 ☃ → ★", 5)).Message);
            Assert.Contains("stop words", Assert.Throws<ArgumentException>(() => index.Search("the of and", 5)).Message);
            Assert.Empty(index.Search("Ελληνικά 日本語", 5));   // other scripts are analysed; nothing matches
        }
        Assert.Contains("index not found", Assert.Throws<DirectoryNotFoundException>(() => Bm25Index.Open(tmp["missing"])).Message);

        File.WriteAllText(Path.Combine(dir, IndexManifest.FileName), "{ not json");
        Assert.Contains("corrupt", Assert.Throws<InvalidDataException>(() => Bm25Index.Open(dir)).Message);

        string dir2 = tmp["idx2"];
        Bm25IndexBuilder.Build(dir2, Corpus(20, 6), new IndexBuildOptions { Shards = 2 });
        foreach (var f in Directory.GetFiles(Path.Combine(dir2, "shard-1"), "segments_*")) File.Delete(f);
        var e = Assert.Throws<InvalidDataException>(() => Bm25Index.Open(dir2));
        Assert.Contains("shard-1", e.Message);

        string dir3 = tmp["partial"];
        Directory.CreateDirectory(Path.Combine(dir3, "shard-0"));
        Assert.Contains("index.json is missing", Assert.Throws<InvalidDataException>(() => Bm25Index.Open(dir3)).Message);
    }

    [Fact]
    public void Chunks_cover_every_word_once_within_the_limit()
    {
        var rng = new Random(7);
        var text = string.Join("", Enumerable.Range(0, 2000).Select(i => (rng.Next(30) == 0 ? "\n\n" : " ") + "w" + i));
        var spans = DocumentSource.Chunk(text, 50);
        var words = spans.SelectMany(s => text.Substring(s.Start, s.Length).Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.Equal(text.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries), words);
        Assert.All(spans, s => Assert.InRange(text.Substring(s.Start, s.Length).Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Length, 1, 50));
        Assert.True(spans.Count >= 40);
    }
}
