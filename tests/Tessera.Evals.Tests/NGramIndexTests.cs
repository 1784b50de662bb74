using Tessera.Data;

namespace Tessera.Evals.Tests;

public sealed class NGramIndexTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "tessera-ngram-" + Guid.NewGuid().ToString("N"));

    public void Dispose() { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }

    /// <summary>The slow twin: every n-gram as a string key.</summary>
    static HashSet<string> Naive(IEnumerable<int[]> docs, int n)
    {
        var set = new HashSet<string>();
        foreach (var d in docs)
            for (int i = 0; i + n <= d.Length; i++) set.Add(string.Join(',', d[i..(i + n)]));
        return set;
    }

    [Fact]
    public void MatchesNaiveSetForEveryLength()
    {
        // A 3-letter alphabet makes short n-grams hit often and long ones rarely, so both answers are exercised.
        var docs = new List<int[]>();
        for (int d = 0; d < 12; d++) docs.Add(TinyModels.Tokens(d * 17 % 90 + 1, (ulong)d + 1, alphabet: 3));
        for (int n = 1; n <= 16; n++)
        {
            var index = NGramIndex.Build(docs, n);
            var naive = Naive(docs, n);
            Assert.Equal(naive.Count, index.Count);
            int hits = 0, misses = 0;
            for (int q = 0; q < 300; q++)
            {
                var probe = TinyModels.Tokens(n, 1000 + (ulong)(q * 31 + n), alphabet: 3);
                bool expected = naive.Contains(string.Join(',', probe));
                Assert.Equal(expected, index.Contains(probe));
                if (expected) hits++; else misses++;
                var longer = TinyModels.Tokens(n + q % 9, 5000 + (ulong)q, alphabet: 3);
                bool any = false;
                for (int i = 0; i + n <= longer.Length; i++) any |= naive.Contains(string.Join(',', longer[i..(i + n)]));
                Assert.Equal(any, index.Overlaps(longer));
            }
            if (n <= 4) Assert.True(hits > 0 && misses >= 0);
            if (n >= 12) Assert.True(misses > 0);
        }
    }

    [Fact]
    public void ShardIndexSplitsAtBosAndEqualsDocumentIndex()
    {
        const int bos = 7;   // never produced by the 3-letter alphabet below
        var docs = new List<int[]>();
        for (int d = 0; d < 20; d++) docs.Add(TinyModels.Tokens(5 + d * 3, 77 + (ulong)d, alphabet: 3));
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "train.bin");
        TokenShard.Write(path, docs, vocabSize: 8, bosId: bos);
        using var shard = TokenShard.Open(path);
        var fromShard = NGramIndex.Build([shard], 6, bos);
        var fromDocs = NGramIndex.Build(docs, 6);
        Assert.Equal(fromDocs.Count, fromShard.Count);
        // A 6-gram straddling two documents (end of doc 0 + start of doc 1) is not in the shard index unless it occurs inside a document.
        int[] straddle = [.. docs[0][^3..], .. docs[1][..3]];
        Assert.Equal(Naive(docs, 6).Contains(string.Join(',', straddle)), fromShard.Contains(straddle));
        foreach (var d in docs) Assert.True(fromShard.Overlaps(d) == d.Length >= 6);
    }

    [Fact]
    public void ShortSequencesHaveNothingToCheck()
    {
        var index = NGramIndex.Build([new[] { 1, 2, 3, 4, 5 }], 3);
        Assert.False(index.Overlaps([1, 2]));
        Assert.True(index.Overlaps([9, 3, 4, 5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => NGramIndex.Build([new[] { 1 }], 0));
    }
}
