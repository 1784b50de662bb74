namespace Tessera.Data.Tests;

public class TokenShardTests
{
    static int[][] Docs(int vocab, int seed)
    {
        var rng = new Random(seed);
        var docs = new int[7][];
        for (int d = 0; d < docs.Length; d++)
        {
            docs[d] = new int[rng.Next(0, 50)];
            for (int i = 0; i < docs[d].Length; i++) docs[d][i] = rng.Next(vocab);
        }
        return docs;
    }

    [Theory]
    [InlineData(300, -1)]      // uint16, no separators
    [InlineData(65536, 0)]     // uint16 at the boundary, BOS = 0
    [InlineData(100_000, 5)]   // uint32
    public void RoundTripsDocumentsAndStream(int vocab, int bos)
    {
        using var dir = new TempDir();
        var docs = Docs(vocab, vocab);
        var path = dir.File("s.bin");
        TokenShard.Write(path, docs, vocab, bos);
        using var shard = TokenShard.Open(path);
        Assert.Equal(vocab <= 65536 ? 2 : 4, shard.BytesPerToken);
        Assert.Equal(docs.Length, shard.DocumentCount);
        var expectedStream = new List<int>();
        for (int d = 0; d < docs.Length; d++)
        {
            var expected = bos >= 0 ? [bos, .. docs[d]] : docs[d];
            Assert.Equal(expected, shard.ReadDocument(d));
            expectedStream.AddRange(expected);
        }
        var stream = new int[shard.TokenCount];
        shard.Read(0, stream);
        Assert.Equal(expectedStream, stream);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void ShardTruncatedAtAnyLength_GivesOneErrorNamingTheFile()
    {
        using var dir = new TempDir();
        var path = dir.File("whole.bin");
        TokenShard.Write(path, Docs(1000, 3), 1000, 0);
        var bytes = File.ReadAllBytes(path);
        var cut = dir.File("cut.bin");
        for (int n = 0; n < bytes.Length; n += n < 80 ? 1 : 13)
        {
            File.WriteAllBytes(cut, bytes[..n]);
            var e = Assert.Throws<InvalidDataException>(() => TokenShard.Open(cut).Dispose());
            Assert.StartsWith(cut + ": ", e.Message);
        }
    }

    [Fact]
    public void TruncatedShardIsRejectedWithTheFileName()
    {
        using var dir = new TempDir();
        var path = dir.File("s.bin");
        TokenShard.Write(path, Docs(1000, 1), 1000, 0);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^9]);
        var e = Assert.Throws<InvalidDataException>(() => TokenShard.Open(path));
        Assert.Contains("s.bin", e.Message);
    }

    [Fact]
    public void HostileHeaderCountsAreRejected()
    {
        using var dir = new TempDir();
        var path = dir.File("s.bin");
        TokenShard.Write(path, Docs(1000, 2), 1000, 0);
        var bytes = File.ReadAllBytes(path);
        BitConverter.GetBytes(long.MaxValue / 2).CopyTo(bytes, 16);   // token count
        File.WriteAllBytes(path, bytes);
        Assert.Throws<InvalidDataException>(() => TokenShard.Open(path));
        bytes[0] = (byte)'X';
        File.WriteAllBytes(path, bytes);
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => TokenShard.Open(path)).Message);
    }

    [Fact]
    public void OutOfVocabularyIdFailsAndKeepsThePreviousShard()
    {
        using var dir = new TempDir();
        var path = dir.File("s.bin");
        TokenShard.Write(path, [[1, 2, 3]], 10);
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenShard.Write(path, [[1, 2, 99]], 10));
        using var shard = TokenShard.Open(path);
        Assert.Equal(new[] { 1, 2, 3 }, shard.ReadDocument(0));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }
}
