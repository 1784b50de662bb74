namespace Tessera.Text;

/// <summary>
/// GGUF vocabularies that run on the Hugging Face pipeline (<see cref="HfTokenizer"/>): byte-level
/// BPE with any llama.cpp pre-tokenizer (<see cref="GgufPreTokenizers"/>), BERT WordPiece
/// (<c>bert</c>) and T5-style Unigram (<c>t5</c>). Control tokens (type 3) are special;
/// user-defined tokens (type 4) are always matched, as llama.cpp does.
/// </summary>
internal static class GgufPipelineVocabulary
{
    public const int TypeUnused = 5;

    public static HfTokenizer Bpe(string name, string[] tokens, int[] types, string[] merges, string pre)
    {
        var (regexes, ignoreMerges) = GgufPreTokenizers.For(pre);
        var vocab = Vocab(name, tokens, types);
        var pairs = new List<(string, string)>(merges.Length);
        for (int k = 0; k < merges.Length; k++)
        {
            string m = merges[k];
            int sp = m.IndexOf(' ', 1);
            if (sp <= 0 || sp == m.Length - 1) throw new FormatException($"{name}: tokenizer.ggml.merges[{k}] '{m}' is not 'left right'");
            pairs.Add((m[..sp], m[(sp + 1)..]));
        }
        var steps = new List<HfPreTokenizer>();
        foreach (var rx in regexes)
        {
            try { steps.Add(new HfPreTokenizer.SplitPattern(null, rx, HfSplitBehavior.Isolated, false)); }
            catch (Exception e) when (e is FormatException or ArgumentException) { throw new FormatException($"{name}: pre-tokenizer '{pre}': regex '{rx}': {e.Message}"); }
        }
        steps.Add(new HfPreTokenizer.ByteLevel(false, false));
        var model = new HfBpeModel(vocab, pairs, null, false, false, ignoreMerges, null, null, name);
        return new HfTokenizer(name, null, new HfPreTokenizer.Sequence(steps), true, model, HfPostProcessor.None, new HfDecoder.ByteLevel(), Added(tokens, types)) { AddedTokensDecodeRaw = true };
    }

    public static HfTokenizer Bert(string name, string[] tokens, int[] types, int unkId)
    {
        // llama.cpp stores word-initial pieces as "▁word" and continuations bare; HF's are "word" and "##word".
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < tokens.Length; id++)
        {
            if (types[id] == TypeUnused) continue;
            string t = tokens[id];
            string hf = types[id] is SentencePieceTokenizer.TypeControl or SentencePieceTokenizer.TypeUserDefined ? t
                : t.StartsWith('\u2581') ? t[1..] : "##" + t;
            vocab.TryAdd(hf, id);
        }
        if (unkId < 0 || unkId >= tokens.Length) throw new FormatException($"{name}: BERT vocabulary needs tokenizer.ggml.unknown_token_id");
        string unk = tokens[unkId];
        var model = new HfWordPieceModel(vocab, unk, "##", 100, name);
        var normalizer = new HfNormalizer.Bert(true, true, null, true, name);
        return new HfTokenizer(name, normalizer, new HfPreTokenizer.Bert(), false, model, HfPostProcessor.None, new HfDecoder.WordPiece("##", true), Added(tokens, types)) { AddedTokensDecodeRaw = true };
    }

    public static HfTokenizer Unigram(string name, string[] tokens, float[] scores, int[] types, int? unkId, bool addSpacePrefix, bool removeExtraWhitespaces,
        byte[]? precompiledCharsmap = null)
    {
        var list = new List<(string, double)>(tokens.Length);
        for (int id = 0; id < tokens.Length; id++)
            list.Add((tokens[id], types[id] is SentencePieceTokenizer.TypeNormal or SentencePieceTokenizer.TypeUserDefined ? scores[id] : types[id] == SentencePieceTokenizer.TypeUnknown ? 0 : -1e9));
        // Only normal and user-defined pieces match text (the unknown piece's "<unk>" is an id, not a word).
        var model = new HfUnigramModel(list, unkId, false, name, id => types[id] is SentencePieceTokenizer.TypeNormal or SentencePieceTokenizer.TypeUserDefined);
        var steps = new List<HfNormalizer>();
        // SentencePiece's compiled normalization rules first (longest match, its own order), then
        // its whitespace handling on their output, as llama.cpp's UGM tokenizer does.
        if (precompiledCharsmap is { Length: > 0 })
            steps.Add(new HfNormalizer.Precompiled(precompiledCharsmap, $"{name}: tokenizer.ggml.precompiled_charsmap", longestPrefix: true));
        if (removeExtraWhitespaces) steps.Add(new CollapseSpaces());
        var pre = new HfPreTokenizer.Metaspace('\u2581', addSpacePrefix ? "always" : "never", true);
        return new HfTokenizer(name, steps.Count == 0 ? null : new HfNormalizer.Sequence(steps), pre, false, model, HfPostProcessor.None,
            new HfDecoder.Metaspace('\u2581', addSpacePrefix), Added(tokens, types)) { AddedTokensDecodeRaw = true };
    }

    /// <summary>SentencePiece's remove_extra_whitespaces: runs of spaces become one, none at either end.</summary>
    private sealed class CollapseSpaces : HfNormalizer
    {
        public override string Normalize(string text) => string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }

    private static Dictionary<string, int> Vocab(string name, string[] tokens, int[] types)
    {
        var vocab = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int id = 0; id < tokens.Length; id++)
        {
            // Control and user-defined tokens are added tokens, not pieces the model merges into.
            if (types[id] is TypeUnused or SentencePieceTokenizer.TypeControl or SentencePieceTokenizer.TypeUserDefined) continue;
            vocab.TryAdd(tokens[id], id);
        }
        return vocab;
    }

    private static List<HfAddedToken> Added(string[] tokens, int[] types)
    {
        var added = new List<HfAddedToken>();
        for (int id = 0; id < tokens.Length; id++)
        {
            if (tokens[id].Length == 0) continue;
            if (types[id] == SentencePieceTokenizer.TypeControl) added.Add(new HfAddedToken(tokens[id], id, true, false, false, false, false));
            else if (types[id] == SentencePieceTokenizer.TypeUserDefined) added.Add(new HfAddedToken(tokens[id], id, false, false, false, false, false));
        }
        return added;
    }
}
