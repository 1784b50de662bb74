using Tessera.Text;

namespace Tessera.Data.Tests;

/// <summary>A prepared folder carries its tokenizer: it can be moved, and the tokenizer it names still loads.</summary>
public class RelocatableDataTests
{
    static List<CorpusDocument> Docs() =>
        [.. Enumerable.Range(0, 40).Select(i => new CorpusDocument($"d{i}", $"Call me Ishmael, said document {i}. Some years ago, never mind how long precisely {i * 7}."))];

    [Fact]
    public void MovedFolder_FindsTheTokenizerItWasEncodedWith()
    {
        using var root = new TempDir();
        var docs = Docs();
        var bpe = BpeTrainer.Train(docs.Select(d => d.Text), new BpeTrainerOptions(300), out _);
        string tokDir = root.File("tok");
        TokenizerFiles.Save(bpe, tokDir);
        string prepared = root.File("prepared");
        ShardBuilder.Prepare(docs, bpe, tokDir, new DocumentSplit(0.2, 0.1, Seed: 3), prepared);

        string moved = root.File(Path.Combine("elsewhere", "data"));
        Directory.CreateDirectory(Path.GetDirectoryName(moved)!);
        Directory.Move(prepared, moved);
        Directory.Delete(tokDir, recursive: true);                  // the original is gone: only the folder's copy remains

        var data = PreparedData.Load(moved);
        Assert.Equal(PreparedData.TokenizerFolder, data.Tokenizer);
        Assert.Equal(Path.GetFullPath(Path.Combine(moved, PreparedData.TokenizerFolder)), data.TokenizerPath());
        var tok = TokenizerFiles.Load(data.TokenizerPath());
        Assert.Equal(bpe.VocabSize, tok.VocabSize);
        using var shard = TokenShard.Open(data.ShardPath(Split.Train));
        var first = shard.ReadDocument(0);
        Assert.Equal(first[1..], tok.Encode(tok.Decode(first.AsSpan(1))).ToArray());
        Assert.Equal(bpe.Encode(docs[0].Text + docs[1].Text).ToArray(), tok.Encode(docs[0].Text + docs[1].Text).ToArray());
    }

    [Fact]
    public void TokenizerFile_IsCopiedBesideTheShards_AndBytesStaysBytes()
    {
        using var root = new TempDir();
        var docs = Docs();
        var bpe = BpeTrainer.Train(docs.Select(d => d.Text), new BpeTrainerOptions(280), out _);
        TokenizerFiles.Save(bpe, root.File("tok"));
        string ranks = Path.Combine(root.File("tok"), TokenizerFiles.RanksFile);
        var a = ShardBuilder.Prepare(docs, bpe, ranks, new DocumentSplit(0.2, 0.1), root.File("a"));
        Assert.Equal($"{PreparedData.TokenizerFolder}/{TokenizerFiles.RanksFile}", PreparedData.Load(root.File("a")).Tokenizer);
        Assert.Equal(File.ReadAllBytes(ranks), File.ReadAllBytes(Path.Combine(root.File("a"), PreparedData.TokenizerFolder, TokenizerFiles.RanksFile)));
        Assert.Equal(bpe.VocabSize, TokenizerFiles.Load(PreparedData.Load(root.File("a")).TokenizerPath()).VocabSize);

        ShardBuilder.Prepare(docs, new ByteTokenizer(ChatTemplate.DefaultSpecialTokens), "bytes", new DocumentSplit(0.2, 0.1), root.File("b"));
        Assert.Equal("bytes", PreparedData.Load(root.File("b")).TokenizerPath());
        Assert.False(Directory.Exists(Path.Combine(root.File("b"), PreparedData.TokenizerFolder)));
    }

    [Fact]
    public void LegacyMeta_NamingAMissingTokenizer_SaysWhereItLooked()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "legacy", PreparedData.MetaFile), dir.File(PreparedData.MetaFile));
        var data = PreparedData.Load(dir.Path);
        Assert.Equal("run/tokenizer", data.Tokenizer);                // recorded relative to where `data prepare` ran
        var e = Assert.Throws<FileNotFoundException>(() => data.TokenizerPath());
        Assert.Contains(dir.File(PreparedData.MetaFile), e.Message);
        Assert.Contains(Path.GetFullPath(Path.Combine(dir.Path, "run/tokenizer")), e.Message);
        Assert.Contains(Path.GetFullPath("run/tokenizer"), e.Message);

        // A legacy path that does resolve from the folder (e.g. the tokenizer was kept beside the shards) loads.
        Directory.CreateDirectory(dir.File("run"));
        TokenizerFiles.Save(BpeTrainer.Train(Docs().Select(d => d.Text), new BpeTrainerOptions(270), out _), dir.File(Path.Combine("run", "tokenizer")));
        Assert.Equal(270, TokenizerFiles.Load(data.TokenizerPath()).VocabSize);
    }
}
