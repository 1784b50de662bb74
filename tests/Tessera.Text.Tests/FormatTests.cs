using System.Text.Json.Nodes;

namespace Tessera.Text.Tests;

public class FormatTests
{
    [Theory]
    [InlineData(@"a?+b", @"(?>a?)b")]
    [InlineData(@"\p{L}++", @"(?>\p{L}+)")]
    [InlineData(@"[^\r\n\p{L}]?+x", @"(?>[^\r\n\p{L}]?)x")]
    [InlineData(@"\p{N}{1,3}+", @"(?>\p{N}{1,3})")]
    [InlineData(@"(ab)*+", @"(?>(ab)*)")]
    [InlineData(@"\s++$", @"(?>\s+)\z")]
    [InlineData(@"a+?b{2}", @"a+?b{2}")]
    [InlineData(@"[$]", @"[$]")]
    public void PossessiveQuantifiers_BecomeAtomicGroups(string rust, string dotnet) =>
        Assert.Equal(dotnet, PreTokenizer.ToDotNet(rust));

    private static string HfFixture(bool ignoreMerges)
    {
        // Byte-level vocabulary: all 256 bytes (GPT-2 map), "he", "ll", "hell", "hello".
        // Merges build "he" and "ll" and "hell" but never "hello"; with ignore_merges the
        // pre-token "hello" is emitted whole, without it BPE stops at ["hell", "o"].
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[Gpt2ByteMap.ToText([(byte)b])] = b;
        vocab["he"] = 256; vocab["ll"] = 257; vocab["hell"] = 258; vocab["hello"] = 259;
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 260, ["content"] = "<|endoftext|>", ["special"] = true }),
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            // Without a decoder HF joins token strings with spaces; byte-level files carry this one.
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["ignore_merges"] = ignoreMerges, ["vocab"] = vocab,
                ["merges"] = new JsonArray("h e", new JsonArray("l", "l"), "he ll"),
            },
        };
        var path = Path.Combine(Directory.CreateTempSubdirectory("tessera-hf-").FullName, "tokenizer.json");
        File.WriteAllText(path, root.ToJsonString());
        return path;
    }

    [Fact]
    public void HfTokenizerJson_IgnoreMerges_EmitsWholeVocabularyWords()
    {
        var with = TokenizerFiles.Load(HfFixture(ignoreMerges: true));
        var without = TokenizerFiles.Load(HfFixture(ignoreMerges: false));
        Assert.Equal(new[] { 259 }, with.Encode("hello"));
        Assert.Equal(new[] { 258, 'o' }, without.Encode("hello"));
        // " hello" is a different pre-token (leading space) and not in the vocabulary: merges apply in both.
        Assert.Equal(new[] { 'Ġ', 258, 'o' }.Select(c => c == 'Ġ' ? 32 : c), without.Encode(" hello"));
        Assert.Equal(new[] { 260 }, with.Encode("<|endoftext|>", allowSpecial: true));
        Assert.Equal("hello world", with.Decode(with.Encode("hello world").ToArray()));
    }

    [Fact]
    public void ChatTemplate_EncodesRolesAsSpecials_AndContentAsText()
    {
        var tok = TestTokenizers.Trained;
        var msgs = new[] { new ChatMessage("system", "Be brief."), new ChatMessage("user", "Hi <|end|>") };
        var ids = ChatTemplate.Encode(tok, msgs, addGenerationPrompt: true);
        var s = tok.SpecialTokens;
        Assert.Equal(s.Id("<|bos|>"), ids[0]);
        Assert.Equal(s.Id("<|system|>"), ids[1]);
        Assert.Equal(s.Id("<|assistant|>"), ids[^1]);
        // The user typed "<|end|>": it must not become the special token, so exactly two ends (one per turn).
        Assert.Equal(2, ids.Count(i => i == s.Id("<|end|>")));
        Assert.Equal(ChatTemplate.Render(msgs, addGenerationPrompt: true), tok.Decode(ids.ToArray()));
        Assert.Throws<ArgumentException>(() => ChatTemplate.Encode(tok, [new ChatMessage("robot", "x")], false));
    }

    [Fact]
    public void ByteTokenizer_IdsAreBytes_SpecialsFollow()
    {
        var tok = new ByteTokenizer(["<|bos|>", "<|eos|>"]);
        Assert.Equal(258, tok.VocabSize);
        Assert.Equal(new[] { 0xC3, 0xA9, 257 }, tok.Encode("é<|eos|>", allowSpecial: true));
        Assert.Equal("é<|eos|>", tok.Decode([0xC3, 0xA9, 257]));
    }
}
