using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Tessera.Text;

namespace Tessera.Data.NGram;

/// <summary>
/// Which tokenizer produced an index's ids: a name for messages, the vocabulary size, and a
/// fingerprint (SHA-256 over every id's bytes, the special tokens, and the encoding of a fixed
/// probe text, so two tokenizers with the same vocabulary but different merges differ too).
/// Counts from an index are meaningless under another tokenizer, so the store refuses the mix.
/// </summary>
public sealed record TokenizerIdentity(string Name, int VocabSize, string Fingerprint)
{
    const string Probe = "The quick brown fox jumps over the lazy dog; 1,234.5 — naïve café «déjà vu»\n\tCall me Ishmael.";

    /// <summary>The identity of <paramref name="tokenizer"/>.</summary>
    public static TokenizerIdentity Of(ITokenizer tokenizer)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var word = new byte[4];
        void Int(int v) { BinaryPrimitives.WriteInt32LittleEndian(word, v); sha.AppendData(word); }
        Int(tokenizer.VocabSize);
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            byte[] bytes;
            if (tokenizer.SpecialTokens.TextOf(id) is { } special) bytes = Encoding.UTF8.GetBytes("special:" + special);
            else
                try { bytes = tokenizer.DecodeBytes([id]); }
                catch (ArgumentOutOfRangeException) { Int(-1); continue; }   // a gap in the id space
            Int(bytes.Length);
            sha.AppendData(bytes);
        }
        foreach (int id in tokenizer.Encode(Probe)) Int(id);
        return new TokenizerIdentity(tokenizer.Name, tokenizer.VocabSize, Convert.ToHexStringLower(sha.GetHashAndReset()));
    }

    /// <summary>Throws a clear error unless <paramref name="other"/> is the same tokenizer.</summary>
    public void Check(TokenizerIdentity other, string indexPath)
    {
        if (other.VocabSize != VocabSize || other.Fingerprint != Fingerprint)
            throw new InvalidOperationException(
                $"{indexPath}: the index was built with tokenizer '{Name}' (vocabulary {VocabSize}, fingerprint {Fingerprint[..Math.Min(12, Fingerprint.Length)]}) " +
                $"but the model's tokenizer is '{other.Name}' (vocabulary {other.VocabSize}, fingerprint {other.Fingerprint[..Math.Min(12, other.Fingerprint.Length)]}); rebuild the index with the model's tokenizer.");
    }
}
