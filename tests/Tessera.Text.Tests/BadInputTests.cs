using System.Text;

namespace Tessera.Text.Tests;

/// <summary>Missing or malformed files, bad regexes, unknown specials and bad ids give one clear error naming the culprit.</summary>
public class BadInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tessera-bad-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text) { var p = Path.Combine(_dir, name); File.WriteAllText(p, text); return p; }

    private string WriteBytes(string name, byte[] bytes) { var p = Path.Combine(_dir, name); File.WriteAllBytes(p, bytes); return p; }

    [Fact]
    public void MissingFile_NamesThePath()
    {
        var e = Assert.Throws<FileNotFoundException>(() => TokenizerFiles.Load(Path.Combine(_dir, "nope.tiktoken")));
        Assert.Contains("nope.tiktoken", e.Message);
    }

    [Fact]
    public void MalformedTiktokenLine_NamesFileAndLine()
    {
        var p = Write("r.tiktoken", "IQ== 0\nIg== 1\n!!notbase64 2\n");
        var e = Assert.Throws<FormatException>(() => TiktokenFile.Read(p));
        Assert.Contains("r.tiktoken:3", e.Message);
        var q = Write("s.tiktoken", "IQ== 0\nIg== x\n");
        Assert.Contains("s.tiktoken:2", Assert.Throws<FormatException>(() => TiktokenFile.Read(q)).Message);
    }

    [Fact]
    public void VocabularyWithoutAllBytes_IsRejected()
    {
        var e = Assert.Throws<FormatException>(() => new BpeTokenizer("t", [[65], [66]], null, PreTokenizer.Gpt2Pattern, SpecialTokenSet.Empty));
        Assert.Contains("byte 0x00 has no token", e.Message);
    }

    [Fact]
    public void InvalidRegex_NamesThePattern()
    {
        var e = Assert.Throws<ArgumentException>(() => new PreTokenizer(@"(\p{L}+"));
        Assert.Contains(@"(\p{L}+", e.Message);
    }

    [Fact]
    public void UnknownSpecialToken_ListsTheKnownOnes()
    {
        var e = Assert.Throws<KeyNotFoundException>(() => TestTokenizers.Trained.SpecialTokens.Id("<|nope|>"));
        Assert.Contains("<|nope|>", e.Message);
        Assert.Contains("<|eos|>", e.Message);
    }

    [Fact]
    public void IdOutOfRange_NamesTheId()
    {
        var tok = TestTokenizers.Trained;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([1, tok.VocabSize + 5]));
        Assert.Contains($"token id {tok.VocabSize + 5}", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([-1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ByteTokenizer().Decode([256]));
    }

    [Fact]
    public void TruncatedOrHostileGguf_IsRejectedCleanly()
    {
        Assert.Contains("too short", Assert.Throws<FormatException>(() => GgufVocabReader.Read(WriteBytes("a.gguf", "GGUF"u8.ToArray()))).Message);
        Assert.Contains("bad magic", Assert.Throws<FormatException>(() => GgufVocabReader.Read(WriteBytes("b.gguf", new byte[64]))).Message);
        // Valid header claiming one KV whose key length is 2^62.
        var hostile = new List<byte>("GGUF"u8.ToArray());
        hostile.AddRange(BitConverter.GetBytes(3u));
        hostile.AddRange(BitConverter.GetBytes(0UL));
        hostile.AddRange(BitConverter.GetBytes(1UL));
        hostile.AddRange(BitConverter.GetBytes(1UL << 62));
        hostile.AddRange(new byte[16]);
        var e = Assert.Throws<FormatException>(() => GgufVocabReader.Read(WriteBytes("c.gguf", hostile.ToArray())));
        Assert.Contains("c.gguf", e.Message);
        Assert.Contains("past the end", e.Message);
        // An array that claims more elements than the file can hold.
        var arr = new List<byte>("GGUF"u8.ToArray());
        arr.AddRange(BitConverter.GetBytes(3u));
        arr.AddRange(BitConverter.GetBytes(0UL));
        arr.AddRange(BitConverter.GetBytes(1UL));
        arr.AddRange(BitConverter.GetBytes(1UL)); arr.Add((byte)'k');
        arr.AddRange(BitConverter.GetBytes(9u)); arr.AddRange(BitConverter.GetBytes(8u)); arr.AddRange(BitConverter.GetBytes(ulong.MaxValue / 2));
        Assert.Contains("claims", Assert.Throws<FormatException>(() => GgufVocabReader.Read(WriteBytes("d.gguf", arr.ToArray()))).Message);
    }

    [SharedDataFact("formats/llama-2-tiny-random.gguf")]
    public void ModelGguf_VocabularyLoads()
    {
        var v = GgufVocabulary.Load(SharedData.PathOf("formats/llama-2-tiny-random.gguf"));
        Assert.Equal(32000, v.Tokenizer.VocabSize);
        Assert.Equal("Hello world", v.Tokenizer.Decode(v.Tokenizer.Encode("Hello world").ToArray()));
    }

    [Fact]
    public void MalformedConfigJson_NamesTheFile()
    {
        var dir = Path.Combine(_dir, "tok");
        TokenizerFiles.Save(TestTokenizers.Trained, dir);
        File.WriteAllText(Path.Combine(dir, TokenizerFiles.ConfigFile), "{ \"format\": ");
        var e = Assert.Throws<FormatException>(() => TokenizerFiles.Load(dir));
        Assert.Contains(TokenizerFiles.ConfigFile, e.Message);
    }

    [Fact]
    public void AnyText_NeverCrashes()
    {
        var rng = new Random(7);
        var tok = TestTokenizers.Trained;
        for (int i = 0; i < 200; i++)
        {
            var chars = new char[rng.Next(0, 64)];
            for (int k = 0; k < chars.Length; k++) chars[k] = (char)rng.Next(0, 0x10000); // lone surrogates included
            var s = new string(chars);
            var ids = tok.Encode(s, allowSpecial: true);
            // Lone surrogates become U+FFFD (UTF-8 cannot carry them); everything else survives.
            Assert.Equal(Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(s)), tok.Decode(ids.ToArray()));
        }
    }
}
