using System.Text;
using Tessera.Text;

namespace Tessera.Fuzz;

/// <summary>A <c>.tiktoken</c> file (base64 token, rank per line) loaded as a tokenizer and used once.</summary>
public sealed class TiktokenTarget : FuzzTarget
{
    public override string Name => "tiktoken";

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        // A known encoding's file name, so the loader parses the ranks (an unknown name is refused before reading).
        var tok = TokenizerFiles.Load(ToFile(input, "cl100k_base.tiktoken"));
        var ids = tok.Encode("Hello, world! 123 ünïcödé");
        tok.Decode(ids.ToArray());
    }
}

/// <summary>A Hugging Face <c>tokenizer.json</c> loaded and used once.</summary>
public sealed class HfTokenizerTarget : FuzzTarget
{
    public override string Name => "hf-tokenizer";

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        var tok = HfTokenizerJson.Load(ToFile(input, "tokenizer.json"));
        var ids = tok.Encode("Hello, world! 123 ünïcödé");
        tok.Decode(ids.ToArray());
    }
}

/// <summary>
/// Encode/decode of arbitrary bytes with a byte-level BPE trained once at start-up: decoding the
/// ids of any byte string must give those bytes back exactly, and the ids must be in the vocabulary.
/// </summary>
public sealed class TokenizerRoundTripTarget : FuzzTarget
{
    public override string Name => "tokenizer";

    static readonly Lazy<BpeTokenizer> Bpe = new(() => BpeTrainer.Train(
        [string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog; ünïcödé 日本語 emoji 😀 1234567890\n", 40))],
        new BpeTrainerOptions(400), out _));

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        var tok = Bpe.Value;
        var ids = tok.EncodeBytes(input);
        foreach (int id in ids)
            if ((uint)id >= (uint)tok.VocabSize) throw new FuzzFinding($"encode produced id {id} outside the vocabulary {tok.VocabSize}");
        var back = tok.DecodeBytes(ids.ToArray());
        if (!back.AsSpan().SequenceEqual(input)) throw new FuzzFinding($"byte round trip changed {input.Length} bytes into {back.Length}");
        // The text path: valid UTF-8 must also round-trip through Encode(string)/Decode.
        if (System.Text.Unicode.Utf8.IsValid(input))
        {
            string text = Encoding.UTF8.GetString(input);
            string again = tok.Decode(tok.Encode(text).ToArray());
            if (again != text) throw new FuzzFinding("text round trip changed the string");
        }
    }
}
