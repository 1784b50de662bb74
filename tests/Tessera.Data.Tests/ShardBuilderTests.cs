using Tessera.Text;

namespace Tessera.Data.Tests;

public class ShardBuilderTests
{
    [Fact]
    public void PreparesSplitsThatDecodeBackToTheDocuments()
    {
        using var dir = new TempDir();
        var tok = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        var docs = Enumerable.Range(0, 60).Select(i => new CorpusDocument($"d{i}", $"document {i}: naïve café {new string('x', i)}")).ToList();
        var split = new DocumentSplit(0.2, 0.2, Seed: 1);
        var prepared = ShardBuilder.Prepare(docs, tok, "bytes", split, dir.Path);
        var reloaded = PreparedData.Load(dir.Path);
        Assert.Equal(prepared.Train, reloaded.Train);
        Assert.Equal(docs.Count, prepared.Train.Documents + prepared.Validation.Documents + prepared.Test.Documents);
        foreach (var s in new[] { Split.Train, Split.Validation, Split.Test })
        {
            var expected = docs.Where(d => split.Assign(d.Key) == s).ToList();
            using var shard = TokenShard.Open(reloaded.ShardPath(s));
            Assert.Equal(expected.Count, shard.DocumentCount);
            long bytes = 0;
            for (int i = 0; i < expected.Count; i++)
            {
                var ids = shard.ReadDocument(i);
                Assert.Equal(prepared.BosId, ids[0]);
                Assert.Equal(expected[i].Text, tok.Decode(ids.AsSpan(1)));
                bytes += System.Text.Encoding.UTF8.GetByteCount(expected[i].Text);
            }
            Assert.Equal(bytes, reloaded.Stats(s).Bytes);
            Assert.Equal(shard.TokenCount, reloaded.Stats(s).Tokens);
        }
    }

    [Fact]
    public void TooFewDocumentsForAValidationSplitFailsBeforeWriting()
    {
        using var dir = new TempDir();
        var tok = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        var e = Assert.Throws<ArgumentException>(() => ShardBuilder.Prepare([new("only", "one doc")], tok, "bytes", new DocumentSplit(), dir.Path));
        Assert.Contains("split", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void MissingPreparedFolderSaysWhatToRun()
    {
        using var dir = new TempDir();
        Assert.Contains("tessera data prepare", Assert.Throws<FileNotFoundException>(() => PreparedData.Load(dir.Path)).Message);
    }
}
