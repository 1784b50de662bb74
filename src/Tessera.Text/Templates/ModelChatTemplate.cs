using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace Tessera.Text.Templates;

/// <summary>
/// A model's own chat template (tokenizer_config.json's <c>chat_template</c> beside a
/// tokenizer.json, or GGUF <c>tokenizer.chat_template</c>) with its BOS/EOS tokens. Encoding
/// renders the conversation and tokenizes the result with the template's special tokens
/// recognised, except inside message content: special-token text a user types is encoded
/// as plain text, so it cannot forge a turn.
/// </summary>
public sealed class ModelChatTemplate
{
    private static readonly ConditionalWeakTable<ITokenizer, ModelChatTemplate> Attached = new();

    /// <summary>Builds a template; <paramref name="where"/> names its source in errors.</summary>
    /// <exception cref="FormatException">The template does not parse; the message names the source.</exception>
    public ModelChatTemplate(string source, string? bosToken, string? eosToken, string where)
    {
        try { Template = new JinjaTemplate(source); }
        catch (JinjaException e) { throw new FormatException($"{where}: chat template: {e.Message}"); }
        BosToken = bosToken;
        EosToken = eosToken;
        Where = where;
    }

    /// <summary>The parsed template.</summary>
    public JinjaTemplate Template { get; }
    /// <summary>BOS text passed as <c>bos_token</c>.</summary>
    public string? BosToken { get; }
    /// <summary>EOS text passed as <c>eos_token</c>; its id ends a reply.</summary>
    public string? EosToken { get; }
    /// <summary>Where the template came from (for messages).</summary>
    public string Where { get; }

    /// <summary>The template attached to a loaded tokenizer, if its files carried one.</summary>
    public static ModelChatTemplate? Of(ITokenizer tokenizer) => Attached.TryGetValue(tokenizer, out var t) ? t : null;

    /// <summary>Attaches a template to a tokenizer (loaders do this).</summary>
    public static void Attach(ITokenizer tokenizer, ModelChatTemplate template) => Attached.AddOrUpdate(tokenizer, template);

    /// <summary>Reads tokenizer_config.json (chat_template, bos_token, eos_token); null when it has no template.</summary>
    /// <exception cref="FormatException">Malformed JSON or template; the message names the file.</exception>
    public static ModelChatTemplate? FromTokenizerConfig(string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new FormatException($"{path}: invalid JSON at line {e.LineNumber + 1}: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (!root.TryGetProperty("chat_template", out var t)) return null;
            string? source = t.ValueKind switch
            {
                JsonValueKind.String => t.GetString(),
                // A list of named templates: take "default".
                JsonValueKind.Array => t.EnumerateArray().Where(x => x.TryGetProperty("name", out var n) && n.GetString() == "default")
                    .Select(x => x.GetProperty("template").GetString()).FirstOrDefault(),
                _ => null,
            };
            if (source is null) return null;
            return new ModelChatTemplate(source, TokenText(root, "bos_token"), TokenText(root, "eos_token"), path);
        }
    }

    private static string? TokenText(JsonElement root, string key) =>
        !root.TryGetProperty(key, out var v) ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) ? c.GetString() : null;

    /// <summary>Renders the conversation as text.</summary>
    /// <exception cref="JinjaException">The template raised (e.g. roles that do not alternate); the message is the template's.</exception>
    public string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra = null) =>
        Template.Render(Variables(messages.Select(m => (m.Role, m.Content)).ToList(), addGenerationPrompt, extra));

    private Dictionary<string, object?> Variables(List<(string Role, string Content)> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra)
    {
        var list = new List<object?>();
        foreach (var (role, content) in messages) list.Add(new JinjaObject { ["role"] = role, ["content"] = content });
        var vars = new Dictionary<string, object?> { ["messages"] = list, ["add_generation_prompt"] = addGenerationPrompt, ["bos_token"] = BosToken, ["eos_token"] = EosToken };
        if (extra is not null) foreach (var (k, v) in extra) vars[k] = v;
        return vars;
    }

    /// <summary>
    /// Encodes a conversation: the rendered template with its special tokens as ids, message
    /// content as plain text. Where content holds special-token text, the conversation is
    /// rendered a second time with each such occurrence replaced by a placeholder; the output
    /// is then encoded in pieces, each placeholder as the plain text it stands for.
    /// </summary>
    /// <exception cref="JinjaException">The template raised; the message is the template's.</exception>
    public List<int> Encode(ITokenizer tokenizer, IEnumerable<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra = null)
    {
        var msgs = messages.Select(m => (m.Role, m.Content)).ToList();
        var specials = tokenizer.SpecialTokens;
        var forged = new List<string>();
        var masked = new List<(string, string)>(msgs.Count);
        foreach (var (role, content) in msgs)
        {
            var sb = new StringBuilder();
            int pos = 0;
            while (pos < content.Length)
            {
                int at = specials.FindNext(content, pos, out int len, out _);
                if (at < 0) break;
                sb.Append(content, pos, at - pos).Append(Placeholder(forged.Count));
                forged.Add(content.Substring(at, len));
                pos = at + len;
            }
            masked.Add((role, forged.Count == 0 ? content : sb.Append(content, pos, content.Length - pos).ToString()));
        }
        string text = Template.Render(Variables(masked, addGenerationPrompt, extra));
        if (forged.Count == 0) return tokenizer.Encode(text, allowSpecial: true);
        var ids = new List<int>();
        int from = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != PlaceholderStart) continue;
            int end = text.IndexOf(PlaceholderEnd, i);
            if (end < 0 || !int.TryParse(text.AsSpan(i + 1, end - i - 1), out int k) || k < 0 || k >= forged.Count) continue;
            ids.AddRange(tokenizer.Encode(text[from..i], allowSpecial: true));
            ids.AddRange(tokenizer.Encode(forged[k], allowSpecial: false));
            from = end + 1;
            i = end;
        }
        ids.AddRange(tokenizer.Encode(text[from..], allowSpecial: true));
        return ids;
    }

    // Noncharacters: they never occur in real text and no template matches on them.
    private const char PlaceholderStart = '\uFDD0', PlaceholderEnd = '\uFDD1';
    private static string Placeholder(int k) => $"{PlaceholderStart}{k}{PlaceholderEnd}";

    /// <summary>The ids that end an assistant reply: EOS and the tokenizer's known end-of-turn markers that the template uses.</summary>
    public IReadOnlySet<int> StopIds(ITokenizer tokenizer)
    {
        var ids = new HashSet<int>();
        var s = tokenizer.SpecialTokens;
        if (EosToken is not null && s.TryGetId(EosToken, out int eos)) ids.Add(eos);
        foreach (var marker in new[] { "<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|return|>", "<|call|>", "<｜end▁of▁sentence｜>", "</s>", "<|endoftext|>" })
            if (Template.Source.Contains(marker, StringComparison.Ordinal) && s.TryGetId(marker, out int id)) ids.Add(id);
        return ids;
    }
}
