using FsCheck;
using FsCheck.Fluent;
using Tessera.Data.NGram;

namespace Tessera.Data.Tests;

/// <summary>
/// The ∞-gram store against a brute-force scan of the same token streams. Small alphabets make
/// n-grams repeat, small shard sizes put many occurrences across shard boundaries (documents are
/// split there too), and queries are drawn both at random and from the corpus itself so long
/// matches are exercised.
/// </summary>
public sealed class NGramStoreTests
{
    static readonly TokenizerIdentity TestTokenizer = new("test", 6, "fingerprint-of-the-test-vocabulary");
    const int Vocab = 6;

    /// <summary>A corpus (documents), a shard size and queries.</summary>
    public sealed record Case(int[][] Docs, int ShardTokens, int[][] Queries);

    static Gen<Case> Cases(int maxAlphabet)
    {
        var alphabet = Gen.Choose(1, maxAlphabet);
        return alphabet.SelectMany(a =>
        {
            var doc = Gen.Choose(0, a - 1).ArrayOf().Select(d => d.Length > 40 ? d[..40] : d);
            var docs = doc.ArrayOf().Select(ds => ds.Length > 8 ? ds[..8] : ds);
            var random = Gen.Choose(0, a - 1).ArrayOf().Select(q => q.Length > 7 ? q[..7] : q);
            return Gen.Zip(Gen.Zip(docs, Gen.Choose(1, 50)), Gen.Zip(random.ArrayOf(), Gen.Choose(0, 1_000_000).ArrayOf()))
                .Select(x =>
                {
                    var ((ds, shard), (randomQueries, picks)) = x;
                    // Corpus substrings as queries too: several of them cross the shard boundaries.
                    var stream = ds.SelectMany(d => d).ToArray();
                    var fromCorpus = new List<int[]>();
                    for (int i = 0; i + 1 < picks.Length && stream.Length > 0; i += 2)
                    {
                        int start = picks[i] % stream.Length, len = 1 + picks[i + 1] % 12;
                        fromCorpus.Add(stream[start..Math.Min(stream.Length, start + len)]);
                    }
                    return new Case(ds, shard, [.. randomQueries, .. fromCorpus]);
                });
        });
    }

    /// <summary>The shards the builder makes: the concatenated stream cut every shardTokens tokens.</summary>
    static List<int[]> BruteShards(Case c)
    {
        var stream = c.Docs.SelectMany(d => d).ToArray();
        var shards = new List<int[]>();
        for (int i = 0; i < stream.Length; i += c.ShardTokens) shards.Add(stream[i..Math.Min(stream.Length, i + c.ShardTokens)]);
        return shards;
    }

    static bool At(int[] s, int p, int[] q)
    {
        if (p + q.Length > s.Length) return false;
        for (int k = 0; k < q.Length; k++) if (s[p + k] != q[k]) return false;
        return true;
    }

    static long BruteCount(List<int[]> shards, int[] q)
    {
        long n = 0;
        foreach (var s in shards) for (int p = 0; p < s.Length; p++) if (At(s, p, q)) n++;
        return n;
    }

    static SortedDictionary<int, long> BruteNext(List<int[]> shards, int[] ctx)
    {
        var d = new SortedDictionary<int, long>();
        foreach (var s in shards)
            for (int p = 0; p + ctx.Length < s.Length; p++)
                if (At(s, p, ctx)) d[s[p + ctx.Length]] = d.GetValueOrDefault(s[p + ctx.Length]) + 1;
        return d;
    }

    static int BruteLongest(List<int[]> shards, int[] ctx)
    {
        for (int k = ctx.Length; k > 0; k--) if (BruteNext(shards, ctx[^k..]).Count > 0) return k;
        return 0;
    }

    static NGramStore BuildStore(TempDir dir, Case c, string name = "index")
    {
        NGramBuilder.Build(c.Docs, TestTokenizer, dir.File(name), new NGramBuildOptions { ShardTokens = c.ShardTokens });
        return NGramStore.Open(dir.File(name));
    }

    static bool SameDistribution(NextTokenDistribution got, SortedDictionary<int, long> want)
    {
        if (got.Tokens.Count != want.Count || got.Total != want.Values.Sum()) return false;
        foreach (var t in got.Tokens) if (want.GetValueOrDefault(t.Token, -1) != t.Count) return false;
        for (int i = 1; i < got.Tokens.Count; i++)
            if (got.Tokens[i].Count > got.Tokens[i - 1].Count) return false;
        return true;
    }

    [Fact]
    public void SuffixArrayEqualsNaiveSortProperty()
    {
        var gen = Gen.Choose(1, 5).SelectMany(a => Gen.Zip(Gen.Constant(a), Gen.Choose(0, a - 1).ArrayOf()));
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(400), Prop.ForAll(gen.ToArbitrary(), ((int A, int[] T) c) =>
            SuffixArray.Build(c.T, c.A).AsSpan().SequenceEqual(SuffixArray.Naive(c.T))));
        // Highly repetitive input (the case that makes comparison sorts crawl) and a run of one symbol.
        var rep = Enumerable.Range(0, 3000).Select(i => i % 7 == 0 ? 1 : i % 3).ToArray();
        Assert.Equal(SuffixArray.Naive(rep), SuffixArray.Build(rep, 3));
        var run = new int[500];
        Assert.Equal(SuffixArray.Naive(run), SuffixArray.Build(run, 1));
    }

    [Fact]
    public void CountsAndNextTokenDistributionsEqualBruteForceProperty()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60), Prop.ForAll(Cases(Vocab).ToArbitrary(), c =>
        {
            using var dir = new TempDir();
            using var store = BuildStore(dir, c);
            var shards = BruteShards(c);
            Assert.Equal(shards.Count, store.Shards.Count);
            foreach (var q in c.Queries)
            {
                if (q.Length > 0) Assert.Equal(BruteCount(shards, q), store.Count(q));
                var next = BruteNext(shards, q);
                Assert.True(SameDistribution(store.NextTokens(q), next), $"n-gram next tokens after [{string.Join(",", q)}]");
                int k = BruteLongest(shards, q);
                var inf = store.InfinityNextTokens(q);
                Assert.Equal(k, inf.SuffixLength);
                Assert.True(SameDistribution(inf, BruteNext(shards, q[^k..])), $"∞-gram next tokens after [{string.Join(",", q)}]");
                for (int w = 0; w < Vocab; w++)
                {
                    var p = store.Probability(q, w);
                    var want = BruteNext(shards, q[^k..]);
                    Assert.Equal((k, want.Values.Sum(), want.GetValueOrDefault(w)), (p.SuffixLength, p.ContextCount, p.TargetCount));
                }
            }
            return true;
        }));
    }

    [Fact]
    public void BatchedInfinityEqualsOneQueryPerPositionProperty()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60), Prop.ForAll(Cases(4).ToArbitrary(), c =>
        {
            using var dir = new TempDir();
            using var store = BuildStore(dir, c);
            var shards = BruteShards(c);
            // The queries glued together make a sequence with long corpus matches and fresh restarts.
            var seq = c.Queries.SelectMany(q => q).ToArray();
            var batched = NGramBatch.Infinity(store, seq);
            var sb = NGramBatch.StupidBackoff(store, seq);
            var evidence = NGramBatch.Evidence(store, seq);
            for (int t = 0; t < seq.Length; t++)
            {
                var ctx = seq[..t];
                int k = BruteLongest(shards, ctx);
                var next = BruteNext(shards, ctx[^k..]);
                Assert.Equal(new InfinityProbability(k, next.Values.Sum(), next.GetValueOrDefault(seq[t])), batched[t]);
                // The evidence adds the suffix one token shorter and the shape of the longest suffix's continuations.
                var shorter = k > 0 ? BruteNext(shards, ctx[^(k - 1)..]) : null;
                var backoff = shorter is null ? default : new InfinityProbability(k - 1, shorter.Values.Sum(), shorter.GetValueOrDefault(seq[t]));
                Assert.Equal(new NGramEvidence(batched[t], backoff, next.Count, next.Count > 0 ? next.Values.Max() : 0), evidence[t]);
                Assert.Equal(store.Probability(ctx, seq[t]), batched[t]);
                Assert.Equal(BruteStupidBackoff(shards, ctx, seq[t]), sb[t], 12);
            }
            return true;
        }));
    }

    static double BruteStupidBackoff(List<int[]> shards, int[] ctx, int w)
    {
        double f = 1;
        for (int k = Math.Min(4, ctx.Length); k >= 0; k--, f *= 0.4)
        {
            var c = ctx[^k..];
            long num = BruteCount(shards, [.. c, w]);
            if (num > 0) return f * num / (k == 0 ? shards.Sum(s => (long)s.Length) : BruteCount(shards, c));
        }
        return 0;
    }

    [Fact]
    public void DocumentsAndBooleanQueriesEqualBruteForceProperty()
    {
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60), Prop.ForAll(Cases(3).ToArbitrary(), c =>
        {
            using var dir = new TempDir();
            using var store = BuildStore(dir, c);
            var perDoc = new List<HashSet<long>>();
            foreach (var q in c.Queries.Where(q => q.Length > 0))
            {
                // Brute force inside each document (the builder never lets a match cross a document
                // into a new shard unless the document itself is split; offsets are within the document).
                var want = new List<DocumentHit>();
                var shards = BruteShards(c);
                long shardStart = 0;
                var stream = c.Docs.SelectMany(d => d).ToArray();
                var docOf = new long[stream.Length];
                var offOf = new long[stream.Length];
                for (int d = 0, p = 0; d < c.Docs.Length; d++)
                    for (int i = 0; i < c.Docs[d].Length; i++, p++) { docOf[p] = d; offOf[p] = i; }
                foreach (var s in shards)
                {
                    for (int p = 0; p < s.Length; p++) if (At(s, p, q)) want.Add(new DocumentHit(docOf[shardStart + p], offOf[shardStart + p]));
                    shardStart += s.Length;
                }
                var got = store.Documents(q, maxHits: 1000);
                Assert.Equal(want.Count, got.Occurrences);
                Assert.Equal(want, got.Hits);
                perDoc.Add([.. want.Select(h => h.Document)]);
            }
            var nonEmpty = c.Queries.Where(q => q.Length > 0).ToList();
            if (nonEmpty.Count >= 2)
            {
                var and = new HashSet<long>(perDoc[0]); and.IntersectWith(perDoc[1]);
                var or = new HashSet<long>(perDoc[0]); or.UnionWith(perDoc[1]);
                Assert.Equal(and.Order(), store.DocumentsMatching([nonEmpty[0], nonEmpty[1]], all: true, 1000, out _));
                Assert.Equal(or.Order(), store.DocumentsMatching([nonEmpty[0], nonEmpty[1]], all: false, 1000, out _));
            }
            return true;
        }));
    }

    [Fact]
    public void PointerWidthKeepsTheIndexAtFiveOrSixBytesPerToken()
    {
        Assert.Equal(1, NGramShard.PointerBytesFor(256));
        Assert.Equal(2, NGramShard.PointerBytesFor(257));
        Assert.Equal(3, NGramShard.PointerBytesFor(1 << 24));
        Assert.Equal(4, NGramShard.PointerBytesFor((1 << 24) + 1));
        using var dir = new TempDir();
        var docs = Enumerable.Range(0, 200).Select(d => Enumerable.Range(0, 500).Select(i => (i * 7 + d) % Vocab).ToArray()).ToArray();
        NGramBuilder.Build(docs, TestTokenizer, dir.File("i"), new NGramBuildOptions { ShardTokens = 100_000 });   // one shard of 100,000 tokens: 3-byte entries
        using var store = NGramStore.Open(dir.File("i"));
        double bytesPerToken = (double)store.Manifest.Bytes / store.TokenCount;
        // 2-byte tokens + 3-byte pointers + headers and document starts.
        Assert.InRange(bytesPerToken, 5.0, 5.1);
    }

    [Fact]
    public void BadQueriesFailWithClearErrors()
    {
        using var dir = new TempDir();
        using var store = BuildStore(dir, new Case([[1, 2, 3], [3, 2, 1]], 4, []));
        Assert.Contains("outside the vocabulary [0, 6)", Assert.Throws<ArgumentException>(() => store.Count([1, 6])).Message);
        Assert.Contains("outside the vocabulary", Assert.Throws<ArgumentException>(() => store.Probability([1], -1)).Message);
        Assert.Contains("outside the vocabulary", Assert.Throws<ArgumentException>(() => NGramBatch.Infinity(store, [1, 2, 99])).Message);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => store.Count([])).Message);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => store.Documents([])).Message);
        Assert.Contains("rebuild the index with the model's tokenizer",
            Assert.Throws<InvalidOperationException>(() => store.CheckTokenizer(TestTokenizer with { Fingerprint = "another" })).Message);
        store.CheckTokenizer(TestTokenizer);
    }

    [Fact]
    public void CorruptOrTruncatedIndexIsRejectedBeforeUse()
    {
        using var dir = new TempDir();
        BuildStore(dir, new Case([[1, 2, 3, 4, 5], [3, 2, 1]], 4, [])).Dispose();
        string shard = dir.File("index/shard-0001.bin");
        var bytes = File.ReadAllBytes(shard);
        bytes[70] ^= 1;   // one bit of a token
        File.WriteAllBytes(shard, bytes);
        var e = Assert.Throws<InvalidDataException>(() => NGramStore.Open(dir.File("index")));
        Assert.Contains("shard-0001.bin: checksum mismatch", e.Message);
        File.WriteAllBytes(shard, bytes[..^8]);
        Assert.Contains("shard-0001.bin", Assert.Throws<InvalidDataException>(() => NGramStore.Open(dir.File("index"))).Message);
        File.Delete(dir.File("index/index.json"));
        Assert.Contains("is not an n-gram index", Assert.Throws<FileNotFoundException>(() => NGramStore.Open(dir.File("index"))).Message);
    }

    [Fact]
    public void OverwriteSwapsTheNewIndexInAndLeavesNothingBeside()
    {
        // The replacement is one atomic exchange of folders on Linux (a kill leaves the old index or
        // the new one in place, never neither); either way the old one is gone afterwards.
        using var dir = new TempDir();
        BuildStore(dir, new Case([[1, 2]], 4, [])).Dispose();
        using (var open = NGramStore.Open(dir.File("index")))   // replaced while a reader has it open
        {
            NGramBuilder.Build([[3, 4, 5], [5]], TestTokenizer, dir.File("index"), new NGramBuildOptions { ShardTokens = 16, Overwrite = true });
            Assert.Equal(2, open.TokenCount);
        }
        using var store = NGramStore.Open(dir.File("index"));
        Assert.Equal(4, store.TokenCount);
        Assert.Equal(["index"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void CrashDuringBuildLeavesNoHalfIndex()
    {
        using var dir = new TempDir();
        static IEnumerable<int[]> Failing()
        {
            for (int i = 0; i < 50; i++) yield return [1, 2, 3, 4];
            throw new IOException("disk on fire");
        }
        Assert.Throws<IOException>(() => NGramBuilder.Build(Failing(), TestTokenizer, dir.File("index"), new NGramBuildOptions { ShardTokens = 16 }));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
        // An existing index survives a failed rebuild untouched.
        BuildStore(dir, new Case([[1, 2]], 4, [])).Dispose();
        Assert.Throws<IOException>(() => NGramBuilder.Build(Failing(), TestTokenizer, dir.File("index"), new NGramBuildOptions { ShardTokens = 16, Overwrite = true }));
        using var store = NGramStore.Open(dir.File("index"));
        Assert.Equal(2, store.TokenCount);
        Assert.Single(Directory.GetFileSystemEntries(dir.Path));
        Assert.Contains("already exists", Assert.Throws<IOException>(() => NGramBuilder.Build([[1]], TestTokenizer, dir.File("index"))).Message);
    }
}
