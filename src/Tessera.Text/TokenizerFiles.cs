using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tessera.Text;

/// <summary>
/// Saving and loading tokenizers. A Tessera tokenizer directory holds
/// <c>tokenizer.tiktoken</c> (rank file, rank = id) and <c>tokenizer-config.json</c>
/// (<c>{"format","pattern","special_tokens"}</c>). <see cref="Load"/> also accepts a GGUF
/// file, a Hugging Face <c>tokenizer.json</c>, a <c>.tiktoken</c> file named after a known
/// encoding (e.g. <c>cl100k_base.tiktoken</c>), or the word <c>bytes</c>.
/// </summary>
public static class TokenizerFiles
{
    /// <summary>Rank file name inside a tokenizer directory.</summary>
    public const string RanksFile = "tokenizer.tiktoken";
    /// <summary>Config file name inside a tokenizer directory.</summary>
    public const string ConfigFile = "tokenizer-config.json";
    private const string Format = "tessera-bpe-1";

    /// <summary>Saves a byte-level BPE tokenizer (rank = id) to <paramref name="dir"/>.</summary>
    public static void Save(BpeTokenizer tokenizer, string dir)
    {
        Directory.CreateDirectory(dir);
        var tokens = new byte[]?[tokenizer.VocabSize];
        for (int id = 0; id < tokenizer.VocabSize; id++)
            if (tokenizer.IsAssigned(id) && !tokenizer.SpecialTokens.IsSpecial(id)) tokens[id] = tokenizer.TokenBytes(id).ToArray();
        TiktokenFile.Write(Path.Combine(dir, RanksFile), tokens);
        var specials = new JsonObject();
        foreach (var (text, id) in tokenizer.SpecialTokens.ById) specials[text] = id;
        var config = new JsonObject { ["format"] = Format, ["pattern"] = tokenizer.Pattern, ["special_tokens"] = specials };
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), config.ToJsonString(JsonNaming.Indented) + "\n");
    }

    /// <summary>Loads a tokenizer from a directory or file (see the class summary).</summary>
    /// <exception cref="FileNotFoundException">Nothing at <paramref name="path"/>.</exception>
    /// <exception cref="FormatException">A malformed file; the message names it.</exception>
    public static ITokenizer Load(string path)
    {
        if (path == "bytes") return new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        if (Directory.Exists(path)) return LoadDirectory(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer not found: {path}", path);
        if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return GgufVocabulary.Load(path).Tokenizer;
        if (path.EndsWith(".tiktoken", StringComparison.OrdinalIgnoreCase))
        {
            var config = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, ConfigFile);
            if (File.Exists(config)) return LoadDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            string name = Path.GetFileNameWithoutExtension(path);
            if (!TiktokenEncodings.IsKnown(name))
                throw new FormatException($"{path}: unknown encoding '{name}' and no {ConfigFile} beside it (known: {string.Join(", ", TiktokenEncodings.Names)})");
            return TiktokenEncodings.Load(name, path);
        }
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return HfTokenizer.Load(path);
        throw new FormatException($"{path}: unrecognised tokenizer file (expected a directory, .gguf, .tiktoken or tokenizer.json)");
    }

    private static BpeTokenizer LoadDirectory(string dir)
    {
        var configPath = Path.Combine(dir, ConfigFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{dir}: no {ConfigFile} (not a Tessera tokenizer directory)", configPath);
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(configPath)); }
        catch (JsonException e) { throw new FormatException($"{configPath}: invalid JSON at line {e.LineNumber + 1}: {e.Message}"); }
        if (root is not JsonObject obj || obj["format"]?.GetValue<string>() != Format)
            throw new FormatException($"{configPath}: expected \"format\": \"{Format}\"");
        string pattern = obj["pattern"]?.GetValue<string>() ?? throw new FormatException($"{configPath}: missing \"pattern\"");
        var specials = new Dictionary<string, int>();
        if (obj["special_tokens"] is JsonObject sp)
            foreach (var (k, v) in sp)
                specials[k] = v is JsonValue jv && jv.TryGetValue(out int id) && id >= 0 ? id
                    : throw new FormatException($"{configPath}: special token '{k}' needs a non-negative integer id");
        var tokens = TiktokenFile.Read(Path.Combine(dir, RanksFile));
        return new BpeTokenizer(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))), tokens, null, pattern, new SpecialTokenSet(specials));
    }
}
