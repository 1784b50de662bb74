namespace Tessera.Text;

/// <summary>A Hugging Face tokenizer model: one pre-token to ids, and the vocabulary.</summary>
internal abstract class HfModel
{
    /// <summary>Appends the ids of one pre-token. <paramref name="byteLevel"/>: the pre-tokenizer was ByteLevel, so the model reads the piece's UTF-8 bytes through the GPT-2 byte map.</summary>
    public abstract void Encode(string piece, bool byteLevel, List<int> output);

    /// <summary>The token string of an id, or null.</summary>
    public abstract string? IdToToken(int id);

    /// <summary>The id of a token string.</summary>
    public abstract bool TryTokenToId(string token, out int id);

    /// <summary>One more than the largest id.</summary>
    public abstract int Size { get; }

    /// <summary>The unknown token id, if any.</summary>
    public abstract int? UnkId { get; }

    /// <summary>Ids of the <c>&lt;0xNN&gt;</c> byte tokens when the model falls back to bytes, else null.</summary>
    public abstract int[]? ByteFallbackIds { get; }

    /// <summary>Builds <c>&lt;0xNN&gt;</c> ids from a vocabulary; null when any is missing.</summary>
    protected static int[]? FindByteTokens(Func<string, int?> lookup)
    {
        var ids = new int[256];
        for (int b = 0; b < 256; b++)
        {
            if (lookup($"<0x{b:X2}>") is not int id) return null;
            ids[b] = id;
        }
        return ids;
    }
}
