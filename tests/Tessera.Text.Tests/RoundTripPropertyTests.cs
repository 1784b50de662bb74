using System.Text;
using FsCheck;
using FsCheck.Fluent;

namespace Tessera.Text.Tests;

/// <summary>decode(encode(x)) == x for arbitrary well-formed strings and arbitrary bytes.</summary>
public class RoundTripPropertyTests
{
    private static readonly Config Cfg = Config.QuickThrowOnFailure.WithMaxTest(300).WithEndSize(200);

    // Code points skewed toward what tokenizers care about (ASCII words, spaces, newlines,
    // apostrophes, digits) but covering every plane except surrogates.
    private static readonly Gen<string> CodePoint = Gen.Frequency(
        (6, Gen.Elements("a", "b", "e", "s", "t", "T", " ", " ", "\n", "\r", "\t", "'", "0", "7", ".", ",", "!", "’")),
        (2, Gen.Choose(0x20, 0x7E).Select(c => ((char)c).ToString())),
        (1, Gen.Choose(0, 0xD7FF).Select(char.ConvertFromUtf32)),
        (1, Gen.Choose(0xE000, 0x10FFFF).Select(char.ConvertFromUtf32)));

    private static readonly Arbitrary<string> Text = CodePoint.ListOf().Select(l => string.Concat(l)).ToArbitrary();

    private static readonly Arbitrary<byte[]> Bytes = Gen.Frequency(
        (1, ArbMap.Default.ArbFor<byte[]>().Generator),
        // Mostly-valid UTF-8 with some bytes overwritten: the invalid sequences tokenizers actually meet.
        (2, Text.Generator.Zip(Gen.Choose(0, 255).ListOf()).Select(t =>
        {
            var b = Encoding.UTF8.GetBytes(t.Item1);
            int k = 0;
            foreach (int v in t.Item2) { if (b.Length == 0) break; b[(v * 7 + k++) % b.Length] = (byte)v; }
            return b;
        }))).ToArbitrary();

    private static void CheckText(ITokenizer tok) =>
        Check.One(Cfg, Prop.ForAll(Text, s => tok.Decode(tok.Encode(s).ToArray()) == s));

    private static void CheckBytes(ITokenizer tok) =>
        Check.One(Cfg, Prop.ForAll(Bytes, b => tok.DecodeBytes(tok.EncodeBytes(b).ToArray()).AsSpan().SequenceEqual(b)));

    [Fact] public void Trained_RoundTripsText() => CheckText(TestTokenizers.Trained);

    [Fact] public void Trained_RoundTripsBytes() => CheckBytes(TestTokenizers.Trained);

    [Fact] public void ByteTokenizer_RoundTripsTextAndBytes()
    {
        var tok = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        CheckText(tok);
        CheckBytes(tok);
    }

    [SharedDataFact("tokenizer/tiktoken/cl100k_base.tiktoken")]
    public void Cl100k_RoundTripsTextAndBytes()
    {
        CheckText(TestTokenizers.Cl100k!);
        CheckBytes(TestTokenizers.Cl100k!);
    }

    [SharedDataFact("tokenizer/tiktoken/o200k_base.tiktoken")]
    public void O200k_RoundTripsText()
    {
        var tok = TiktokenEncodings.Load("o200k_base", SharedData.PathOf("tokenizer/tiktoken/o200k_base.tiktoken"));
        CheckText(tok);
        CheckBytes(tok);
    }

    [SharedDataFact("tokenizer/gguf-vocab/ggml-vocab-llama-spm.gguf")]
    public void LlamaSpm_RoundTripsTextWithoutTheSpaceMarker()
    {
        // SentencePiece maps ' ' to U+2581 and back, so a literal U+2581 cannot survive; every other string must.
        var tok = GgufVocabulary.Load(SharedData.PathOf("tokenizer/gguf-vocab/ggml-vocab-llama-spm.gguf")).Tokenizer;
        var text = Text.Generator.Select(s => s.Replace('\u2581', '_')).ToArbitrary();
        Check.One(Cfg, Prop.ForAll(text, s => tok.Decode(tok.Encode(s).ToArray()) == s));
        Check.One(Cfg, Prop.ForAll(Bytes, b =>
        {
            var clean = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(b).Replace('\u2581', '_'));
            return tok.DecodeBytes(tok.EncodeBytes(clean).ToArray()).AsSpan().SequenceEqual(clean);
        }));
    }

    [SharedDataFact("tokenizer/gguf-vocab/ggml-vocab-gpt-2.gguf")]
    public void Gpt2Gguf_RoundTripsTextAndBytes()
    {
        var tok = GgufVocabulary.Load(SharedData.PathOf("tokenizer/gguf-vocab/ggml-vocab-gpt-2.gguf")).Tokenizer;
        CheckText(tok);
        CheckBytes(tok);
    }

    [Fact]
    public void HeapMerge_MatchesScanMerge_OnRandomPieces()
    {
        // The heap path (long pieces) must give exactly the scan path's (tiktoken's) result.
        var tok = TestTokenizers.Trained;
        var table = new ByteRankTable();
        var byteIds = new int[256];
        for (int id = 0; id < tok.VocabSize; id++)
        {
            if (!tok.IsAssigned(id) || tok.SpecialTokens.IsSpecial(id)) continue;
            var b = tok.TokenBytes(id);
            table.Add(b, id, id);
            if (b.Length == 1) byteIds[b[0]] = id;
        }
        Check.One(Cfg, Prop.ForAll(Text, s =>
        {
            var piece = Encoding.UTF8.GetBytes(s);
            var scan = new List<int>();
            var heap = new List<int>();
            BytePairMerge.EncodeScan(piece, table, byteIds, scan);
            BytePairMerge.EncodeHeap(piece, table, byteIds, heap);
            return scan.SequenceEqual(heap);
        }));
    }
}
