using System.Text;
using FsCheck;
using FsCheck.Fluent;

namespace Tessera.Text.Tests;

/// <summary>
/// Arbitrary strings (lone surrogates included) and arbitrary bytes never crash encode or
/// decode on the real HF tokenizers and the GGUF pipeline vocabularies; ids stay in the
/// vocabulary; lossless pipelines (byte-level BPE without normalizer) round-trip.
/// </summary>
public class HfPropertyTests
{
    private static readonly Config Cfg = Config.QuickThrowOnFailure.WithMaxTest(150).WithEndSize(120);

    private static readonly Gen<string> Unit = Gen.Frequency(
        (5, Gen.Elements("a", "Z", " ", "  ", "\n", "\t", "'s", "0", "123", ".", "<", "|", ">", "▁", "é", "中", "ไ", "🙂", "👨‍👩‍👧", "<|endoftext|>", "<s>", "<0x41>", "##")),
        (2, Gen.Choose(0x20, 0x7E).Select(c => ((char)c).ToString())),
        (2, Gen.Choose(0, 0xFFFF).Select(c => ((char)c).ToString())), // lone surrogates included
        (1, Gen.Choose(0x10000, 0x10FFFF).Select(char.ConvertFromUtf32)));

    private static readonly Arbitrary<string> Text = Unit.ListOf().Select(l => string.Concat(l)).ToArbitrary();
    private static readonly Arbitrary<byte[]> Bytes = ArbMap.Default.ArbFor<byte[]>();

    private static bool InRange(ITokenizer tok, List<int> ids) => ids.TrueForAll(i => i >= 0 && i < tok.VocabSize);

    private static void NeverCrashes(ITokenizer tok)
    {
        Check.One(Cfg, Prop.ForAll(Text, s =>
        {
            var a = tok.Encode(s);
            var b = tok.Encode(s, allowSpecial: true);
            var c = tok is HfTokenizer hf ? hf.Encode(s, allowSpecial: true, addSpecialTokens: true) : b;
            _ = tok.Decode(a.ToArray());
            _ = tok.Decode(c.ToArray());
            return InRange(tok, a) && InRange(tok, b) && InRange(tok, c);
        }));
        Check.One(Cfg, Prop.ForAll(Bytes, bytes =>
        {
            var ids = tok.EncodeBytes(bytes);
            _ = tok.DecodeBytes(ids.ToArray());
            return InRange(tok, ids);
        }));
    }

    private static void RoundTrips(ITokenizer tok, bool bytes = true)
    {
        Check.One(Cfg, Prop.ForAll(Text, s =>
        {
            string wellFormed = Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(s)); // lone surrogates → U+FFFD
            return tok.Decode(tok.Encode(s).ToArray()) == wellFormed;
        }));
        if (bytes) Check.One(Cfg, Prop.ForAll(Bytes, b => tok.DecodeBytes(tok.EncodeBytes(b).ToArray()).AsSpan().SequenceEqual(b)));
    }

    [Fact]
    public void PrecompiledAndUnicodeScripts_NeverCrash()
    {
        // The two committed fixtures' tokenizers: a real nmt_nfkc charsmap (T5-style Unigram) and
        // the UnicodeScripts pre-tokenizer over a character WordPiece vocabulary.
        foreach (var (fixture, gz) in new[] { ("precompiled.json.gz", true), ("unicode-scripts.json", false) })
        {
            Stream s = File.OpenRead(HfTokenizerConformanceTests.FixturePath(fixture));
            if (gz) s = new System.IO.Compression.GZipStream(s, System.IO.Compression.CompressionMode.Decompress);
            var root = System.Text.Json.Nodes.JsonNode.Parse(s)!;
            s.Dispose();
            string file = Path.Combine(Path.GetTempPath(), $"tessera-prop-{Environment.ProcessId}-{fixture}.json");
            File.WriteAllText(file, root["tokenizer"]!.ToJsonString());
            try { NeverCrashes(HfTokenizer.Load(file)); }
            finally { File.Delete(file); }
        }
    }

    [HfPeerFact("gemma3")] public void Gemma3() => NeverCrashes(HfPeers.Tokenizer("gemma3"));
    [HfPeerFact("llama2")] public void Llama2() => NeverCrashes(HfPeers.Tokenizer("llama2"));
    [HfPeerFact("qwen3")] public void Qwen3() => NeverCrashes(HfPeers.Tokenizer("qwen3"));
    [HfPeerFact("llama3")] public void Llama3() { NeverCrashes(HfPeers.Tokenizer("llama3")); RoundTrips(HfPeers.Tokenizer("llama3")); }
    [HfPeerFact("llama3_1")] public void Llama3_1() { NeverCrashes(HfPeers.Tokenizer("llama3_1")); RoundTrips(HfPeers.Tokenizer("llama3_1")); }
    [HfPeerFact("deepseek_v3")] public void DeepseekV3() { NeverCrashes(HfPeers.Tokenizer("deepseek_v3")); RoundTrips(HfPeers.Tokenizer("deepseek_v3")); }
    [HfPeerFact("gptoss")] public void GptOss() { NeverCrashes(HfPeers.Tokenizer("gptoss")); RoundTrips(HfPeers.Tokenizer("gptoss")); }
    [HfPeerFact("gpt4o")] public void Gpt4o() { NeverCrashes(HfPeers.Tokenizer("gpt4o")); RoundTrips(HfPeers.Tokenizer("gpt4o")); }

    [LlamaVocabFact("bert-bge")] public void GgufBert() => NeverCrashes(GgufVocabulary.Load(LlamaVocabConformanceTests.Find("ggml-vocab-bert-bge.gguf")!).Tokenizer);

    [LlamaVocabFact("deepseek-coder")]
    public void GgufDeepseekCoder()
    {
        var tok = GgufVocabulary.Load(LlamaVocabConformanceTests.Find("ggml-vocab-deepseek-coder.gguf")!).Tokenizer;
        NeverCrashes(tok);
        // Text only: this vocabulary has no token for bytes that never occur in UTF-8 (0xC0, 0xC1, 0xF5…).
        RoundTrips(tok, bytes: false);
    }

    [LlamaVocabFact("falcon")] public void GgufFalcon() => NeverCrashes(GgufVocabulary.Load(LlamaVocabConformanceTests.Find("ggml-vocab-falcon.gguf")!).Tokenizer);
    [LlamaVocabFact("phi-3")] public void GgufPhi3() => NeverCrashes(GgufVocabulary.Load(LlamaVocabConformanceTests.Find("ggml-vocab-phi-3.gguf")!).Tokenizer);
}
