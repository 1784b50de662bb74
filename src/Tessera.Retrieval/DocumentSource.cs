using System.Globalization;
using System.Text;
using System.Text.Json;
using Tessera.Retrieval.Mail;

namespace Tessera.Retrieval;

/// <summary>
/// Reads what <c>tessera index build --input</c> accepts and cuts documents into passages.
/// A <c>.jsonl</c> file holds one document per line (<c>{"id": ..., "text": ..., "date": "yyyy-mm-dd"}</c>,
/// id and date optional); any other file is one document whose id is its path relative to the
/// input folder and whose date is its last write time. Binary files (a NUL byte in the first
/// 8 KiB) are skipped, so a user's mail or home folder can be indexed as it is.
/// A mail file (<see cref="MailMessage.LooksLikeMail"/>: RFC 5322 headers at the top, an mbox
/// <c>From </c> line allowed before them) is indexed as <see cref="MailMessage.ToDocumentText"/>
/// (<c>Subject: …</c>, a blank line, the decoded text body), dated by its <c>Date</c> header (the
/// file's write time when that is missing or not a date); an mbox file of several messages gives
/// one document per message, id <c>path#n</c> (n from 1). Citation offsets are into that document
/// text, not into the raw file. Binary files and messages with neither subject nor text are
/// skipped and reported to the <c>skipped</c> callback, one line naming the file and the reason.
/// </summary>
public static class DocumentSource
{
    /// <summary>Documents under a file or folder (folders recursively, in ordinal path order).</summary>
    /// <param name="input">A file or folder.</param>
    /// <param name="skipped">Told, one line each, about files and mail messages left out and why (binary, a message with no text).</param>
    public static IEnumerable<SourceDocument> Read(string input, Action<string>? skipped = null)
    {
        if (File.Exists(input)) return ReadFile(input, Path.GetFileName(input), skipped);
        if (!Directory.Exists(input)) throw new FileNotFoundException($"index input not found: {input} (expected a text/.jsonl file or a folder of them)");
        string root = Path.GetFullPath(input);
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal);
        return files.SelectMany(f => ReadFile(f, Path.GetRelativePath(root, f).Replace('\\', '/'), skipped));
    }

    static IEnumerable<SourceDocument> ReadFile(string path, string id, Action<string>? skipped)
    {
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return ReadJsonLines(path, id);
        var bytes = File.ReadAllBytes(path);
        if (bytes.AsSpan(0, Math.Min(bytes.Length, 8192)).IndexOf((byte)0) >= 0)
        {
            skipped?.Invoke($"{path}: skipped, binary (a NUL byte in the first 8 KiB)");
            return [];
        }
        string text = new UTF8Encoding(false, false).GetString(bytes);
        var written = new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero);
        if (MailMessage.LooksLikeMail(text)) return ReadMail(path, bytes, id, written, skipped);
        return string.IsNullOrWhiteSpace(text) ? [] : [new SourceDocument(id, text, written)];
    }

    static IEnumerable<SourceDocument> ReadMail(string path, byte[] bytes, string id, DateTimeOffset written, Action<string>? skipped)
    {
        string text = MailCorpus.DecodeText(bytes);   // UTF-8 where valid, else Latin-1: 8-bit mail keeps every byte
        var spans = MailMessage.SplitMbox(text);
        for (int i = 0; i < spans.Count; i++)
        {
            string docId = spans.Count == 1 ? id : $"{id}#{i + 1}";
            var message = MailMessage.Parse(text.Substring(spans[i].Start, spans[i].Length));   // never throws: a broken part stays raw text
            if (string.IsNullOrWhiteSpace(message.Subject) && string.IsNullOrWhiteSpace(message.Body))
            {
                skipped?.Invoke($"{path}" + (spans.Count == 1 ? "" : $" (message {i + 1} of {spans.Count})") + ": skipped, a mail message with no subject and no text body");
                continue;
            }
            yield return new SourceDocument(docId, message.ToDocumentText(), message.Date ?? written);
        }
    }

    static IEnumerable<SourceDocument> ReadJsonLines(string path, string fileId)
    {
        int line = 0;
        foreach (string raw in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            JsonElement e;
            try { e = JsonDocument.Parse(raw).RootElement; }
            catch (JsonException x) { throw new InvalidDataException($"{path}:{line}: not a JSON object ({x.Message})"); }
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{path}:{line}: expected an object with a string \"text\" field");
            string id = e.TryGetProperty("id", out var i) ? (i.ValueKind == JsonValueKind.String ? i.GetString()! : i.GetRawText()) : $"{fileId}#{line}";
            DateTimeOffset? date = null;
            if (e.TryGetProperty("date", out var d) && d.ValueKind == JsonValueKind.String)
                date = DateTimeOffset.TryParse(d.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var v) ? v
                    : throw new InvalidDataException($"{path}:{line}: date \"{d.GetString()}\" is not an ISO date (yyyy-mm-dd)");
            yield return new SourceDocument(id, t.GetString()!, date);
        }
    }

    /// <summary>
    /// Cuts text into passages of at most <paramref name="maxWords"/> whitespace-separated words,
    /// preferring to end at a paragraph break; returns (start, length) character spans that cover
    /// every word exactly once.
    /// </summary>
    public static List<(int Start, int Length)> Chunk(string text, int maxWords = 120)
    {
        if (maxWords < 1) throw new ArgumentOutOfRangeException(nameof(maxWords), maxWords, "passage length must be ≥ 1 word");
        var spans = new List<(int, int)>();
        int i = 0, n = text.Length;
        while (i < n)
        {
            while (i < n && char.IsWhiteSpace(text[i])) i++;
            if (i >= n) break;
            int start = i, words = 0, end = i, lastBreak = -1;
            while (i < n && words < maxWords)
            {
                while (i < n && !char.IsWhiteSpace(text[i])) i++;
                words++; end = i;
                int ws = i;
                while (i < n && char.IsWhiteSpace(text[i])) i++;
                if (text.AsSpan(ws, i - ws).Count('\n') >= 2 && words >= maxWords / 2) lastBreak = end;
                if (lastBreak == end) break;
            }
            spans.Add((start, end - start));
            i = end;
        }
        return spans;
    }
}
