using System.Text;

namespace Tessera.Text;

/// <summary>
/// Character-level baseline: ids 0..255 are the bytes themselves, special tokens follow
/// from 256 in the order given. No pre-tokenization, no merges.
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    private readonly byte[][] _specialBytes;

    /// <summary>Creates the tokenizer; <paramref name="specials"/> get ids 256, 257, ...</summary>
    public ByteTokenizer(IReadOnlyList<string>? specials = null)
    {
        specials ??= [];
        var map = new Dictionary<string, int>();
        for (int i = 0; i < specials.Count; i++)
            if (!map.TryAdd(specials[i], 256 + i)) throw new ArgumentException($"special token '{specials[i]}' is listed twice");
        SpecialTokens = new SpecialTokenSet(map);
        _specialBytes = specials.Select(Encoding.UTF8.GetBytes).ToArray();
        VocabSize = 256 + specials.Count;
    }

    /// <inheritdoc/>
    public string Name => "bytes";

    /// <inheritdoc/>
    public int VocabSize { get; }

    /// <inheritdoc/>
    public SpecialTokenSet SpecialTokens { get; }

    /// <inheritdoc/>
    public List<int> Encode(string text, bool allowSpecial = false)
    {
        if (!allowSpecial || SpecialTokens.Count == 0) return EncodeBytes(Encoding.UTF8.GetBytes(text));
        var output = new List<int>(text.Length);
        int pos = 0;
        while (pos < text.Length)
        {
            int at = SpecialTokens.FindNext(text, pos, out int len, out int id);
            int end = at < 0 ? text.Length : at;
            foreach (byte b in Encoding.UTF8.GetBytes(text[pos..end])) output.Add(b);
            if (at < 0) break;
            output.Add(id);
            pos = at + len;
        }
        return output;
    }

    /// <inheritdoc/>
    public List<int> EncodeBytes(ReadOnlySpan<byte> bytes)
    {
        var output = new List<int>(bytes.Length);
        foreach (byte b in bytes) output.Add(b);
        return output;
    }

    /// <inheritdoc/>
    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var result = new List<byte>(ids.Length);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(null, $"{Name}: token id {id} is out of range [0, {VocabSize})");
            if (id < 256) result.Add((byte)id);
            else result.AddRange(_specialBytes[id - 256]);
        }
        return result.ToArray();
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));
}
