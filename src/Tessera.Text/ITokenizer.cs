namespace Tessera.Text;

/// <summary>
/// A tokenizer: text or raw bytes to token ids and back. Every implementation satisfies
/// <c>DecodeBytes(EncodeBytes(b)) == b</c> for any bytes (invalid UTF-8 included) and
/// <c>Decode(Encode(s)) == s</c> for any well-formed string.
/// </summary>
public interface ITokenizer
{
    /// <summary>A short name for messages (e.g. <c>cl100k_base</c> or a file name).</summary>
    string Name { get; }

    /// <summary>One more than the largest token id (ids may have gaps).</summary>
    int VocabSize { get; }

    /// <summary>Special tokens by their text, e.g. <c>&lt;|eos|&gt;</c>.</summary>
    SpecialTokenSet SpecialTokens { get; }

    /// <summary>
    /// Encodes text. Special-token text is encoded as ordinary text unless
    /// <paramref name="allowSpecial"/> is set, so user input cannot inject control tokens.
    /// </summary>
    List<int> Encode(string text, bool allowSpecial = false);

    /// <summary>Encodes raw bytes; invalid UTF-8 sequences become byte tokens.</summary>
    List<int> EncodeBytes(ReadOnlySpan<byte> bytes);

    /// <summary>The bytes of a token sequence.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary; the message names it.</exception>
    byte[] DecodeBytes(ReadOnlySpan<int> ids);

    /// <summary>The text of a token sequence (invalid UTF-8 becomes U+FFFD).</summary>
    string Decode(ReadOnlySpan<int> ids);
}
