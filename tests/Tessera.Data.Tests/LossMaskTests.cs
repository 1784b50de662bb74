using Tessera.Text;

namespace Tessera.Data.Tests;

/// <summary>
/// The per-token loss mask: prompt/completion JSONL lines, the mask file beside a shard, and the
/// batch reader that turns masked-out targets into the ignore index.
/// </summary>
public class LossMaskTests
{
    static ByteTokenizer Bytes => new(ChatTemplate.DefaultSpecialTokens);

    [Fact]
    public void PromptCompletionLinesBecomeDocumentsWithALossStart()
    {
        using var dir = new TempDir();
        string file = dir.File("c.jsonl");
        File.WriteAllText(file, """
            {"prompt":"Q: two plus two? A:","completion":" four."}
            {"text":"plain text is trained whole"}
            {"prompt":"","completion":"all of it"}
            """);
        var docs = CorpusFiles.Read(file);
        Assert.Equal(3, docs.Count);
        Assert.Equal("Q: two plus two? A: four.", docs[0].Text);
        Assert.Equal("Q: two plus two? A:".Length, docs[0].LossStart);
        Assert.Equal(0, docs[1].LossStart);
        Assert.Equal(("all of it", 0), (docs[2].Text, docs[2].LossStart));
    }

    [Theory]
    [InlineData("""{"prompt":"a"}""", "\"prompt\" without \"completion\"")]
    [InlineData("""{"completion":"a"}""", "\"completion\" without \"prompt\"")]
    [InlineData("""{"prompt":1,"completion":"a"}""", "\"prompt\" is a number")]
    [InlineData("""{"prompt":"a","completion":null}""", "\"completion\" is null")]
    [InlineData("""{"other":"a"}""", "no \"text\" field")]
    public void HalfAPromptCompletionPairIsRejectedWithItsLine(string line, string expected)
    {
        using var dir = new TempDir();
        string file = dir.File("bad.jsonl");
        File.WriteAllText(file, "{\"text\":\"fine\"}\n" + line + "\n");
        var e = Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(file));
        Assert.Contains("line 2:", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void PreparedShardsCarryAMaskOverCompletionsOnly()
    {
        using var dir = new TempDir();
        var train = new List<CorpusDocument> { new("a", "abc" + "XY", 3), new("b", "plain"), new("c", "pq" + "Z", 2) };
        var val = new List<CorpusDocument> { new("v", "no mask here") };
        var prepared = ShardBuilder.PrepareSplits(train, val, [], Bytes, "bytes", dir.File("out"));
        using var shard = TokenShard.Open(prepared.ShardPath(Split.Train));
        Assert.True(shard.HasLossMask);
        var mask = new byte[shard.TokenCount];
        shard.ReadLossMask(0, mask);
        // Stream: BOS a b c X Y | BOS p l a i n | BOS p q Z. A BOS takes the mask of the token before it
        // (the first one: 1); prompt tokens 0; completions and plain documents 1.
        Assert.Equal(new byte[] { 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1 }, mask);
        Assert.False(File.Exists(TokenShard.MaskPath(prepared.ShardPath(Split.Validation))), "a split without prompts needs no mask file");
        using var v = TokenShard.Open(prepared.ShardPath(Split.Validation));
        Assert.False(v.HasLossMask);
        var ones = new byte[4];
        v.ReadLossMask(2, ones);
        Assert.All(ones, b => Assert.Equal(1, b));
    }

    [Fact]
    public void TheReaderIgnoresMaskedTargetsAndOnlyThose()
    {
        using var dir = new TempDir();
        string path = dir.File("s.bin");
        var tokens = Enumerable.Range(0, 41).ToArray();
        TokenShard.Write(path, [tokens], 100);
        var mask = new byte[41];
        for (int i = 0; i < mask.Length; i++) mask[i] = (byte)(i % 3 == 0 || i > 30 ? 1 : 0);
        TokenShard.WriteLossMask(path, mask);
        using var shard = TokenShard.Open(path);
        const int B = 2, T = 10;
        var masked = new BatchReader([shard], B, T, seed: 9, lossMask: true);
        var plain = new BatchReader([shard], B, T, seed: 9);
        Assert.True(masked.AppliesLossMask);
        Assert.False(plain.AppliesLossMask);
        var x = new int[B * T]; var y = new int[B * T]; var px = new int[B * T]; var py = new int[B * T];
        int ignored = 0;
        for (int step = 0; step < 4; step++)
        {
            masked.Next(x, y);
            plain.Next(px, py);
            Assert.Equal(px, x);                                   // inputs are never masked
            for (int i = 0; i < y.Length; i++)
            {
                int token = py[i];                                 // the target token is its own stream position
                if (mask[token] == 1) Assert.Equal(token, y[i]);
                else { Assert.Equal(BatchReader.IgnoredTarget, y[i]); ignored++; }
            }
            Assert.Equal(masked.Cursor, plain.Cursor);
        }
        Assert.True(ignored > 0);
    }

    [Fact]
    public void AlignedWindowsStartAtEveryDocumentThatHasRoomAndResumeExactly()
    {
        using var dir = new TempDir();
        string path = dir.File("d.bin");
        // Documents of 3..8 tokens with BOS = 0; token values count up so a position is recognisable.
        var docs = new List<int[]>();
        int next = 1;
        for (int d = 0; d < 12; d++)
        {
            docs.Add([.. Enumerable.Range(next, 3 + d % 6)]);
            next += docs[^1].Length;
        }
        TokenShard.Write(path, docs, 1000, bosId: 0);
        using var shard = TokenShard.Open(path);
        const int T = 10;
        var starts = Enumerable.Range(0, shard.DocumentCount).Select(shard.DocumentStart).Where(s => s + T + 1 <= shard.TokenCount).ToHashSet();
        var reader = new BatchReader([shard], 1, T, seed: 5, alignDocuments: true);
        Assert.Equal(starts.Count, reader.WindowCount);
        Assert.True(reader.WindowCount < shard.DocumentCount, "the last documents have no room for a whole window");
        var x = new int[T]; var y = new int[T];
        var seen = new List<int>();
        var firstTokens = starts.Select(s => { var one = new int[2]; shard.Read(s, one); return one[1]; }).ToHashSet();
        for (int i = 0; i < reader.WindowCount; i++)
        {
            reader.Next(x, y);
            Assert.Equal(0, x[0]);                                    // every window opens with a BOS
            Assert.Contains(x[1], firstTokens);                       // at a document's start
            Assert.Equal(x.AsSpan(1).ToArray(), y.AsSpan(0, T - 1).ToArray());
            seen.Add(x[1]);
        }
        Assert.Equal(firstTokens.Order(), seen.Order());             // each document once per epoch
        var cursor = reader.Cursor;
        reader.Next(x, y);
        var again = new BatchReader([shard], 1, T, seed: 5, cursor: cursor, alignDocuments: true);
        var x2 = new int[T]; var y2 = new int[T];
        again.Next(x2, y2);
        Assert.Equal(x, x2);
        Assert.Equal(y, y2);
        var e = Assert.Throws<ArgumentException>(() => new BatchReader([shard], 1, 500, seed: 5, alignDocuments: true));
        Assert.Contains("Document-aligned windows of 500", e.Message);
    }

    [Fact]
    public void AMaskThatDoesNotFitItsShardIsRejectedByName()
    {
        using var dir = new TempDir();
        string path = dir.File("s.bin");
        TokenShard.Write(path, [[1, 2, 3, 4]], 10);
        TokenShard.WriteLossMask(path, new byte[3]);
        var e = Assert.Throws<InvalidDataException>(() => TokenShard.Open(path));
        Assert.Contains(TokenShard.MaskPath(path), e.Message);
        Assert.Contains("expected 4", e.Message);
        File.WriteAllBytes(TokenShard.MaskPath(path), [.. "TSMASK01"u8, 4, 0, 0, 0, 0, 0, 0, 0, 1, 7, 1, 1]);
        using var shard = TokenShard.Open(path);
        var e2 = Assert.Throws<InvalidDataException>(() => shard.ReadLossMask(0, new byte[4]));
        Assert.Contains("neither 0 nor 1", e2.Message);
        Assert.Throws<ArgumentException>(() => TokenShard.WriteLossMask(path, [0, 2]));
    }
}
