using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace Tessera.Retrieval.Mail;

/// <summary>
/// One e-mail message (RFC 5322 / MIME) reduced to what retrieval and language modelling use: its
/// header fields (unfolded, RFC 2047 encoded words decoded) and its readable text. The text is the
/// message's <c>text/plain</c> parts (or, when it has none, its <c>text/html</c> parts stripped to
/// text), with quoted-printable and base64 transfer encodings and the declared charsets decoded;
/// attachments and other media types are left out. Parsing never throws on malformed mail: a
/// broken part is kept as raw text, an undecodable charset falls back to Latin-1.
/// </summary>
public sealed partial class MailMessage
{
    static MailMessage() => Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    readonly List<KeyValuePair<string, string>> headers;

    MailMessage(List<KeyValuePair<string, string>> headers, string body)
    {
        this.headers = headers;
        Body = body;
    }

    /// <summary>The header fields in file order (names as written, values unfolded and decoded).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers => headers;

    /// <summary>The readable text of the message body (see the class summary), lines joined with <c>\n</c>.</summary>
    public string Body { get; }

    /// <summary>The first header field with this name (case-insensitive), or null.</summary>
    public string? Header(string name)
    {
        foreach (var h in headers)
            if (string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)) return h.Value;
        return null;
    }

    /// <summary>The Subject field, or the empty string.</summary>
    public string Subject => Header("Subject") ?? "";

    /// <summary>The From field, or null.</summary>
    public string? From => Header("From");

    /// <summary>The Message-ID field (with its angle brackets), or null.</summary>
    public string? MessageId => Header("Message-ID");

    /// <summary>The In-Reply-To field, or null.</summary>
    public string? InReplyTo => Header("In-Reply-To");

    /// <summary>The Date field as an instant, or null when absent or not an RFC 5322 date.</summary>
    public DateTimeOffset? Date => ParseDate(Header("Date"));

    /// <summary>The text a retriever or a language model reads: <c>Subject: …</c>, a blank line, then <see cref="Body"/>.</summary>
    public string ToDocumentText() => $"Subject: {Subject}\n\n{Body}";

    /// <summary>
    /// Whether <paramref name="text"/> starts like a mail message: an optional mbox <c>From </c>
    /// envelope line, then a header block (every line a <c>Name: value</c> field or a folded
    /// continuation) of at least two fields, among them an originator or transport field
    /// (From, Sender, Return-Path, Received, Message-ID) and a Date, Subject or Received field, ended by a blank line.
    /// </summary>
    public static bool LooksLikeMail(ReadOnlySpan<char> text)
    {
        int pos = 0;
        var first = NextLine(text, ref pos);
        if (!first.StartsWith("From ", StringComparison.Ordinal)) pos = 0;
        int fields = 0;
        bool origin = false, about = false, ended = false;
        while (pos < text.Length)
        {
            var line = NextLine(text, ref pos);
            if (line.Length == 0) { ended = true; break; }
            if (line[0] is ' ' or '\t') { if (fields == 0) return false; continue; }
            int colon = line.IndexOf(':');
            if (colon <= 0 || !IsFieldName(line[..colon])) return false;
            fields++;
            var name = line[..colon];
            if (Is(name, "From") || Is(name, "Sender") || Is(name, "Return-Path") || Is(name, "Received") || Is(name, "Message-ID")) origin = true;
            if (Is(name, "Date") || Is(name, "Subject") || Is(name, "Received")) about = true;
        }
        return ended && fields >= 2 && origin && about;

        static bool Is(ReadOnlySpan<char> a, string b) => a.Equals(b, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Splits an mbox file into its messages: a message starts at a <c>From </c> line at the start
    /// of the file or after a blank line, when what follows it looks like mail (<see cref="LooksLikeMail"/>).
    /// Returns each message's character span in <paramref name="text"/>, envelope line included.
    /// A text that does not start with such a line is one span (the whole text).
    /// </summary>
    public static List<(int Start, int Length)> SplitMbox(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var starts = new List<int>();
        int pos = 0;
        bool previousBlank = true;
        while (pos < text.Length)
        {
            int lineStart = pos;
            var line = NextLine(text, ref pos);
            if (previousBlank && line.StartsWith("From ", StringComparison.Ordinal) && LooksLikeMail(text.AsSpan(lineStart))) starts.Add(lineStart);
            previousBlank = line.Length == 0;
        }
        if (starts.Count == 0 || starts[0] != 0) starts.Insert(0, 0);
        var spans = new List<(int, int)>(starts.Count);
        for (int i = 0; i < starts.Count; i++)
        {
            int end = i + 1 < starts.Count ? starts[i + 1] : text.Length;
            spans.Add((starts[i], end - starts[i]));
        }
        return spans;
    }

    /// <summary>Parses one message (an mbox envelope line first is allowed and ignored). Never throws on malformed input.</summary>
    public static MailMessage Parse(string raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        var span = raw.AsSpan();
        int pos = 0;
        var first = NextLine(span, ref pos);
        if (!first.StartsWith("From ", StringComparison.Ordinal)) pos = 0;
        var headers = ReadHeaders(raw, ref pos);
        string body = raw[Math.Min(pos, raw.Length)..];
        var text = new StringBuilder();
        AppendText(headers, body, text, depth: 0);
        var decoded = headers.Select(h => new KeyValuePair<string, string>(h.Key, DecodeEncodedWords(h.Value))).ToList();
        return new MailMessage(decoded, NormalizeNewlines(text.ToString()).Trim('\n'));
    }

    // ---- headers ----

    static List<KeyValuePair<string, string>> ReadHeaders(string raw, ref int pos)
    {
        var headers = new List<KeyValuePair<string, string>>();
        var span = raw.AsSpan();
        while (pos < raw.Length)
        {
            int lineStart = pos;
            var line = NextLine(span, ref pos);
            if (line.Length == 0) break;
            if (line[0] is ' ' or '\t')
            {
                if (headers.Count > 0)
                {
                    var last = headers[^1];
                    headers[^1] = new(last.Key, last.Value + " " + line.Trim().ToString());
                }
                continue;
            }
            int colon = line.IndexOf(':');
            if (colon <= 0 || !IsFieldName(line[..colon])) { pos = lineStart; break; } // not a header: the body starts here
            headers.Add(new(line[..colon].ToString(), line[(colon + 1)..].Trim().ToString()));
        }
        return headers;
    }

    static bool IsFieldName(ReadOnlySpan<char> name)
    {
        foreach (char c in name) if (c <= ' ' || c > '~') return false;
        return true;
    }

    static ReadOnlySpan<char> NextLine(ReadOnlySpan<char> text, ref int pos)
    {
        if (pos >= text.Length) return [];
        var rest = text[pos..];
        int nl = rest.IndexOf('\n');
        var line = nl < 0 ? rest : rest[..nl];
        pos += nl < 0 ? rest.Length : nl + 1;
        return line.EndsWith("\r") ? line[..^1] : line;
    }

    static string? Field(List<KeyValuePair<string, string>> headers, string name)
    {
        foreach (var h in headers) if (string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)) return h.Value;
        return null;
    }

    /// <summary>A Content-Type value split into its lower-case media type and its parameters.</summary>
    static (string Type, Dictionary<string, string> Parameters) ContentType(string? value)
    {
        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (string.IsNullOrWhiteSpace(value)) return ("text/plain", parameters);
        var parts = value.Split(';');
        string type = parts[0].Trim().ToLowerInvariant();
        foreach (var p in parts.Skip(1))
        {
            int eq = p.IndexOf('=');
            if (eq <= 0) continue;
            string v = p[(eq + 1)..].Trim();
            if (v.Length >= 2 && v[0] == '"' && v[^1] == '"') v = v[1..^1];
            parameters[p[..eq].Trim()] = v;
        }
        return (type.Length == 0 ? "text/plain" : type, parameters);
    }

    // ---- body ----

    static void AppendText(List<KeyValuePair<string, string>> headers, string body, StringBuilder text, int depth)
    {
        var (type, parameters) = ContentType(Field(headers, "Content-Type"));
        if (type.StartsWith("multipart/", StringComparison.Ordinal) && depth < 8 && parameters.TryGetValue("boundary", out var boundary) && boundary.Length > 0)
        {
            var parts = SplitMultipart(body, boundary);
            if (parts.Count == 0) { text.Append(body); return; }
            var parsed = parts.Select(p => { int q = 0; var h = ReadHeaders(p, ref q); return (Headers: h, Body: p[Math.Min(q, p.Length)..], Type: ContentType(Field(h, "Content-Type")).Type); }).ToList();
            if (type == "multipart/alternative")
            {
                // One rendering of the same content: the plain one when there is one.
                var pick = parsed.FirstOrDefault(p => p.Type == "text/plain");
                if (pick.Headers is null) pick = parsed.FirstOrDefault(p => p.Type.StartsWith("multipart/", StringComparison.Ordinal));
                if (pick.Headers is null) pick = parsed.FirstOrDefault(p => p.Type == "text/html");
                if (pick.Headers is not null) AppendText(pick.Headers, pick.Body, text, depth + 1);
                return;
            }
            bool anyPlain = parsed.Any(p => p.Type == "text/plain" || p.Type.StartsWith("multipart/", StringComparison.Ordinal));
            foreach (var p in parsed)
            {
                if (IsAttachment(p.Headers)) continue;
                if (p.Type == "text/html" && anyPlain) continue;
                if (p.Type == "text/plain" || p.Type == "text/html" || p.Type.StartsWith("multipart/", StringComparison.Ordinal) || p.Type == "message/rfc822")
                {
                    if (text.Length > 0 && text[^1] != '\n') text.Append('\n');
                    if (p.Type == "message/rfc822") text.Append(Parse(p.Body).ToDocumentText());
                    else AppendText(p.Headers, p.Body, text, depth + 1);
                }
            }
            return;
        }
        if (!type.StartsWith("text/", StringComparison.Ordinal) && !type.StartsWith("multipart/", StringComparison.Ordinal)) return; // images, applications: no text
        string decoded = DecodeTransfer(body, Field(headers, "Content-Transfer-Encoding"), parameters.GetValueOrDefault("charset"));
        text.Append(type == "text/html" ? HtmlToText(decoded) : decoded);
    }

    static bool IsAttachment(List<KeyValuePair<string, string>> headers) =>
        Field(headers, "Content-Disposition") is { } d && d.TrimStart().StartsWith("attachment", StringComparison.OrdinalIgnoreCase);

    static List<string> SplitMultipart(string body, string boundary)
    {
        var parts = new List<string>();
        string delimiter = "--" + boundary;
        int pos = 0, partStart = -1;
        var span = body.AsSpan();
        while (pos < body.Length)
        {
            int lineStart = pos;
            var line = NextLine(span, ref pos).TrimEnd();
            if (!line.StartsWith(delimiter, StringComparison.Ordinal)) continue;
            var tail = line[delimiter.Length..];
            bool close = tail.SequenceEqual("--");
            if (!close && tail.Length != 0) continue;
            if (partStart >= 0) parts.Add(body[partStart..Math.Max(partStart, lineStart - 1)]);
            if (close) return parts;
            partStart = pos;
        }
        if (partStart >= 0 && partStart < body.Length) parts.Add(body[partStart..]); // no closing delimiter: keep what is there
        return parts;
    }

    static string DecodeTransfer(string body, string? encoding, string? charset)
    {
        string e = (encoding ?? "").Trim().ToLowerInvariant();
        byte[] bytes;
        if (e == "quoted-printable") bytes = DecodeQuotedPrintable(body, headerMode: false);
        else if (e == "base64")
        {
            var clean = new StringBuilder(body.Length);
            foreach (char c in body) if (char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=') clean.Append(c);
            int usable = clean.Length / 4 * 4;
            try { bytes = Convert.FromBase64String(clean.ToString(0, usable)); }
            catch (FormatException) { return body; }
        }
        else return body; // 7bit, 8bit, binary: the text as read
        return CharsetOf(charset).GetString(bytes);
    }

    static Encoding CharsetOf(string? charset)
    {
        if (string.IsNullOrWhiteSpace(charset)) return Encoding.Latin1;
        try { return Encoding.GetEncoding(charset.Trim().Trim('"')); }
        catch (ArgumentException) { return Encoding.Latin1; }
    }

    /// <summary>Quoted-printable to bytes (RFC 2045 §6.7); in header mode (RFC 2047 "Q") an underscore is a space.</summary>
    static byte[] DecodeQuotedPrintable(string s, bool headerMode)
    {
        var bytes = new List<byte>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '=' && i + 1 < s.Length)
            {
                if (s[i + 1] == '\n') { i += 1; continue; }                                  // soft line break
                if (s[i + 1] == '\r' && i + 2 < s.Length && s[i + 2] == '\n') { i += 2; continue; }
                if (i + 2 < s.Length && char.IsAsciiHexDigit(s[i + 1]) && char.IsAsciiHexDigit(s[i + 2]))
                {
                    bytes.Add((byte)Convert.ToInt32(s.Substring(i + 1, 2), 16));
                    i += 2;
                    continue;
                }
            }
            if (headerMode && c == '_') { bytes.Add((byte)' '); continue; }
            if (c < 256) bytes.Add((byte)c);
            else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
        }
        return bytes.ToArray();
    }

    [GeneratedRegex(@"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")]
    private static partial Regex EncodedWord();

    /// <summary>RFC 2047 encoded words (<c>=?charset?B|Q?text?=</c>) in a header value, decoded; whitespace between two encoded words dropped.</summary>
    static string DecodeEncodedWords(string value)
    {
        if (!value.Contains("=?", StringComparison.Ordinal)) return value;
        string joined = Regex.Replace(value, @"(\?=)\s+(=\?)", "$1$2");
        return EncodedWord().Replace(joined, m =>
        {
            var encoding = CharsetOf(m.Groups[1].Value);
            try
            {
                byte[] bytes = m.Groups[2].Value is "b" or "B" ? Convert.FromBase64String(m.Groups[3].Value) : DecodeQuotedPrintable(m.Groups[3].Value, headerMode: true);
                return encoding.GetString(bytes);
            }
            catch (FormatException) { return m.Value; }
        });
    }

    [GeneratedRegex(@"<(script|style)\b.*?</\1\s*>", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex ScriptOrStyle();

    [GeneratedRegex(@"<\s*(br|/p|p|/div|div|/tr|tr|/li|li|/h[1-6]|h[1-6]|/table|table)\b[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex BlockTag();

    [GeneratedRegex(@"<[^>]*>", RegexOptions.Singleline)]
    private static partial Regex AnyTag();

    [GeneratedRegex(@"[ \t\u00A0]+")]
    private static partial Regex Spaces();

    [GeneratedRegex(@"\n\s*\n(\s*\n)+")]
    private static partial Regex BlankRuns();

    /// <summary>HTML to readable text: scripts and styles dropped, block tags become line breaks, other tags removed, entities decoded, spaces collapsed.</summary>
    internal static string HtmlToText(string html)
    {
        string s = ScriptOrStyle().Replace(html, " ");
        s = Regex.Replace(s, "<!--.*?-->", " ", RegexOptions.Singleline);
        s = BlockTag().Replace(s, "\n");
        s = AnyTag().Replace(s, " ");
        s = WebUtility.HtmlDecode(s);
        s = Spaces().Replace(NormalizeNewlines(s), " ");
        s = string.Join('\n', s.Split('\n').Select(l => l.Trim()));
        return BlankRuns().Replace(s, "\n\n").Trim('\n');
    }

    static string NormalizeNewlines(string s) => s.Replace("\r\n", "\n").Replace('\r', '\n');

    // ---- dates ----

    static readonly string[] Months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

    /// <summary>
    /// An RFC 5322 date (<c>[Thu,] 22 Aug 2002 13:52:59 +0100 (IST)</c>), with the obsolete zone
    /// names of RFC 822 (UT, GMT, EST/EDT, CST/CDT, MST/MDT, PST/PDT) and two- or three-digit years;
    /// a zone offset beyond ±14 h is read as unknown (+0000); null when it does not parse.
    /// </summary>
    public static DateTimeOffset? ParseDate(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        string s = Regex.Replace(value, @"\([^)]*\)", " ");
        var tokens = s.Replace(',', ' ').Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries).ToList();
        if (tokens.Count > 0 && tokens[0].Length >= 3 && char.IsLetter(tokens[0][0])) tokens.RemoveAt(0); // day of week
        if (tokens.Count < 4) return null;
        if (!int.TryParse(tokens[0], NumberStyles.None, CultureInfo.InvariantCulture, out int day)) return null;
        int month = tokens[1].Length >= 3 ? Array.IndexOf(Months, tokens[1][..3].ToLowerInvariant()) + 1 : 0;
        if (month == 0 || !int.TryParse(tokens[2], NumberStyles.None, CultureInfo.InvariantCulture, out int year)) return null;
        if (tokens[2].Length <= 2) year += year < 50 ? 2000 : 1900;
        else if (year < 1000) year += 1900; // three-digit years (RFC 5322 §4.3), and "0102" from mailers that wrote tm_year
        var hms = tokens[3].Split(':');
        if (hms.Length is < 2 or > 3) return null;
        if (!int.TryParse(hms[0], out int hour) || !int.TryParse(hms[1], out int minute)) return null;
        int second = 0;
        if (hms.Length == 3 && !int.TryParse(hms[2], out second)) return null;
        TimeSpan offset = TimeSpan.Zero;
        if (tokens.Count > 4)
        {
            string z = tokens[4];
            if (z.Length == 5 && z[0] is '+' or '-' && int.TryParse(z[1..], NumberStyles.None, CultureInfo.InvariantCulture, out int hhmm))
            {
                offset = new TimeSpan(hhmm / 100, hhmm % 100, 0);
                if (z[0] == '-') offset = -offset;
            }
            else
                offset = z.ToUpperInvariant() switch
                {
                    "EDT" => TimeSpan.FromHours(-4),
                    "EST" or "CDT" => TimeSpan.FromHours(-5),
                    "CST" or "MDT" => TimeSpan.FromHours(-6),
                    "MST" or "PDT" => TimeSpan.FromHours(-7),
                    "PST" => TimeSpan.FromHours(-8),
                    _ => TimeSpan.Zero, // UT, GMT, Z and unknown zones (RFC 5322 §4.3: unknown means +0000)
                };
        }
        if (offset.Duration() > TimeSpan.FromHours(14)) offset = TimeSpan.Zero; // "-1900" and the like: no real zone, read as unknown (+0000)
        try { return new DateTimeOffset(year, month, day, hour, minute, second, offset); }
        catch (ArgumentOutOfRangeException) { return null; }
    }
}
