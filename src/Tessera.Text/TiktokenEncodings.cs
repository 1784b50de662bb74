namespace Tessera.Text;

/// <summary>
/// The OpenAI encodings whose rank files Tessera reads: each pairs a <c>.tiktoken</c> file
/// with its pre-tokenizer regex and special tokens (as published in tiktoken's
/// <c>openai_public.py</c>).
/// </summary>
public static class TiktokenEncodings
{
    /// <summary>Names this class knows.</summary>
    public static IReadOnlyList<string> Names { get; } = ["r50k_base", "cl100k_base", "o200k_base"];

    /// <summary>Loads a named encoding from its rank file.</summary>
    /// <exception cref="ArgumentException">Unknown encoding name.</exception>
    public static BpeTokenizer Load(string name, string rankFile)
    {
        var (pattern, specials) = Describe(name);
        return new BpeTokenizer(name, TiktokenFile.Read(rankFile), null, pattern, new SpecialTokenSet(specials));
    }

    /// <summary>Whether <paramref name="name"/> is a known encoding.</summary>
    public static bool IsKnown(string name) => Names.Contains(name);

    /// <summary>The pre-tokenizer pattern and special tokens of a named encoding.</summary>
    public static (string Pattern, Dictionary<string, int> Specials) Describe(string name) => name switch
    {
        "r50k_base" => (PreTokenizer.Gpt2Pattern, new() { ["<|endoftext|>"] = 50256 }),
        "cl100k_base" => (PreTokenizer.Cl100kPattern, new()
        {
            ["<|endoftext|>"] = 100257, ["<|fim_prefix|>"] = 100258, ["<|fim_middle|>"] = 100259,
            ["<|fim_suffix|>"] = 100260, ["<|endofprompt|>"] = 100276,
        }),
        "o200k_base" => (PreTokenizer.O200kPattern, new() { ["<|endoftext|>"] = 199999, ["<|endofprompt|>"] = 200018 }),
        _ => throw new ArgumentException($"unknown tiktoken encoding '{name}'; known: {string.Join(", ", Names)}"),
    };
}
