namespace Tessera.Text;

/// <summary>
/// The pre-tokenizers llama.cpp's loader names in GGUF <c>tokenizer.ggml.pre</c>: for each name,
/// the regexes applied in sequence (each splits every piece into its matches and the gaps
/// between them) and whether whole pre-tokens found in the vocabulary skip merging. The regexes
/// are those of the models' tokenizer.json files, as llama.cpp lists them (src/llama-vocab.cpp).
/// </summary>
public static class GgufPreTokenizers
{
    private const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    private const string Llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Tekken = @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Bloom = @" ?[^(\s|.,!?…。，、।۔،)]+";

    /// <summary>The regex sequence and the ignore-merges flag of a pre-tokenizer name.</summary>
    /// <exception cref="FormatException">An unknown name, or one llama.cpp implements with custom code that Tessera lacks; the message names it.</exception>
    public static (string[] Regexes, bool IgnoreMerges) For(string name) => name switch
    {
        "default" => ([@"[\p{P}\$\+<=>\^~\|]+", Gpt2, @"\p{N}+", "[0-9][0-9][0-9]"], false),
        "llama3" or "llama-v3" or "llama-bpe" or "falcon3" or "falcon-h1" or "pixtral" or "midm-2.0" or "lfm2" or "dbrx" or "smaug-bpe" => ([Llama3], name is not ("dbrx" or "smaug-bpe")),
        "deepseek-llm" => ([@"[\r\n]",
            @"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
            @"\s?[!-/:-~！-／：-～‘-‟　-。]+", @"\s+$", "[一-龥ࠀ-一가-퟿]+", @"\p{N}+"], false),
        "deepseek-v3" or "hunyuan-dense" => ([@"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
            @"[!""#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"], false),
        "deepseek-coder" => ([@"[\r\n]", @"\s?\p{L}+", @"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", @"\p{N}"], false),
        "falcon" => ([@"[\p{P}\$\+<=>\^~\|`]+", Gpt2, "[0-9][0-9][0-9]"], false),
        "starcoder" or "refact" or "command-r" or "smollm" or "codeshell" or "exaone" or "minerva-7b" => ([@"\p{N}", Gpt2], false),
        "gpt-2" or "phi-2" or "jina-es" or "jina-de" or "gigachat" or "jina-v2-es" or "jina-v2-de" or "a.x-4.0" or "mellum" or "jina-v1-en" or "jina-v2-code"
            or "roberta-bpe" or "mpt" or "olmo" or "jais" or "trillion" or "exaone4" => ([Gpt2], false),
        "qwen2" or "deepseek-r1-qwen" or "stablelm2" or "megrez" or "hunyuan" or "grok-2" => ([Qwen2], false),
        "poro-chat" or "bloom" or "gpt3-finnish" => ([Bloom], false),
        "glm4" or "chatglm-bpe" => ([Llama3], false),
        "viking" => ([Bloom, @"\p{N}"], false),
        "tekken" => ([Tekken], true),
        "chameleon" => (["<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", @"([\t\n]|    |  )", @"\p{N}", @"[\p{P}!-/:-@\[-`{-~]", Gpt2], false),
        "gpt-4o" or "llama4" => ([PreTokenizer.O200kPattern], false),
        "superbpe" => ([@"\p{N}+", @"(?=(\d{3})+(?!\d))"], false),
        "bailingmoe" or "llada-moe" => ([@"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"], false),
        "seed-coder" => ([@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"], false),
        "kimi-k2" => throw new FormatException("pre-tokenizer 'kimi-k2' is not supported (llama.cpp runs it with custom Han-aware code, not a regex list)"),
        _ => throw new FormatException($"unknown pre-tokenizer '{name}' (llama.cpp's loader does not name it either)"),
    };

    /// <summary>Every name <see cref="For"/> knows (kimi-k2 included, which it refuses).</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "dbrx", "smaug-bpe", "deepseek-llm", "deepseek-v3",
        "hunyuan-dense", "deepseek-coder", "falcon", "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "gpt-2", "phi-2", "jina-es",
        "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion", "exaone4",
        "qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan", "grok-2", "poro-chat", "bloom", "gpt3-finnish", "glm4", "chatglm-bpe", "viking", "tekken",
        "chameleon", "gpt-4o", "llama4", "superbpe", "bailingmoe", "llada-moe", "seed-coder", "kimi-k2",
    ];
}
