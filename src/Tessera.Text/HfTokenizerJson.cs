using System.Text.Json;

namespace Tessera.Text;

/// <summary>
/// Loads a Hugging Face <c>tokenizer.json</c> whose model is byte-level BPE (GPT-2 style:
/// a <c>ByteLevel</c> pre-tokenizer, optionally after a <c>Split</c> regex). Honours
/// <c>model.ignore_merges</c>: when set, a pre-token that is itself in the vocabulary is
/// emitted directly instead of being merged from bytes. Merges may be <c>"a b"</c> strings
/// or <c>["a", "b"]</c> pairs. <c>added_tokens</c> become special tokens.
/// </summary>
public static class HfTokenizerJson
{
    /// <summary>Loads the file.</summary>
    /// <exception cref="FormatException">Unsupported model/pre-tokenizer or malformed content; the message names the file and item.</exception>
    public static BpeTokenizer Load(string path)
    {
        JsonDocument doc;
        byte[] bytes = File.ReadAllBytes(path);
        // JSON must be UTF-8; System.Text.Json only notices bad bytes in a string when it is read.
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new FormatException($"{path}: not valid UTF-8");
        try { doc = JsonDocument.Parse(bytes); }
        catch (JsonException e) { throw new FormatException($"{path}: invalid JSON at line {e.LineNumber + 1}: {e.Message}"); }
        using (doc)
        try
        {
            var root = doc.RootElement;
            if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
                throw new FormatException($"{path}: missing \"model\"");
            string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "BPE";
            if (type != "BPE") throw new FormatException($"{path}: model type '{type}' is not supported (only BPE)");
            bool ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
            if (model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True)
                throw new FormatException($"{path}: byte_fallback BPE (SentencePiece-style) is not supported; only byte-level BPE");

            var vocab = new List<string?>();
            foreach (var entry in Required(model, "vocab", path).EnumerateObject())
            {
                if (!entry.Value.TryGetInt32(out int id) || id < 0 || id > 16_000_000)
                    throw new FormatException($"{path}: vocab entry '{entry.Name}' has an invalid id");
                while (vocab.Count <= id) vocab.Add(null);
                if (vocab[id] is not null) throw new FormatException($"{path}: id {id} is used by '{vocab[id]}' and '{entry.Name}'");
                vocab[id] = entry.Name;
            }

            var merges = new List<string>();
            int k = 0;
            foreach (var m in Required(model, "merges", path).EnumerateArray())
            {
                merges.Add(m.ValueKind switch
                {
                    JsonValueKind.String => m.GetString()!,
                    JsonValueKind.Array when m.GetArrayLength() == 2 => $"{m[0].GetString()} {m[1].GetString()}",
                    _ => throw new FormatException($"{path}: merge {k} is neither \"a b\" nor [\"a\", \"b\"]"),
                });
                k++;
            }

            var specials = new Dictionary<string, int>();
            if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
                foreach (var a in added.EnumerateArray())
                {
                    string content = a.GetProperty("content").GetString() ?? throw new FormatException($"{path}: added token without content");
                    int id = a.GetProperty("id").GetInt32();
                    specials[content] = id;
                }

            string pattern = PreTokenizerPattern(root, path);
            return ByteLevelVocabulary.Build(Path.GetFileName(path), vocab, null, merges, pattern, ignoreMerges, specials);
        }
        // A required field missing or of the wrong JSON type (found by fuzzing): name the file. Plain
        // catch clauses, not an exception filter: the SharpFuzz-instrumented build crashed in the filter.
        catch (KeyNotFoundException e) { throw new FormatException($"{path}: malformed tokenizer.json ({e.Message})"); }
        catch (InvalidOperationException e) { throw new FormatException($"{path}: malformed tokenizer.json ({e.Message})"); }
    }

    private static JsonElement Required(JsonElement obj, string name, string path) =>
        obj.TryGetProperty(name, out var v) ? v : throw new FormatException($"{path}: model has no \"{name}\"");

    private static string PreTokenizerPattern(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object)
            throw new FormatException($"{path}: no pre_tokenizer; only byte-level BPE is supported");
        var steps = pre.GetProperty("type").GetString() == "Sequence"
            ? pre.GetProperty("pretokenizers").EnumerateArray().ToList()
            : [pre];
        string? split = null;
        bool byteLevel = false, byteLevelRegex = false;
        foreach (var s in steps)
        {
            switch (s.GetProperty("type").GetString())
            {
                case "Split":
                    if (!s.GetProperty("pattern").TryGetProperty("Regex", out var rx))
                        throw new FormatException($"{path}: Split pre-tokenizer needs a Regex pattern");
                    split = rx.GetString();
                    break;
                case "ByteLevel":
                    byteLevel = true;
                    if (s.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True)
                        throw new FormatException($"{path}: ByteLevel add_prefix_space = true is not supported");
                    byteLevelRegex = !s.TryGetProperty("use_regex", out var ur) || ur.ValueKind != JsonValueKind.False;
                    break;
                default:
                    throw new FormatException($"{path}: pre-tokenizer '{s.GetProperty("type").GetString()}' is not supported");
            }
        }
        if (!byteLevel) throw new FormatException($"{path}: no ByteLevel pre-tokenizer; only byte-level BPE is supported");
        if (split is not null && byteLevelRegex) throw new FormatException($"{path}: a Split regex followed by ByteLevel use_regex = true is not supported");
        return split ?? PreTokenizer.Gpt2Pattern;
    }
}
