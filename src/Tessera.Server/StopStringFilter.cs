using System.Text;

namespace Tessera.Server;

/// <summary>
/// Turns generated token bytes into text as it arrives and cuts it at the first stop string.
/// UTF-8 split across tokens is held until complete, and so is any tail that could still grow
/// into a stop string, so no text after a stop string is ever released — even when streaming.
/// </summary>
public sealed class StopStringFilter
{
    readonly Decoder decoder = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    readonly IReadOnlyList<string> stops;
    readonly StringBuilder held = new();
    char[] chars = new char[64];

    /// <summary>Filters for <paramref name="stops"/> (non-empty strings; none = pass everything).</summary>
    public StopStringFilter(IReadOnlyList<string> stops)
    {
        foreach (var s in stops) if (string.IsNullOrEmpty(s)) throw new ArgumentException("stop strings must be non-empty");
        this.stops = stops;
    }

    /// <summary>True once a stop string was seen; nothing more is released after that.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds one token's bytes; returns the text that is now safe to release.</summary>
    public string Push(ReadOnlySpan<byte> bytes)
    {
        if (Stopped) return "";
        Decode(bytes, flush: false);
        return Release(final: false);
    }

    /// <summary>Ends the text (an unfinished UTF-8 sequence becomes U+FFFD); returns what was held.</summary>
    public string Flush()
    {
        if (Stopped) return "";
        Decode([], flush: true);
        return Release(final: true);
    }

    void Decode(ReadOnlySpan<byte> bytes, bool flush)
    {
        int need = decoder.GetCharCount(bytes, flush);
        if (need > chars.Length) chars = new char[Math.Max(need, chars.Length * 2)];
        int n = decoder.GetChars(bytes, chars, flush);
        held.Append(chars, 0, n);
    }

    string Release(bool final)
    {
        if (held.Length == 0) return "";
        string text = held.ToString();
        // Text released earlier never ends in a stop-string prefix, so a stop string can only start in `held`.
        int cut = -1;
        foreach (var s in stops)
        {
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            held.Clear();
            return text[..cut];
        }
        int keep = final ? 0 : LongestStopPrefixSuffix(text);
        held.Clear().Append(text, text.Length - keep, keep);
        return text[..^keep];
    }

    /// <summary>Length of the longest suffix of <paramref name="text"/> that is a proper prefix of some stop string.</summary>
    int LongestStopPrefixSuffix(string text)
    {
        int best = 0;
        foreach (var s in stops)
            for (int k = Math.Min(s.Length - 1, text.Length); k > best; k--)
                if (string.CompareOrdinal(text, text.Length - k, s, 0, k) == 0) { best = k; break; }
        return best;
    }
}
