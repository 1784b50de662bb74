using System.Text;
using System.Text.Json;
using Tessera.Inference;

namespace Tessera.Server;

/// <summary>
/// Writes token log-probabilities in the two OpenAI shapes: chat's <c>logprobs.content</c> list
/// (token, logprob, bytes, top_logprobs) and the legacy completions' parallel arrays (tokens,
/// token_logprobs, top_logprobs, text_offset). A token's text is its bytes as UTF-8; a token that
/// holds part of a character is written <c>bytes:\xe2\x80</c> as OpenAI does, so distinct tokens
/// never share a key in <c>top_logprobs</c>. Chat's <c>bytes</c> keeps the exact bytes.
/// </summary>
public sealed class TokenLogprobsJson(ServedModel model)
{
    static readonly UTF8Encoding Utf8 = new(false, false);
    readonly Decoder offsets = new UTF8Encoding(false, false).GetDecoder();
    readonly List<(int Id, float Logprob, IReadOnlyList<TokenLogprob> Top, int Offset)> entries = [];
    int chars;
    char[] scratch = new char[16];

    /// <summary>Entries added so far.</summary>
    public int Count => entries.Count;

    /// <summary>
    /// Appends a token whose text follows the previous ones in the returned text; NaN log-probability
    /// (the first token of a scored prompt) is written as null. The text offset counts UTF-16 chars.
    /// </summary>
    public void Add(TokenEvent ev)
    {
        entries.Add((ev.Id, ev.Logprob, ev.Top, chars));
        byte[] bytes = model.TextBytes(ev.Id);   // offsets follow the returned text, where special tokens add nothing
        int n = offsets.GetCharCount(bytes, flush: false);
        if (n > scratch.Length) scratch = new char[n * 2];
        chars += offsets.GetChars(bytes, scratch, flush: false);
    }

    /// <summary>Writes the legacy completions object for entries [<paramref name="from"/>, Count).</summary>
    public void WriteCompletion(Utf8JsonWriter w, int from)
    {
        w.WriteStartObject();
        w.WriteStartArray("tokens");
        for (int i = from; i < entries.Count; i++) w.WriteStringValue(Text(entries[i].Id));
        w.WriteEndArray();
        w.WriteStartArray("token_logprobs");
        for (int i = from; i < entries.Count; i++)
            if (float.IsNaN(entries[i].Logprob)) w.WriteNullValue(); else w.WriteNumberValue(JsonOutput.Logprob(entries[i].Logprob));
        w.WriteEndArray();
        w.WriteStartArray("top_logprobs");
        for (int i = from; i < entries.Count; i++)
        {
            if (float.IsNaN(entries[i].Logprob)) { w.WriteNullValue(); continue; }
            w.WriteStartObject();
            foreach (var t in entries[i].Top)
            {
                string key = Text(t.Id);
                w.WriteNumber(key, JsonOutput.Logprob(t.Logprob));
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("text_offset");
        for (int i = from; i < entries.Count; i++) w.WriteNumberValue(entries[i].Offset);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>Writes chat's <c>{"content":[...]}</c> for entries [<paramref name="from"/>, Count).</summary>
    public void WriteChat(Utf8JsonWriter w, int from)
    {
        w.WriteStartObject();
        w.WriteStartArray("content");
        for (int i = from; i < entries.Count; i++)
        {
            var e = entries[i];
            w.WriteStartObject();
            WriteToken(w, e.Id, e.Logprob);
            w.WriteStartArray("top_logprobs");
            foreach (var t in e.Top)
            {
                w.WriteStartObject();
                WriteToken(w, t.Id, t.Logprob);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    void WriteToken(Utf8JsonWriter w, int id, float logprob)
    {
        byte[] bytes = model.TokenBytes(id);
        w.WriteString("token", Text(bytes));
        w.WriteNumber("logprob", JsonOutput.Logprob(logprob));
        w.WriteStartArray("bytes");
        foreach (byte b in bytes) w.WriteNumberValue(b);
        w.WriteEndArray();
    }

    string Text(int id) => Text(model.TokenBytes(id));

    /// <summary>A token's text, or its bytes spelled out when they are not complete UTF-8.</summary>
    public static string Text(byte[] bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes)) return Utf8.GetString(bytes);
        var sb = new StringBuilder("bytes:");
        foreach (byte b in bytes) sb.Append("\\x").Append(b.ToString("x2"));
        return sb.ToString();
    }
}
