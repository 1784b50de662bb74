using System.Text;
using System.Text.Json;

namespace Tessera.Data;

/// <summary>
/// JSON Lines input (<c>.jsonl</c>, or gzipped <c>.jsonl.gz</c>): each non-blank line is one JSON
/// object and one document, whose text is the string in its text field (<c>text</c> unless
/// another is named). Every line is checked before any document is returned: a line that is not
/// valid JSON, not an object, lacks the field, or holds something other than a string there is
/// collected with its 1-based line number, and the file is rejected with all of them in one
/// message, so a prepare never writes shards from a file that is only partly readable. A
/// document whose text is the empty string is dropped, as empty documents are in every format.
/// A line without the text field but with string fields <c>prompt</c> and <c>completion</c> is a
/// prompt/completion document: its text is prompt + completion (joined as they are) and training
/// takes the loss on the completion's tokens only (<see cref="CorpusDocument.LossStart"/>).
/// </summary>
public static class JsonlCorpus
{
    /// <summary>At most this many bad lines are quoted in the error; the total is always given.</summary>
    public const int MaxReportedLines = 10;

    /// <summary>Appends the documents of <paramref name="file"/> to <paramref name="docs"/>, keyed <c>key#line</c>.</summary>
    /// <exception cref="InvalidDataException">A line is malformed; the message names the file and lists the bad lines.</exception>
    public static void Read(string file, string key, string textField, List<CorpusDocument> docs)
    {
        byte[] bytes = CorpusFiles.ReadBytes(file);
        var errors = new List<string>();
        int errorCount = 0, line = 0, start = bytes.AsSpan().StartsWith(Encoding.UTF8.Preamble) ? 3 : 0;
        var found = new List<CorpusDocument>();
        while (start < bytes.Length)
        {
            int end = Array.IndexOf(bytes, (byte)'\n', start);
            if (end < 0) end = bytes.Length;
            line++;
            var text = bytes.AsMemory(start, end - start);
            start = end + 1;
            if (text.Span.Trim(" \t\r"u8).IsEmpty) continue;
            string? problem = Parse(text, textField, out string? value, out int lossStart);
            if (problem is not null)
            {
                if (++errorCount <= MaxReportedLines) errors.Add($"line {line}: {problem}");
                continue;
            }
            if (value!.Length > 0) found.Add(new CorpusDocument($"{key}#{line}", value, lossStart));
        }
        if (errorCount > 0)
            throw new InvalidDataException($"{file}: {errorCount} malformed JSONL line(s), nothing was written: {string.Join("; ", errors)}" +
                (errorCount > errors.Count ? $"; and {errorCount - errors.Count} more" : "") + ".");
        docs.AddRange(found);
    }

    /// <summary>
    /// Null when the line is an object whose <paramref name="field"/> is a string (returned in
    /// <paramref name="value"/>), or that has string <c>prompt</c> and <c>completion</c> fields
    /// (their concatenation, with <paramref name="lossStart"/> = the prompt's length); else what is wrong.
    /// </summary>
    static string? Parse(ReadOnlyMemory<byte> line, string field, out string? value, out int lossStart)
    {
        value = null;
        lossStart = 0;
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) return $"expected a JSON object, found {Kind(doc.RootElement.ValueKind)}";
            if (!doc.RootElement.TryGetProperty(field, out var v))
            {
                bool hasPrompt = doc.RootElement.TryGetProperty("prompt", out var prompt), hasCompletion = doc.RootElement.TryGetProperty("completion", out var completion);
                if (!hasPrompt && !hasCompletion) return $"no \"{field}\" field (name the text field with --text-field, or give \"prompt\" and \"completion\")";
                if (!hasPrompt || !hasCompletion) return $"\"{(hasPrompt ? "prompt" : "completion")}\" without \"{(hasPrompt ? "completion" : "prompt")}\" (a prompt/completion document needs both)";
                if (prompt.ValueKind != JsonValueKind.String) return $"\"prompt\" is {Kind(prompt.ValueKind)}, expected a string";
                if (completion.ValueKind != JsonValueKind.String) return $"\"completion\" is {Kind(completion.ValueKind)}, expected a string";
                string p = prompt.GetString()!;
                value = p + completion.GetString();
                lossStart = p.Length;
                return null;
            }
            if (v.ValueKind != JsonValueKind.String) return $"\"{field}\" is {Kind(v.ValueKind)}, expected a string";
            value = v.GetString();
            return null;
        }
        catch (JsonException e)
        {
            // The reader's own position says "LineNumber: 0" (it sees one line); give the column instead.
            string reason = e.Message.Split([" LineNumber:", " Path:"], StringSplitOptions.None)[0].TrimEnd('.', ' ');
            return $"not valid JSON at column {e.BytePositionInLine + 1} ({reason})";
        }
    }

    static string Kind(JsonValueKind k) => k switch
    {
        JsonValueKind.Array => "an array", JsonValueKind.Number => "a number", JsonValueKind.Null => "null",
        JsonValueKind.True or JsonValueKind.False => "a boolean", JsonValueKind.String => "a string", _ => "an object",
    };
}
