namespace Tessera.Text;

/// <summary>
/// A tokenizer loaded from a GGUF file's <c>tokenizer.ggml.*</c> metadata, with the model's
/// BOS/EOS rules. <c>gpt2</c> vocabularies become a <see cref="BpeTokenizer"/> (GPT-2 byte
/// map, merges as ranks), <c>llama</c> ones a <see cref="SentencePieceTokenizer"/>.
/// </summary>
public sealed class GgufVocabulary
{
    private GgufVocabulary(ITokenizer tokenizer, int? bos, int? eos, bool addBos, bool addEos, int? eot = null)
    {
        Tokenizer = tokenizer;
        BosId = bos;
        EosId = eos;
        EotId = eot;
        AddBos = addBos;
        AddEos = addEos;
    }

    /// <summary>The tokenizer (never adds BOS/EOS by itself).</summary>
    public ITokenizer Tokenizer { get; }

    /// <summary>Beginning-of-sequence id, if the file names one.</summary>
    public int? BosId { get; }

    /// <summary>End-of-sequence id, if the file names one.</summary>
    public int? EosId { get; }

    /// <summary>End-of-turn id (<c>tokenizer.ggml.eot_token_id</c>; Tessera's <c>&lt;|end|&gt;</c>), the chat stop token, if the file names one.</summary>
    public int? EotId { get; }

    /// <summary>Whether the model expects BOS before a prompt (<c>tokenizer.ggml.add_bos_token</c>; llama defaults to true, gpt2 to false).</summary>
    public bool AddBos { get; }

    /// <summary>Whether the model expects EOS after a prompt.</summary>
    public bool AddEos { get; }

    /// <summary>Encodes a prompt the way the model expects it: BOS/EOS added per the file's rules.</summary>
    public List<int> EncodePrompt(string text, bool allowSpecial = false)
    {
        var ids = Tokenizer.Encode(text, allowSpecial);
        if (AddBos && BosId is int bos) ids.Insert(0, bos);
        if (AddEos && EosId is int eos) ids.Add(eos);
        return ids;
    }

    /// <summary>Loads the vocabulary of a GGUF file.</summary>
    /// <exception cref="FormatException">Missing keys, unsupported model or pre-tokenizer, malformed tokens or merges; the message names the file and the item.</exception>
    public static GgufVocabulary Load(string path)
    {
        var vocab = LoadVocabulary(path, out var meta);
        // The model's own chat template, unless the file is Tessera's (which uses its own format).
        if (meta.GetOr<string?>("tokenizer.chat_template", null) is { } source && meta.GetOr<string?>(GgufTokenizerMetadata.PatternKey, null) is null)
        {
            string? Text(string key) => CheckedId(meta, key, int.MaxValue) is int id && id < vocab.Tokenizer.VocabSize ? TokenText(vocab.Tokenizer, id) : null;
            Templates.ModelChatTemplate.Attach(vocab.Tokenizer, new Templates.ModelChatTemplate(source, Text("tokenizer.ggml.bos_token_id"), Text("tokenizer.ggml.eos_token_id"), path));
        }
        return vocab;
    }

    private static string? TokenText(ITokenizer tok, int id) => tok.SpecialTokens.TextOf(id) ?? (tok is BpeTokenizer or SentencePieceTokenizer ? System.Text.Encoding.UTF8.GetString(tok.DecodeBytes([id])) : null);

    private static GgufVocabulary LoadVocabulary(string path, out GgufMetadata meta)
    {
        meta = GgufVocabReader.Read(path);
        string model = meta.Get<string>("tokenizer.ggml.model");
        var tokens = meta.Get<string[]>("tokenizer.ggml.tokens");
        var types = meta.GetOr<int[]?>("tokenizer.ggml.token_type", null) ?? Enumerable.Repeat(SentencePieceTokenizer.TypeNormal, tokens.Length).ToArray();
        if (types.Length != tokens.Length) throw new FormatException($"{path}: {tokens.Length} tokens but {types.Length} token types");
        int? bos = CheckedId(meta, "tokenizer.ggml.bos_token_id", tokens.Length);
        int? eos = CheckedId(meta, "tokenizer.ggml.eos_token_id", tokens.Length);
        string name = Path.GetFileName(path);
        switch (model)
        {
            case "gpt2":
            {
                string pre = meta.GetOr("tokenizer.ggml.pre", "default");
                // Files Tessera writes carry the exact pattern (llama.cpp has no cl100k entry).
                string? exact = meta.GetOr<string?>(GgufTokenizerMetadata.PatternKey, null);
                var merges = meta.Get<string[]>("tokenizer.ggml.merges");
                if (exact is null && pre is not ("gpt-2" or "llama-bpe" or "llama3" or "gpt-4o"))
                {
                    // Every other llama.cpp pre-tokenizer runs on the HF pipeline (regex sequence + ByteLevel + pair-ranked BPE).
                    HfTokenizer hf;
                    try { hf = GgufPipelineVocabulary.Bpe(name, tokens, types, merges, pre); }
                    catch (FormatException e) { throw new FormatException($"{path}: {e.Message}", e); }
                    return new GgufVocabulary(hf, bos, eos, meta.GetOr("tokenizer.ggml.add_bos_token", pre is "llama3" or "llama-v3" or "tekken" or "chameleon"),
                        meta.GetOr("tokenizer.ggml.add_eos_token", false), CheckedId(meta, "tokenizer.ggml.eot_token_id", tokens.Length));
                }
                string pattern = exact ?? pre switch
                {
                    "gpt-2" => PreTokenizer.Gpt2Pattern,
                    "llama-bpe" or "llama3" => PreTokenizer.Llama3Pattern,
                    _ => PreTokenizer.O200kPattern,
                };
                // Unused slots (padding of the embedding) are not tokens.
                var assigned = new string?[tokens.Length];
                for (int i = 0; i < tokens.Length; i++) assigned[i] = types[i] == GgufTokenizerMetadata.TypeUnused ? null : tokens[i];
                var tok = ByteLevelVocabulary.Build(name, assigned, types, merges, pattern, wholePieceLookup: meta.GetOr(GgufTokenizerMetadata.WholePieceKey, pre is "llama-bpe" or "llama3"));
                return new GgufVocabulary(tok, bos, eos, meta.GetOr("tokenizer.ggml.add_bos_token", false), meta.GetOr("tokenizer.ggml.add_eos_token", false),
                    CheckedId(meta, "tokenizer.ggml.eot_token_id", tokens.Length));
            }
            case "llama":
            {
                var scores = meta.Get<float[]>("tokenizer.ggml.scores");
                int unk = CheckedId(meta, "tokenizer.ggml.unknown_token_id", tokens.Length) ?? 0;
                var tok = new SentencePieceTokenizer(name, tokens, scores, types, meta.GetOr("tokenizer.ggml.add_space_prefix", true), unk);
                return new GgufVocabulary(tok, bos, eos, meta.GetOr("tokenizer.ggml.add_bos_token", true), meta.GetOr("tokenizer.ggml.add_eos_token", false));
            }
            case "bert":
            {
                int unk = CheckedId(meta, "tokenizer.ggml.unknown_token_id", tokens.Length) ?? Array.IndexOf(tokens, "[UNK]");
                var tok = GgufPipelineVocabulary.Bert(name, tokens, types, unk);
                int? cls = CheckedId(meta, "tokenizer.ggml.cls_token_id", tokens.Length) ?? bos;
                int? sep = CheckedId(meta, "tokenizer.ggml.seperator_token_id", tokens.Length) ?? eos;
                return new GgufVocabulary(tok, cls, sep, meta.GetOr("tokenizer.ggml.add_bos_token", true), meta.GetOr("tokenizer.ggml.add_eos_token", true));
            }
            case "t5":
            {
                var scores = meta.Get<float[]>("tokenizer.ggml.scores");
                if (scores.Length != tokens.Length) throw new FormatException($"{path}: {tokens.Length} tokens but {scores.Length} scores");
                int? unk = CheckedId(meta, "tokenizer.ggml.unknown_token_id", tokens.Length);
                var tok = GgufPipelineVocabulary.Unigram(name, tokens, scores, types, unk, meta.GetOr("tokenizer.ggml.add_space_prefix", true),
                    meta.GetOr("tokenizer.ggml.remove_extra_whitespaces", true), meta.GetOr<byte[]?>("tokenizer.ggml.precompiled_charsmap", null));
                return new GgufVocabulary(tok, bos, eos, meta.GetOr("tokenizer.ggml.add_bos_token", false), meta.GetOr("tokenizer.ggml.add_eos_token", true));
            }
            default:
                throw new FormatException($"{path}: unsupported tokenizer.ggml.model '{model}' (supported: gpt2, llama, bert, t5)");
        }
    }

    private static int? CheckedId(GgufMetadata meta, string key, int vocab)
    {
        long? v = meta.GetInteger(key);
        if (v is null) return null;
        if (v < 0 || v >= vocab) throw new FormatException($"{meta.Path}: {key} = {v} is out of range [0, {vocab})");
        return (int)v;
    }
}
