using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tessera.Text.Tests;

/// <summary>
/// The Precompiled normalizer (SentencePiece's compiled rules) against HF tokenizers: a T5-style
/// tokenizer.json converted from a model that Debian's spm_train built with its nmt_nfkc rule, so
/// the charsmap is a real one (fixture from bench/peers/hf-precompiled-oracle.mjs).
/// </summary>
public class PrecompiledNormalizerTests
{
    private static JsonNode Fixture()
    {
        using var gz = new GZipStream(File.OpenRead(HfTokenizerConformanceTests.FixturePath("precompiled.json.gz")), CompressionMode.Decompress);
        return JsonNode.Parse(gz)!;
    }

    private static HfTokenizer Load(JsonNode tokenizer, out string file)
    {
        file = Path.Combine(Path.GetTempPath(), $"tessera-precompiled-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, tokenizer.ToJsonString());
        return HfTokenizer.Load(file);
    }

    [Fact]
    public void T5StyleUnigram_WithARealCharsmap_MatchesHfTokenizers()
    {
        var root = Fixture();
        var tok = Load(root["tokenizer"]!, out string file);
        try
        {
            OracleCases.AssertIds(root["cases"]!.AsArray(), t => tok.Encode(t, allowSpecial: false), "HF tokenizers", 100,
                (c, ids) => tok.Decode(ids.ToArray()) == c["decoded"]!.GetValue<string>() ? null : "decode differs");
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void TheCharsmapRewrites_NfkcCases()
    {
        // Without the Precompiled step the same tokenizer must encode these differently: the
        // charsmap is doing the work (fullwidth letters, ligatures, circled digits → ASCII).
        var root = Fixture();
        var withMap = Load(root["tokenizer"]!, out string a);
        var stripped = root["tokenizer"]!.DeepClone();
        stripped["normalizer"]!["normalizers"]!.AsArray().RemoveAt(0);
        var without = Load(stripped, out string b);
        try
        {
            foreach (string text in new[] { "ＡＢＣ１２３", "ﬁne ﬂow", "①②③" })
                Assert.NotEqual(without.Encode(text), withMap.Encode(text));
            Assert.Equal(withMap.Encode("ABC123"), withMap.Encode("ＡＢＣ１２３"));
        }
        finally { File.Delete(a); File.Delete(b); }
    }

    [Fact]
    public void BadCharsmaps_AreClearLoadErrors()
    {
        var root = Fixture();
        foreach (var (blob, message) in new[] { ("AAA=", "it must start with the trie's u32 length"), (Convert.ToBase64String([0xFF, 0, 0, 0, 1, 2]), "expected a positive multiple of 4"), ("%%%", "not base64") })
        {
            var t = root["tokenizer"]!.DeepClone();
            t["normalizer"]!["normalizers"]![0]!["precompiled_charsmap"] = blob;
            string file = Path.Combine(Path.GetTempPath(), $"tessera-precompiled-bad-{Environment.ProcessId}.json");
            File.WriteAllText(file, t.ToJsonString());
            try { Assert.Contains(message, Assert.ThrowsAny<Exception>(() => HfTokenizer.Load(file)).Message); }
            finally { File.Delete(file); }
        }
    }
}
