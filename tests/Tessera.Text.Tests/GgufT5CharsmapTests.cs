using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;

namespace Tessera.Text.Tests;

/// <summary>
/// A GGUF <c>t5</c> vocabulary with its <c>tokenizer.ggml.precompiled_charsmap</c> against
/// SentencePiece itself: the pieces, scores, types and nmt_nfkc charsmap of a model Debian's
/// spm_train built, written as GGUF metadata the way llama.cpp's converter does (the charsmap an
/// array of uint8), and the ids Debian's spm_encode gives (fixture from
/// bench/peers/spm-unigram-oracle.py).
/// </summary>
public class GgufT5CharsmapTests
{
    private static JsonNode Fixture()
    {
        using var gz = new GZipStream(File.OpenRead(Path.Combine(AppContext.BaseDirectory, "Fixtures", "spm-unigram.json.gz")), CompressionMode.Decompress);
        return JsonNode.Parse(gz)!;
    }

    private static string WriteGguf(JsonNode f, bool withCharsmap)
    {
        var kv = new List<(string Key, Action<BinaryWriter> Write)>();
        void Str(BinaryWriter w, string s) { var b = Encoding.UTF8.GetBytes(s); w.Write((ulong)b.Length); w.Write(b); }
        var pieces = f["pieces"]!.AsArray().Select(x => x!.GetValue<string>()).ToArray();
        var scores = f["scores"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray();
        var types = f["types"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        kv.Add(("tokenizer.ggml.model", w => { w.Write(8u); Str(w, "t5"); }));
        kv.Add(("tokenizer.ggml.tokens", w => { w.Write(9u); w.Write(8u); w.Write((ulong)pieces.Length); foreach (var p in pieces) Str(w, p); }));
        kv.Add(("tokenizer.ggml.scores", w => { w.Write(9u); w.Write(6u); w.Write((ulong)scores.Length); foreach (var s in scores) w.Write(s); }));
        kv.Add(("tokenizer.ggml.token_type", w => { w.Write(9u); w.Write(5u); w.Write((ulong)types.Length); foreach (var t in types) w.Write(t); }));
        kv.Add(("tokenizer.ggml.unknown_token_id", w => { w.Write(4u); w.Write((uint)Array.IndexOf(types, 2)); }));
        kv.Add(("tokenizer.ggml.add_space_prefix", w => { w.Write(7u); w.Write((byte)1); }));
        kv.Add(("tokenizer.ggml.remove_extra_whitespaces", w => { w.Write(7u); w.Write((byte)1); }));
        if (withCharsmap)
        {
            var map = Convert.FromBase64String(f["precompiled_charsmap"]!.GetValue<string>());
            kv.Add(("tokenizer.ggml.precompiled_charsmap", w => { w.Write(9u); w.Write(0u); w.Write((ulong)map.Length); w.Write(map); }));
        }
        string path = Path.Combine(Path.GetTempPath(), $"tessera-t5-{Environment.ProcessId}-{withCharsmap}.gguf");
        using (var w = new BinaryWriter(File.Create(path)))
        {
            w.Write("GGUF"u8); w.Write(3u); w.Write(0UL); w.Write((ulong)kv.Count);
            foreach (var (key, write) in kv) { Str(w, key); write(w); }
        }
        return path;
    }

    [Fact]
    public void T5Vocabulary_WithItsCharsmap_MatchesSentencePiece()
    {
        var f = Fixture();
        string path = WriteGguf(f, withCharsmap: true);
        try
        {
            var tok = GgufVocabulary.Load(path).Tokenizer;
            OracleCases.AssertIds(f["cases"]!.AsArray(), t => tok.Encode(t), "spm_encode", 80);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void WithoutTheCharsmap_NfkcCasesDiffer()
    {
        // The charsmap is what makes fullwidth text and ligatures encode like their ASCII forms.
        var f = Fixture();
        string withMap = WriteGguf(f, true), without = WriteGguf(f, false);
        try
        {
            var a = GgufVocabulary.Load(withMap).Tokenizer;
            var b = GgufVocabulary.Load(without).Tokenizer;
            Assert.Equal(a.Encode("ABC123 fine"), a.Encode("ＡＢＣ１２３ ﬁne"));
            Assert.NotEqual(b.Encode("ABC123 fine"), b.Encode("ＡＢＣ１２３ ﬁne"));
        }
        finally { File.Delete(withMap); File.Delete(without); }
    }
}
