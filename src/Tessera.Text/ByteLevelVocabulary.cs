namespace Tessera.Text;

/// <summary>
/// Builds a <see cref="BpeTokenizer"/> from a vocabulary stored as GPT-2 byte-mapped
/// strings plus a merge list (GGUF <c>gpt2</c>, Hugging Face byte-level BPE). A token's
/// merge rank is the index of the first merge that produces its bytes.
/// </summary>
public static class ByteLevelVocabulary
{
    /// <summary>Builds the tokenizer; <paramref name="types"/> marks control/user-defined tokens (GGUF types 3/4) as specials.</summary>
    /// <exception cref="FormatException">A token outside the GPT-2 byte map or a merge naming unknown tokens; the message names it.</exception>
    public static BpeTokenizer Build(string name, IReadOnlyList<string?> tokens, IReadOnlyList<int>? types,
        IReadOnlyList<string> merges, string pattern, bool wholePieceLookup, IReadOnlyDictionary<string, int>? extraSpecials = null)
    {
        var bytes = new byte[]?[tokens.Count];
        var ranks = new int[tokens.Count];
        Array.Fill(ranks, ByteRankTable.NoMerge);
        var specials = new Dictionary<string, int>(extraSpecials ?? new Dictionary<string, int>());
        var idOf = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int id = 0; id < tokens.Count; id++)
        {
            string? text = tokens[id];
            if (text is null || specials.ContainsValue(id)) continue;
            int type = types?[id] ?? SentencePieceTokenizer.TypeNormal;
            if (type is SentencePieceTokenizer.TypeControl or SentencePieceTokenizer.TypeUserDefined)
            {
                specials[text] = id;
                continue;
            }
            bytes[id] = Gpt2ByteMap.ToBytes(text)
                ?? throw new FormatException($"{name}: token {id} '{tokens[id]}' has characters outside the GPT-2 byte map");
            idOf.TryAdd(text, id);
        }
        for (int k = 0; k < merges.Count; k++)
        {
            string m = merges[k];
            int space = m.IndexOf(' ');
            if (space <= 0 || space == m.Length - 1 || m.IndexOf(' ', space + 1) >= 0)
                throw new FormatException($"{name}: merge {k} '{m}' is not 'left right'");
            string merged = string.Concat(m.AsSpan(0, space), m.AsSpan(space + 1));
            if (!idOf.TryGetValue(merged, out int id))
                throw new FormatException($"{name}: merge {k} '{m}' produces '{merged}', which is not in the vocabulary");
            if (k < ranks[id]) ranks[id] = k;
        }
        return new BpeTokenizer(name, bytes, ranks, pattern, new SpecialTokenSet(specials), wholePieceLookup);
    }
}
