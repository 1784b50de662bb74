using System.Buffers.Binary;

namespace Tessera.Fuzz.Tests;

/// <summary>Each finding, named. The input files live in fuzz/regressions/TARGET and are replayed by <see cref="CorpusReplayTests"/> too.</summary>
public class RegressionTests
{
    static byte[] ValidDistillTail() => DistillCacheTarget.ValidFile.AsSpan(72).ToArray();

    // Found while writing the distill-cache harness: a slot entry past the file's records made
    // DistillCache.Read dereference memory outside the mapping (AccessViolationException, the
    // process died). The slot table is now checked on open and a damaged cache is rebuilt.
    [Fact]
    public void DistillCacheSlotPastTheRecordsIsRebuiltNotRead()
    {
        var tail = ValidDistillTail();
        BinaryPrimitives.WriteInt32LittleEndian(tail.AsSpan(128 - 72), 100_000_000);
        FuzzTarget.Get("distill-cache").Run(tail);
    }

    // Same harness: a stored id outside the vocabulary went straight to the student's loss.
    [Fact]
    public void DistillCacheIdOutsideTheVocabularyIsRejectedByName()
    {
        var tail = ValidDistillTail();
        BinaryPrimitives.WriteUInt16LittleEndian(tail.AsSpan(256 - 72), 65535);
        var e = Assert.Throws<InvalidDataException>(() => RunUnfiltered("distill-cache", tail));
        Assert.Contains("outside the vocabulary", e.Message);
        Assert.Contains(".dcache", e.Message);
    }

    static void RunUnfiltered(string name, byte[] input) => FuzzTarget.Get(name).RunUnfiltered(input);

    static string Regression(string target, string file)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "fuzz", "regressions", target, file))) return Path.Combine(d.FullName, "fuzz", "regressions", target, file);
        throw new FileNotFoundException($"fuzz/regressions/{target}/{file}");
    }

    // Found by AFL++ (fuzz/run.sh safetensors 180): a header with invalid UTF-8 inside a key threw
    // InvalidOperationException("Cannot transcode invalid UTF-8 JSON text...") from System.Text.Json,
    // an error that named no file. Now: InvalidDataException naming the file.
    [Theory]
    [InlineData("afl-invalid-utf8-header-0.safetensors", "not valid UTF-8")]
    [InlineData("afl-invalid-utf8-header-4.safetensors", "not valid UTF-8")]
    // Same class, written by hand from the finding: a lone surrogate escape in a name, and offsets that are strings.
    [InlineData("lone-surrogate-name.safetensors", "undecodable string")]
    [InlineData("offsets-not-numbers.safetensors", "data_offsets")]
    public void SafetensorsHeaderDamageIsAnInvalidDataExceptionNamingTheFile(string file, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => FuzzTarget.Get("safetensors").RunUnfiltered(File.ReadAllBytes(Regression("safetensors", file))));
        Assert.Contains(expected, e.Message);
        Assert.Contains(".safetensors", e.Message);
    }

    // Found by AFL++ (fuzz/run.sh shard 180): a shard whose token bytes were damaged handed out ids
    // past its own vocabulary (939524098 of 70005; 60424 of 64) to the trainer. Reads now check.
    [Theory]
    [InlineData("afl-id-past-vocabulary-wide.shard")]
    [InlineData("afl-id-past-vocabulary-narrow.shard")]
    public void ShardIdsPastTheVocabularyAreRejectedByName(string file)
    {
        var e = Assert.Throws<InvalidDataException>(() => FuzzTarget.Get("shard").RunUnfiltered(File.ReadAllBytes(Regression("shard", file))));
        Assert.Contains("outside the shard's vocabulary", e.Message);
    }

    // Found by AFL++ (fuzz/run.sh checkpoint 180): a config.json naming a key twice made JsonNode
    // throw "An item with the same key has already been added" (ArgumentException from the runtime,
    // no file named). Now an InvalidDataException naming config.json.
    [Fact]
    public void ConfigJsonWithADuplicateKeyIsRejectedByName()
    {
        byte[] input = File.ReadAllBytes(Regression("checkpoint", "afl-duplicate-key-config.bin"));
        string config = System.Text.Encoding.UTF8.GetString(input, 0, Array.IndexOf(input, (byte)0) is int z and >= 0 ? z : input.Length);
        var e = Assert.Throws<InvalidDataException>(() => Model.ModelConfig.FromHuggingFaceJson(config, "config.json"));
        Assert.Contains("config.json", e.Message);
        FuzzTarget.Get("checkpoint").Run(input);
    }

    // Found by AFL++ (fuzz/run.sh hf-tokenizer 180), 10 inputs: a tokenizer.json with invalid UTF-8,
    // a missing "type"/"content"/"id", or a field of the wrong JSON type surfaced as the runtime's
    // KeyNotFoundException / InvalidOperationException naming no file. Now a FormatException naming it.
    [Theory]
    [InlineData(0)] [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)]
    [InlineData(5)] [InlineData(6)] [InlineData(7)] [InlineData(8)] [InlineData(9)]
    public void MalformedTokenizerJsonIsAFormatExceptionNamingTheFile(int n)
    {
        var e = Assert.Throws<FormatException>(() => FuzzTarget.Get("hf-tokenizer").RunUnfiltered(File.ReadAllBytes(Regression("hf-tokenizer", $"afl-{n}.json"))));
        Assert.Contains("tokenizer.json", e.Message);
    }

    // Found by AFL++ (fuzz/run.sh manifest 90): an index.json naming a key twice made JsonNode throw
    // "An item with the same key has already been added" (ArgumentException from the runtime, no file
    // named) inside JsonNaming.Deserialize. Duplicates are now refused while parsing, so the index
    // manifest reports an InvalidDataException naming the file.
    [Fact]
    public void IndexManifestWithADuplicateKeyIsRejectedByName()
    {
        var e = Assert.Throws<InvalidDataException>(() => FuzzTarget.Get("manifest").RunUnfiltered(File.ReadAllBytes(Regression("manifest", "afl-duplicate-key.bin"))));
        Assert.Contains("index.json", e.Message);
        Assert.Throws<System.Text.Json.JsonException>(() => Kernels.IO.JsonNaming.Deserialize<Dictionary<string, int>>("{\"a\": 1, \"a\": 2}"));
    }

    // Found by AFL++ (fuzz/run.sh distill-cache 150, after the harness was made fast): a capacity of
    // 2^62 in the header made capacity × record size wrap to the file's own length, so the open
    // trusted the file and Read dereferenced a slot far past the mapping (AccessViolationException,
    // the process died). The capacity is now checked by division; the damaged cache is rebuilt.
    [Fact]
    public void DistillCacheCapacityThatWrapsToTheFileLengthIsRebuiltNotRead()
    {
        byte[] input = File.ReadAllBytes(Regression("distill-cache", "afl-capacity-wraps-to-the-file-length.bin"));
        Assert.Equal(1L << 62, BinaryPrimitives.ReadInt64LittleEndian(input.AsSpan(80 - 72)));
        FuzzTarget.Get("distill-cache").RunUnfiltered(input);
    }
}
