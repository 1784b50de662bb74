using System.Security.Cryptography;
using Tessera.Text;

namespace Tessera.Data.Tests;

/// <summary>Splits given as files: exactly those splits, written whole or not at all, and still usable after the folder moves.</summary>
public class ExplicitSplitTests
{
    const string TrainText = "It was the best of times, it was the worst of times, it was the age of wisdom.\n\nIt was the age of foolishness, it was the epoch of belief.\n";
    const string ValidationText = "There were a king with a large jaw and a queen with a plain face, on the throne of England;\nthere were a king with a large jaw and a queen with a fair face, on the throne of France.\n";

    static Dictionary<string, string> Hashes(string folder) => Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
        .ToDictionary(f => Path.GetRelativePath(folder, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    [Fact]
    public void GivenTrainAndValidationFiles_TheSplitsAreExactlyThoseFiles_AndDecodeBackToThem()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("train.txt"), TrainText);
        File.WriteAllText(dir.File("valid.txt"), ValidationText);
        File.WriteAllText(dir.File("test.txt"), "A test document.");
        var bpe = BpeTrainer.Train([TrainText, ValidationText], new BpeTrainerOptions(300), out _);
        TokenizerFiles.Save(bpe, dir.File("tok"));
        var prepared = ShardBuilder.PrepareSplits(CorpusFiles.Read(dir.File("train.txt")), CorpusFiles.Read(dir.File("valid.txt")),
            CorpusFiles.Read(dir.File("test.txt")), bpe, dir.File("tok"), dir.File("out"));

        // Move the folder and drop the tokenizer it was made from: the folder's own copy must serve.
        Directory.Move(dir.File("out"), dir.File("moved"));
        Directory.Delete(dir.File("tok"), recursive: true);
        var data = PreparedData.Load(dir.File("moved"));
        var tok = TokenizerFiles.Load(data.TokenizerPath());
        foreach (var (split, text) in new[] { (Split.Train, TrainText), (Split.Validation, ValidationText), (Split.Test, "A test document.") })
        {
            using var shard = TokenShard.Open(data.ShardPath(split));
            Assert.Equal(1, shard.DocumentCount);
            Assert.Equal(text, tok.Decode(shard.ReadDocument(0).AsSpan(1)));
            Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(text), data.Stats(split).Bytes);
        }
        Assert.Equal(prepared.Validation, data.Validation);
        // Each split's document keys, in shard order (what train --index matches against an index's document ids).
        Assert.Equal(["train.txt"], data.Keys(Split.Train));
        Assert.Equal(["valid.txt"], data.Keys(Split.Validation));
        Assert.Equal(["test.txt"], data.Keys(Split.Test));
        // A keys file that disagrees with its shard (or is missing, as in folders prepared before it existed) gives no keys.
        File.WriteAllText(Path.Combine(dir.File("moved"), PreparedData.KeysFile), "{\"train.bin\": [\"a\", \"b\"]}");
        Assert.Null(data.Keys(Split.Train));
        File.Delete(Path.Combine(dir.File("moved"), PreparedData.KeysFile));
        Assert.Null(data.Keys(Split.Validation));
    }

    [Fact]
    public void EmptySplits_AreRefusedBeforeAnythingIsWritten()
    {
        using var dir = new TempDir();
        var tok = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        CorpusDocument[] some = [new("a", "some text")];
        Assert.Contains("validation split holds no documents", Assert.Throws<ArgumentException>(() => ShardBuilder.PrepareSplits(some, [], [], tok, "bytes", dir.File("out"))).Message);
        Assert.Contains("training split holds no documents", Assert.Throws<ArgumentException>(() => ShardBuilder.PrepareSplits([], some, [], tok, "bytes", dir.File("out"))).Message);
        Assert.False(Directory.Exists(dir.File("out")));
        File.WriteAllText(dir.File("empty.jsonl"), "{\"text\": \"\"}\n");
        Assert.Contains("holds no text", Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(dir.File("empty.jsonl"))).Message);
    }

    [Fact]
    public void AFailedPrepare_LeavesThePreviousPreparedFolderByteIdentical()
    {
        using var dir = new TempDir();
        var tok = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        CorpusDocument[] train = [new("t", TrainText)], validation = [new("v", ValidationText)];
        ShardBuilder.PrepareSplits(train, validation, [], tok, "bytes", dir.File("out"));
        var before = Hashes(dir.File("out"));

        // The tokenizer to keep beside the shards is missing: the failure comes after the shards are written into staging.
        Assert.Throws<FileNotFoundException>(() => ShardBuilder.PrepareSplits([new("t2", "different training text")], validation, [], tok, dir.File("no-such-tokenizer.json"), dir.File("out")));
        Assert.Equal(before, Hashes(dir.File("out")));
        Assert.Equal([dir.File("out")], Directory.GetDirectories(dir.Path));   // no staging folder left behind

        // A successful prepare replaces it whole.
        ShardBuilder.PrepareSplits([new("t2", "different training text")], validation, [], tok, "bytes", dir.File("out"));
        Assert.NotEqual(before["train.bin"], Hashes(dir.File("out"))["train.bin"]);
    }

    [Fact]
    public void AFolderOfOtherFiles_IsNeverReplaced()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("home"));
        File.WriteAllText(dir.File("home/thesis.tex"), "irreplaceable");
        var tok = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        var e = Assert.Throws<ArgumentException>(() => ShardBuilder.PrepareSplits([new("t", TrainText)], [new("v", ValidationText)], [], tok, "bytes", dir.File("home")));
        Assert.Contains("not a prepared data folder", e.Message);
        Assert.Equal("irreplaceable", File.ReadAllText(dir.File("home/thesis.tex")));
    }
}
