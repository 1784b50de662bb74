using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tessera.Text;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> into an <see cref="HfTokenizer"/>. Supported:
/// normalizers NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip, StripAccents,
/// BertNormalizer, Sequence; pre-tokenizers Split, ByteLevel, Digits, Metaspace, Whitespace,
/// WhitespaceSplit, Punctuation, BertPreTokenizer, Sequence; models BPE, Unigram, WordPiece;
/// post-processors TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, Sequence;
/// decoders ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, WordPiece, BPEDecoder,
/// Sequence. Anything else is a <see cref="FormatException"/> naming the file and component.
/// </summary>
public static class HfTokenizerLoader
{
    /// <summary>Loads the file.</summary>
    /// <exception cref="FormatException">Malformed JSON or an unsupported / inconsistent component; the message names the file and the component.</exception>
    public static HfTokenizer Load(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        return Parse(bytes, path);
    }

    /// <summary>Parses tokenizer.json content; <paramref name="where"/> names it in errors.</summary>
    /// <exception cref="FormatException">See <see cref="Load"/>.</exception>
    public static HfTokenizer Parse(ReadOnlySpan<byte> json, string where)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 256 }); }
        catch (JsonException e) { throw new FormatException($"{where}: invalid JSON at line {e.LineNumber + 1}: {e.Message}"); }
        using (doc)
        {
            try { return Build(doc.RootElement, where); }
            catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or ArgumentException or NotSupportedException && e is not FormatException)
            {
                throw new FormatException($"{where}: {e.Message}", e);
            }
        }
    }

    private static HfTokenizer Build(JsonElement root, string where)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"{where}: the top level is not a JSON object");
        var normalizer = root.TryGetProperty("normalizer", out var n) && n.ValueKind != JsonValueKind.Null ? Normalizer(n, where, "normalizer") : null;
        bool byteLevel = false;
        var pre = root.TryGetProperty("pre_tokenizer", out var p) && p.ValueKind != JsonValueKind.Null ? PreTokenizer(p, where, "pre_tokenizer", ref byteLevel, last: true) : null;
        if (!root.TryGetProperty("model", out var m) || m.ValueKind != JsonValueKind.Object) throw new FormatException($"{where}: missing \"model\"");
        var model = Model(m, where, byteLevel);
        var added = new List<HfAddedToken>();
        var seen = new HashSet<int>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
        {
            int k = 0;
            foreach (var a in at.EnumerateArray())
            {
                string c = $"added_tokens[{k++}]";
                string content = Str(a, "content", where, c);
                int id = Int(a, "id", where, c);
                if (id < 0) throw new FormatException($"{where}: {c}: id {id} is negative");
                if (!seen.Add(id)) throw new FormatException($"{where}: {c}: id {id} ('{content}') is given to an earlier added token too");
                if (content.Length == 0) throw new FormatException($"{where}: {c}: empty content");
                if (model.IdToToken(id) is string mt && mt != content)
                    throw new FormatException($"{where}: {c}: id {id} is '{content}' here but '{mt}' in the model's vocabulary");
                added.Add(new HfAddedToken(content, id, Bool(a, "special", false), Bool(a, "normalized", !Bool(a, "special", false)),
                    Bool(a, "lstrip", false), Bool(a, "rstrip", false), Bool(a, "single_word", false)));
            }
        }
        var post = root.TryGetProperty("post_processor", out var pp) && pp.ValueKind != JsonValueKind.Null
            ? PostProcessor(pp, where, "post_processor", model, added) : HfPostProcessor.None;
        var decoder = root.TryGetProperty("decoder", out var d) && d.ValueKind != JsonValueKind.Null ? Decoder(d, where, "decoder") : null;
        return new HfTokenizer(Path.GetFileName(where), normalizer, pre, byteLevel, model, post, decoder, added);
    }

    private static HfNormalizer Normalizer(JsonElement e, string where, string c)
    {
        string type = Type(e, where, c);
        c = $"{c} '{type}'";
        return type switch
        {
            "NFC" => new HfNormalizer.Unicode(NormalizationForm.FormC, $"{where}: {c}"),
            "NFD" => new HfNormalizer.Unicode(NormalizationForm.FormD, $"{where}: {c}"),
            "NFKC" => new HfNormalizer.Unicode(NormalizationForm.FormKC, $"{where}: {c}"),
            "NFKD" => new HfNormalizer.Unicode(NormalizationForm.FormKD, $"{where}: {c}"),
            "Lowercase" => new HfNormalizer.Lowercase(),
            "Replace" => new HfNormalizer.Replace(Literal(e, where, c), Pattern(e, where, c), Str(e, "content", where, c)),
            "Prepend" => new HfNormalizer.Prepend(Str(e, "prepend", where, c)),
            "Strip" => new HfNormalizer.Strip(Bool(e, "strip_left", true), Bool(e, "strip_right", true)),
            "StripAccents" => new HfNormalizer.StripAccents(),
            "Precompiled" => new HfNormalizer.Precompiled(Charsmap(e, where, c), $"{where}: {c}"),
            "BertNormalizer" => new HfNormalizer.Bert(Bool(e, "clean_text", true), Bool(e, "handle_chinese_chars", true),
                e.TryGetProperty("strip_accents", out var sa) && sa.ValueKind is JsonValueKind.True or JsonValueKind.False ? sa.GetBoolean() : null,
                Bool(e, "lowercase", true), $"{where}: {c}"),
            "Sequence" => new HfNormalizer.Sequence(Array(e, "normalizers", where, c).Select((x, i) => Normalizer(x, where, $"{c}.normalizers[{i}]")).ToList()),
            _ => throw new FormatException($"{where}: {c} is not supported"),
        };
    }

    private static byte[] Charsmap(JsonElement e, string where, string c)
    {
        string b64 = Str(e, "precompiled_charsmap", where, c);
        try { return Convert.FromBase64String(b64); }
        catch (FormatException) { throw new FormatException($"{where}: {c}: precompiled_charsmap is not base64"); }
    }

    private static HfPreTokenizer PreTokenizer(JsonElement e, string where, string c, ref bool byteLevel, bool last)
    {
        string type = Type(e, where, c);
        c = $"{c} '{type}'";
        if (byteLevel) throw new FormatException($"{where}: {c} after a ByteLevel pre-tokenizer is not supported");
        switch (type)
        {
            case "Sequence":
            {
                var items = Array(e, "pretokenizers", where, c);
                var steps = new List<HfPreTokenizer>();
                for (int i = 0; i < items.Count; i++) steps.Add(PreTokenizer(items[i], where, $"{c}.pretokenizers[{i}]", ref byteLevel, last && i == items.Count - 1));
                return new HfPreTokenizer.Sequence(steps);
            }
            case "Split":
            {
                string? literal = Literal(e, where, c);
                string? regex = literal is null ? RegexText(e, where, c) : null;
                try { return new HfPreTokenizer.SplitPattern(literal, regex, Behavior(e, where, c), Bool(e, "invert", false)); }
                catch (FormatException x) { throw new FormatException($"{where}: {c}: {x.Message}"); }
                catch (ArgumentException x) { throw new FormatException($"{where}: {c}: invalid regex: {x.Message}"); }
            }
            case "ByteLevel":
                if (!last) throw new FormatException($"{where}: {c} must be the last pre-tokenizer (others after it are not supported)");
                byteLevel = true;
                return new HfPreTokenizer.ByteLevel(Bool(e, "add_prefix_space", true), Bool(e, "use_regex", true));
            case "Digits": return new HfPreTokenizer.Digits(Bool(e, "individual_digits", false));
            case "Metaspace":
            {
                string rep = Str(e, "replacement", where, c);
                if (rep.Length != 1) throw new FormatException($"{where}: {c}: replacement must be one character");
                string scheme = e.TryGetProperty("prepend_scheme", out var ps) && ps.ValueKind == JsonValueKind.String ? ps.GetString()!
                    : Bool(e, "add_prefix_space", true) ? "always" : "never";
                if (scheme is not ("always" or "first" or "never")) throw new FormatException($"{where}: {c}: prepend_scheme '{scheme}' is not always, first or never");
                return new HfPreTokenizer.Metaspace(rep[0], scheme, Bool(e, "split", true));
            }
            case "Whitespace": return new HfPreTokenizer.Whitespace();
            case "WhitespaceSplit": return new HfPreTokenizer.WhitespaceSplit();
            case "UnicodeScripts": return new HfPreTokenizer.UnicodeScripts();
            case "Punctuation": return new HfPreTokenizer.Punctuation(e.TryGetProperty("behavior", out _) ? Behavior(e, where, c) : HfSplitBehavior.Isolated);
            case "BertPreTokenizer": return new HfPreTokenizer.Bert();
            default: throw new FormatException($"{where}: {c} is not supported");
        }
    }

    private static HfModel Model(JsonElement m, string where, bool byteLevel)
    {
        string type = m.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
            : m.TryGetProperty("merges", out _) ? "BPE" : m.TryGetProperty("vocab", out var v0) && v0.ValueKind == JsonValueKind.Array ? "Unigram" : "WordPiece";
        string c = $"model '{type}'";
        switch (type)
        {
            case "BPE":
            {
                if (m.TryGetProperty("dropout", out var dr) && dr.ValueKind == JsonValueKind.Number && dr.GetDouble() > 0)
                    throw new FormatException($"{where}: {c}: dropout {dr.GetDouble()} is not supported (only off)");
                var vocab = Vocab(m, where, c);
                var merges = new List<(string, string)>();
                int k = 0;
                foreach (var x in Required(m, "merges", where, c).EnumerateArray())
                {
                    if (x.ValueKind == JsonValueKind.String)
                    {
                        string s = x.GetString()!;
                        int sp = s.IndexOf(' ');
                        if (sp <= 0 || sp == s.Length - 1 || s.IndexOf(' ', sp + 1) >= 0) throw new FormatException($"{where}: {c}: merges[{k}] '{s}' is not \"left right\"");
                        merges.Add((s[..sp], s[(sp + 1)..]));
                    }
                    else if (x.ValueKind == JsonValueKind.Array && x.GetArrayLength() == 2 && x[0].ValueKind == JsonValueKind.String && x[1].ValueKind == JsonValueKind.String)
                        merges.Add((x[0].GetString()!, x[1].GetString()!));
                    else throw new FormatException($"{where}: {c}: merges[{k}] is neither \"a b\" nor [\"a\", \"b\"]");
                    k++;
                }
                string? prefix = OptStr(m, "continuing_subword_prefix"), suffix = OptStr(m, "end_of_word_suffix");
                if (byteLevel && (!string.IsNullOrEmpty(prefix) || !string.IsNullOrEmpty(suffix)))
                    throw new FormatException($"{where}: {c}: continuing_subword_prefix / end_of_word_suffix with a ByteLevel pre-tokenizer is not supported");
                return new HfBpeModel(vocab, merges, OptStr(m, "unk_token"), Bool(m, "byte_fallback", false), Bool(m, "fuse_unk", false),
                    Bool(m, "ignore_merges", false), prefix, suffix, where);
            }
            case "Unigram":
            {
                var list = new List<(string, double)>();
                int k = 0;
                foreach (var x in Required(m, "vocab", where, c).EnumerateArray())
                {
                    if (x.ValueKind != JsonValueKind.Array || x.GetArrayLength() != 2 || x[0].ValueKind != JsonValueKind.String || x[1].ValueKind != JsonValueKind.Number)
                        throw new FormatException($"{where}: {c}: vocab[{k}] is not [\"piece\", score]");
                    list.Add((x[0].GetString()!, x[1].GetDouble()));
                    k++;
                }
                int? unk = m.TryGetProperty("unk_id", out var u) && u.ValueKind == JsonValueKind.Number ? u.GetInt32() : null;
                return new HfUnigramModel(list, unk, Bool(m, "byte_fallback", false), where);
            }
            case "WordPiece":
                return new HfWordPieceModel(Vocab(m, where, c), OptStr(m, "unk_token") ?? "[UNK]", OptStr(m, "continuing_subword_prefix") ?? "##",
                    m.TryGetProperty("max_input_chars_per_word", out var mc) && mc.ValueKind == JsonValueKind.Number ? mc.GetInt32() : 100, where);
            default:
                throw new FormatException($"{where}: {c} is not supported (BPE, Unigram, WordPiece)");
        }
    }

    private static Dictionary<string, int> Vocab(JsonElement m, string where, string c)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var ids = new Dictionary<int, string>();
        var v = Required(m, "vocab", where, c);
        if (v.ValueKind != JsonValueKind.Object) throw new FormatException($"{where}: {c}: vocab is not an object of token → id");
        foreach (var entry in v.EnumerateObject())
        {
            if (!entry.Value.TryGetInt32(out int id) || id < 0) throw new FormatException($"{where}: {c}: vocab entry '{entry.Name}' has an invalid id");
            if (!ids.TryAdd(id, entry.Name)) throw new FormatException($"{where}: {c}: vocab gives id {id} to both '{ids[id]}' and '{entry.Name}'");
            if (!vocab.TryAdd(entry.Name, id)) throw new FormatException($"{where}: {c}: vocab lists '{entry.Name}' twice");
        }
        return vocab;
    }

    private static HfPostProcessor PostProcessor(JsonElement e, string where, string c, HfModel model, List<HfAddedToken> added)
    {
        string type = Type(e, where, c);
        c = $"{c} '{type}'";
        int IdOf(string token)
        {
            foreach (var a in added) if (a.Content == token) return a.Id;
            return model.TryTokenToId(token, out int id) ? id : throw new FormatException($"{where}: {c}: token '{token}' is not in the vocabulary");
        }
        int TokenAt(JsonElement pair, string name)
        {
            if (!e.TryGetProperty(name, out var x) || x.ValueKind != JsonValueKind.Array || x.GetArrayLength() != 2)
                throw new FormatException($"{where}: {c}: \"{name}\" should be [token, id]");
            return x[1].GetInt32();
        }
        switch (type)
        {
            case "ByteLevel": return HfPostProcessor.None;
            case "Sequence":
            {
                var result = HfPostProcessor.None;
                int i = 0;
                foreach (var x in Array(e, "processors", where, c)) result = result.Then(PostProcessor(x, where, $"{c}.processors[{i++}]", model, added));
                return result;
            }
            case "BertProcessing" or "RobertaProcessing":
                return new HfPostProcessor([TokenAt(e, "cls")], [TokenAt(e, "sep")]);
            case "TemplateProcessing":
            {
                var specials = new Dictionary<string, List<int>>();
                if (e.TryGetProperty("special_tokens", out var st) && st.ValueKind == JsonValueKind.Object)
                    foreach (var s in st.EnumerateObject())
                        specials[s.Name] = Array(s.Value, "ids", where, $"{c}.special_tokens['{s.Name}']").Select(x => x.GetInt32()).ToList();
                var prefix = new List<int>();
                var suffix = new List<int>();
                bool seenSequence = false;
                foreach (var piece in Array(e, "single", where, c))
                {
                    if (piece.TryGetProperty("Sequence", out var seq))
                    {
                        if (seq.TryGetProperty("id", out var sid) && sid.GetString() != "A") throw new FormatException($"{where}: {c}: the single template uses sequence '{sid.GetString()}', expected A");
                        if (seenSequence) throw new FormatException($"{where}: {c}: the single template repeats the sequence");
                        seenSequence = true;
                    }
                    else if (piece.TryGetProperty("SpecialToken", out var sp))
                    {
                        string id = Str(sp, "id", where, c);
                        var ids = specials.TryGetValue(id, out var l) ? l : [IdOf(id)];
                        (seenSequence ? suffix : prefix).AddRange(ids);
                    }
                    else throw new FormatException($"{where}: {c}: template piece {piece.GetRawText()} is neither Sequence nor SpecialToken");
                }
                return new HfPostProcessor(prefix, suffix);
            }
            default: throw new FormatException($"{where}: {c} is not supported");
        }
    }

    private static HfDecoder Decoder(JsonElement e, string where, string c)
    {
        string type = Type(e, where, c);
        c = $"{c} '{type}'";
        switch (type)
        {
            case "ByteLevel": return new HfDecoder.ByteLevel();
            case "ByteFallback": return new HfDecoder.ByteFallback();
            case "Fuse": return new HfDecoder.Fuse();
            case "Strip":
            {
                string content = Str(e, "content", where, c);
                if (content.Length != 1) throw new FormatException($"{where}: {c}: content must be one character");
                return new HfDecoder.Strip(content[0], Int(e, "start", where, c), Int(e, "stop", where, c));
            }
            case "Replace": return new HfDecoder.Replace(Literal(e, where, c), Pattern(e, where, c), Str(e, "content", where, c));
            case "Metaspace":
            {
                string rep = Str(e, "replacement", where, c);
                if (rep.Length != 1) throw new FormatException($"{where}: {c}: replacement must be one character");
                string scheme = e.TryGetProperty("prepend_scheme", out var ps) && ps.ValueKind == JsonValueKind.String ? ps.GetString()!
                    : Bool(e, "add_prefix_space", true) ? "always" : "never";
                return new HfDecoder.Metaspace(rep[0], scheme != "never");
            }
            case "WordPiece": return new HfDecoder.WordPiece(OptStr(e, "prefix") ?? "##", Bool(e, "cleanup", true));
            case "BPEDecoder": return new HfDecoder.Bpe(OptStr(e, "suffix") ?? "</w>");
            case "Sequence":
                return new HfDecoder.Sequence(Array(e, "decoders", where, c).Select((x, i) => Decoder(x, where, $"{c}.decoders[{i}]")).ToList());
            default: throw new FormatException($"{where}: {c} is not supported");
        }
    }

    private static HfSplitBehavior Behavior(JsonElement e, string where, string c)
    {
        string b = Str(e, "behavior", where, c);
        return b switch
        {
            "Removed" => HfSplitBehavior.Removed,
            "Isolated" => HfSplitBehavior.Isolated,
            "MergedWithPrevious" => HfSplitBehavior.MergedWithPrevious,
            "MergedWithNext" => HfSplitBehavior.MergedWithNext,
            "Contiguous" => HfSplitBehavior.Contiguous,
            _ => throw new FormatException($"{where}: {c}: behavior '{b}' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous"),
        };
    }

    private static string? Literal(JsonElement e, string where, string c)
    {
        var p = Required(e, "pattern", where, c);
        return p.TryGetProperty("String", out var s) ? s.GetString() ?? "" : null;
    }

    private static string RegexText(JsonElement e, string where, string c)
    {
        var p = Required(e, "pattern", where, c);
        return p.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()!
            : throw new FormatException($"{where}: {c}: pattern is neither {{\"String\"}} nor {{\"Regex\"}}");
    }

    private static Regex? Pattern(JsonElement e, string where, string c)
    {
        if (Literal(e, where, c) is not null) return null;
        string rx = RegexText(e, where, c);
        try { return OnigPattern.Compile(rx); }
        catch (Exception x) when (x is FormatException or ArgumentException) { throw new FormatException($"{where}: {c}: regex '{rx}': {x.Message}"); }
    }

    private static string Type(JsonElement e, string where, string c) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
            : throw new FormatException($"{where}: {c} has no \"type\"");

    private static JsonElement Required(JsonElement e, string name, string where, string c) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) ? v : throw new FormatException($"{where}: {c} has no \"{name}\"");

    private static List<JsonElement> Array(JsonElement e, string name, string where, string c)
    {
        var v = Required(e, name, where, c);
        return v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().ToList() : throw new FormatException($"{where}: {c}: \"{name}\" is not an array");
    }

    private static string Str(JsonElement e, string name, string where, string c)
    {
        var v = Required(e, name, where, c);
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new FormatException($"{where}: {c}: \"{name}\" is not a string");
    }

    private static int Int(JsonElement e, string name, string where, string c)
    {
        var v = Required(e, name, where, c);
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw new FormatException($"{where}: {c}: \"{name}\" is not an integer");
    }

    private static string? OptStr(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool Bool(JsonElement e, string name, bool fallback) =>
        e.TryGetProperty(name, out var v) ? v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => fallback } : fallback;
}
