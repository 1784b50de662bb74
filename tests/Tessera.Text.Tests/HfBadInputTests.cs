using System.Text.Json.Nodes;

namespace Tessera.Text.Tests;

/// <summary>Broken tokenizer.json files: one clear error naming the file and the component.</summary>
public class HfBadInputTests
{
    private static JsonObject Valid()
    {
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[Gpt2ByteMap.ToText([(byte)b])] = b;
        vocab["he"] = 256;
        return new JsonObject
        {
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray("h e") },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 257, ["content"] = "<|end|>", ["special"] = true }),
        };
    }

    private static string Write(string json)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("tessera-hfbad-").FullName, "tokenizer.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static FormatException Fails(JsonObject root) => Fails(root.ToJsonString());

    private static FormatException Fails(string json)
    {
        string path = Write(json);
        var e = Assert.Throws<FormatException>(() => HfTokenizer.Load(path));
        Assert.StartsWith(path + ":", e.Message);
        return e;
    }

    [Fact]
    public void TheValidFixtureLoads_AndEncodes()
    {
        var tok = HfTokenizer.Load(Write(Valid().ToJsonString()));
        Assert.Equal([256, (int)'l', (int)'l', (int)'o'], tok.Encode("hello"));
        Assert.Equal([257], tok.Encode("<|end|>", allowSpecial: true));
        Assert.Equal("hello", tok.Decode([256, 'l', 'l', 'o']));
    }

    [Fact]
    public void MalformedJson_NamesTheLine() => Assert.Contains("invalid JSON at line 2", Fails("{\n \"model\": [}").Message);

    [Fact]
    public void UnknownNormalizer_IsNamedWithItsPath()
    {
        var root = Valid();
        root["normalizer"] = new JsonObject { ["type"] = "Sequence", ["normalizers"] = new JsonArray(new JsonObject { ["type"] = "NFC" }, new JsonObject { ["type"] = "UnicodeFolding" }) };
        Assert.Contains("normalizer 'Sequence'.normalizers[1] 'UnicodeFolding' is not supported", Fails(root).Message);
        // A known component with bad content is named with its path too.
        root["normalizer"]!["normalizers"]![1] = new JsonObject { ["type"] = "Precompiled", ["precompiled_charsmap"] = "" };
        Assert.Contains("normalizer 'Sequence'.normalizers[1] 'Precompiled': precompiled_charsmap is 0 bytes", Fails(root).Message);
    }

    [Fact]
    public void UnknownPreTokenizer_IsNamed()
    {
        var root = Valid();
        root["pre_tokenizer"] = new JsonObject { ["type"] = "SplitByMoonPhase" };
        Assert.Contains("pre_tokenizer 'SplitByMoonPhase' is not supported", Fails(root).Message);
    }

    [Fact]
    public void UnknownModel_PostProcessor_Decoder_AreNamed()
    {
        var a = Valid(); a["model"]!["type"] = "WordLevel";
        Assert.Contains("model 'WordLevel' is not supported", Fails(a).Message);
        var b = Valid(); b["post_processor"] = new JsonObject { ["type"] = "Fancy" };
        Assert.Contains("post_processor 'Fancy' is not supported", Fails(b).Message);
        var c = Valid(); c["decoder"] = new JsonObject { ["type"] = "CTC" };
        Assert.Contains("decoder 'CTC' is not supported", Fails(c).Message);
    }

    [Fact]
    public void MergeWithAMissingToken_IsNamed()
    {
        var root = Valid();
        root["model"]!["merges"] = new JsonArray("h e", "he zz");
        Assert.Contains("model.merges[1] 'he zz': 'zz' is not in the vocabulary", Fails(root).Message);
    }

    [Fact]
    public void DuplicateIds_AreNamed()
    {
        var a = Valid();
        a["model"]!["vocab"]!["hh"] = 256;
        Assert.Contains("gives id 256 to both", Fails(a).Message);
        var b = Valid();
        b["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 257, ["content"] = "<a>", ["special"] = true }, new JsonObject { ["id"] = 257, ["content"] = "<b>", ["special"] = true });
        Assert.Contains("added_tokens[1]: id 257 ('<b>') is given to an earlier added token too", Fails(b).Message);
    }

    [Fact]
    public void ByteFallbackWithoutByteTokens_IsNamed()
    {
        var root = Valid();
        root["pre_tokenizer"] = null;
        root["model"]!["byte_fallback"] = true;
        Assert.Contains("byte_fallback is set but the vocabulary lacks some of the 256 <0xNN> byte tokens", Fails(root).Message);
    }

    [Fact]
    public void UnsupportedRegex_IsNamedWithTheComponent()
    {
        var root = Valid();
        root["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = @"\p{Greek}+" }, ["behavior"] = "Isolated", ["invert"] = false },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
        };
        var e = Fails(root);
        Assert.Contains("pre_tokenizer 'Sequence'.pretokenizers[0] 'Split'", e.Message);
        Assert.Contains(@"\p{Greek}", e.Message);
    }

    [Fact]
    public void DropoutIsRefused_NotSilentlyIgnored()
    {
        var root = Valid();
        root["model"]!["dropout"] = 0.1;
        Assert.Contains("dropout 0.1 is not supported", Fails(root).Message);
    }

    [Fact]
    public void UnknownGgufPreTokenizer_IsNamed()
    {
        var e = Assert.Throws<FormatException>(() => GgufPreTokenizers.For("no-such-pre"));
        Assert.Contains("'no-such-pre'", e.Message);
        Assert.Contains("kimi-k2", Assert.Throws<FormatException>(() => GgufPreTokenizers.For("kimi-k2")).Message);
        foreach (var name in GgufPreTokenizers.Names.Where(n => n != "kimi-k2"))
        {
            // Every regex of every named pre-tokenizer translates and compiles.
            foreach (var rx in GgufPreTokenizers.For(name).Regexes) OnigPattern.Compile(rx);
        }
    }
}
