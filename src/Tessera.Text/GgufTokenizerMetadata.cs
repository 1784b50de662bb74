namespace Tessera.Text;

/// <summary>
/// The <c>tokenizer.ggml.*</c> metadata that embeds a byte-level BPE tokenizer in a GGUF file
/// (llama.cpp's <c>gpt2</c> tokenizer model): GPT-2 byte-mapped token strings, token types,
/// merges derived from the merge ranks, the pre-tokenizer name, BOS/EOS/EOT/padding ids and the
/// chat template. <see cref="GgufVocabulary.Load"/> reads it back into an equivalent tokenizer.
/// </summary>
/// <remarks>
/// Merges: tiktoken-style vocabularies store ranks, not merges. The merge of a token of rank r
/// is found as tiktoken's converters do: run BPE on the token's bytes with only the merges of
/// rank below r; a token built by training ends as exactly two parts, its left and right halves.
/// Merges are listed in rank order, so the reader's rank (index of the first merge producing a
/// token) keeps the original order. A token that does not split in two (possible in hand-made
/// vocabularies, not in trained ones) gets no merge and is reachable only as a whole pre-token.
/// <para>
/// Pre-tokenizer: llama.cpp has no cl100k_base entry; <c>llama-bpe</c> (Llama 3) uses the same
/// regex except at the very end of a text, where cl100k keeps trailing whitespace after a line
/// break as one pre-token (<c>\s++$</c>) and Llama 3 splits it after the line break, and it
/// enables whole-piece lookup as tiktoken does. The exact pattern and whole-piece rule are also
/// stored under <see cref="PatternKey"/> and <see cref="WholePieceKey"/>, which llama.cpp ignores
/// and Tessera's reader prefers.
/// </para>
/// </remarks>
public static class GgufTokenizerMetadata
{
    /// <summary>Tessera's own key holding the exact pre-tokenizer pattern (Rust/PCRE dialect).</summary>
    public const string PatternKey = "tessera.tokenizer.pattern";

    /// <summary>Tessera's own key: whether a pre-token that is a token is emitted whole (<see cref="BpeTokenizer.WholePieceLookup"/>).</summary>
    public const string WholePieceKey = "tessera.tokenizer.ignore_merges";

    /// <summary>GGUF token types (llama.cpp's <c>llama_token_type</c>).</summary>
    public const int TypeNormal = 1, TypeControl = 3, TypeUnused = 5;

    /// <summary>
    /// Builds the metadata for <paramref name="tokenizer"/> in a model with
    /// <paramref name="vocabSize"/> embedding rows (≥ the tokenizer's vocabulary; ids past it are
    /// written as unused <c>[PADn]</c> tokens, since llama.cpp sizes the embedding by the token list).
    /// </summary>
    /// <exception cref="NotSupportedException">A tokenizer that is not byte-level BPE (SentencePiece).</exception>
    /// <exception cref="ArgumentException">The model's vocabulary is smaller than the tokenizer's, or two tokens would get the same string.</exception>
    public static List<KeyValuePair<string, object>> Build(ITokenizer tokenizer, int vocabSize)
    {
        var bpe = tokenizer switch
        {
            BpeTokenizer b => b,
            ByteTokenizer => AsBpe(tokenizer),
            _ => throw new NotSupportedException($"embedding a {tokenizer.GetType().Name} ('{tokenizer.Name}') in GGUF is not supported; byte-level BPE and the byte tokenizer are"),
        };
        if (vocabSize < bpe.VocabSize)
            throw new ArgumentException($"the model has {vocabSize} token rows but tokenizer '{tokenizer.Name}' has {bpe.VocabSize} ids");

        var tokens = new string[vocabSize];
        var types = new int[vocabSize];
        var seen = new Dictionary<string, int>(vocabSize, StringComparer.Ordinal);
        var ordered = new List<(int Rank, int Id)>();
        for (int id = 0; id < vocabSize; id++)
        {
            if (id < bpe.VocabSize && bpe.SpecialTokens.TextOf(id) is { } special)
            {
                tokens[id] = special;
                types[id] = TypeControl;
            }
            else if (id < bpe.VocabSize && bpe.IsAssigned(id))
            {
                var bytes = bpe.TokenBytes(id);
                tokens[id] = Gpt2ByteMap.ToText(bytes);
                types[id] = TypeNormal;
                if (bytes.Length > 1 && bpe.TryGetToken(bytes, out _, out int rank) && rank != ByteRankTable.NoMerge) ordered.Add((rank, id));
            }
            else
            {
                tokens[id] = $"[PAD{id}]";
                types[id] = TypeUnused;
            }
            if (!seen.TryAdd(tokens[id], id))
                throw new ArgumentException($"tokens {seen[tokens[id]]} and {id} would both be '{tokens[id]}' in GGUF, which needs unique token strings");
        }

        ordered.Sort();
        var merges = new List<string>(ordered.Count);
        foreach (var (rank, id) in ordered)
            if (SplitAtRank(bpe, bpe.TokenBytes(id), rank) is var (left, right))
                merges.Add(Gpt2ByteMap.ToText(left) + " " + Gpt2ByteMap.ToText(right));

        var meta = new List<KeyValuePair<string, object>>
        {
            new("tokenizer.ggml.model", "gpt2"),
            new("tokenizer.ggml.pre", PreName(bpe.Pattern)),
            new("tokenizer.ggml.tokens", tokens),
            new("tokenizer.ggml.token_type", types),
            new("tokenizer.ggml.merges", merges.ToArray()),
            new(PatternKey, bpe.Pattern),
            new(WholePieceKey, bpe.WholePieceLookup),
        };
        int? bos = FirstSpecial(bpe, ChatTemplate.Bos, "<|begin_of_text|>", "<s>");
        int? eos = FirstSpecial(bpe, ChatTemplate.Eos, "<|endoftext|>", "<|end_of_text|>", "</s>");
        int? eot = FirstSpecial(bpe, ChatTemplate.End, "<|eot_id|>", "<|im_end|>");
        int? pad = FirstSpecial(bpe, ChatTemplate.Pad);
        if (bos is int b0) meta.Add(new("tokenizer.ggml.bos_token_id", (uint)b0));
        if (eos is int e0) meta.Add(new("tokenizer.ggml.eos_token_id", (uint)e0));
        if (eot is int t0) meta.Add(new("tokenizer.ggml.eot_token_id", (uint)t0));
        if (pad is int p0) meta.Add(new("tokenizer.ggml.padding_token_id", (uint)p0));
        // Tessera prepends BOS to every document and prompt; llama.cpp should do the same.
        meta.Add(new("tokenizer.ggml.add_bos_token", bos is not null));
        meta.Add(new("tokenizer.ggml.add_eos_token", false));
        if (ChatTemplateJinja(bpe) is { } jinja) meta.Add(new("tokenizer.chat_template", jinja));
        return meta;
    }

    /// <summary>llama.cpp's pre-tokenizer name for a pattern (see the class remarks for cl100k).</summary>
    public static string PreName(string pattern) => pattern switch
    {
        PreTokenizer.Cl100kPattern or PreTokenizer.Llama3Pattern => "llama-bpe",
        PreTokenizer.O200kPattern => "gpt-4o",
        PreTokenizer.Gpt2Pattern => "gpt-2",
        _ => "default",
    };

    /// <summary>
    /// The two halves that the last merge of a token of rank <paramref name="rank"/> joins:
    /// BPE over its bytes using only merges ranked below it. Null when it does not end in two parts.
    /// </summary>
    public static (byte[] Left, byte[] Right)? SplitAtRank(BpeTokenizer bpe, ReadOnlySpan<byte> bytes, int rank)
    {
        // Part boundaries; tokens are short, so the quadratic scan of BytePairMerge is fine here.
        var starts = new List<int>(bytes.Length + 1);
        for (int i = 0; i <= bytes.Length; i++) starts.Add(i);
        while (starts.Count > 3)
        {
            int best = int.MaxValue, at = -1;
            for (int k = 0; k + 2 < starts.Count; k++)
            {
                var pair = bytes[starts[k]..starts[k + 2]];
                if (bpe.TryGetToken(pair, out _, out int r) && r < rank && r < best) { best = r; at = k; }
            }
            if (at < 0) return null;
            starts.RemoveAt(at + 1);
        }
        return starts.Count == 3 ? (bytes[..starts[1]].ToArray(), bytes[starts[1]..].ToArray()) : null;
    }

    private static int? FirstSpecial(BpeTokenizer bpe, params string[] names)
    {
        foreach (var n in names)
            if (bpe.SpecialTokens.TryGetId(n, out int id)) return id;
        return null;
    }

    /// <summary>Tessera's chat format (<see cref="ChatTemplate"/>) as a Jinja template, when the vocabulary has its role tokens.</summary>
    private static string? ChatTemplateJinja(BpeTokenizer bpe)
    {
        foreach (var t in new[] { ChatTemplate.Bos, ChatTemplate.End, "<|system|>", "<|user|>", "<|assistant|>" })
            if (!bpe.SpecialTokens.TryGetId(t, out _)) return null;
        return "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endfor %}" +
               "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
    }

    /// <summary>The byte tokenizer as the equivalent BPE vocabulary: 256 byte tokens, no merges, the same specials.</summary>
    private static BpeTokenizer AsBpe(ITokenizer bytes)
    {
        var tokens = new byte[]?[256];
        for (int b = 0; b < 256; b++) tokens[b] = [(byte)b];
        var specials = new Dictionary<string, int>();
        foreach (var (text, id) in bytes.SpecialTokens.ById) specials[text] = id;
        return new BpeTokenizer(bytes.Name, tokens, null, PreTokenizer.Gpt2Pattern, new SpecialTokenSet(specials));
    }
}
