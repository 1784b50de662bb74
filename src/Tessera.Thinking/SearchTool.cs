using System.Text;

namespace Tessera.Thinking;

/// <summary>A passage the search tool returned: where it comes from (document id, character offsets) and its text.</summary>
/// <param name="DocumentId">The document's id in the index.</param>
/// <param name="Start">Character offset of the passage in the document.</param>
/// <param name="Length">Passage length in characters.</param>
/// <param name="Text">The passage text.</param>
public sealed record ToolPassage(string DocumentId, int Start, int Length, string Text);

/// <summary>
/// The in-process retrieval tool of <see cref="ToolDecoder"/>: the model writes
/// <c>&lt;&lt;search:QUERY=</c>, the decoder asks this for the best passage, and writes its text and
/// <c>&gt;&gt;</c> into the context (<c>tessera serve --index</c> and <c>tessera think ask --index</c>
/// plug the BM25 index in here).
/// </summary>
public interface ISearchTool
{
    /// <summary>The best passage for <paramref name="query"/>, or null when nothing matches; an <see cref="ArgumentException"/> for a query the index cannot search.</summary>
    ToolPassage? Search(string query);
}

/// <summary>How a search result enters the context: one line (a newline would end the completion), at most <see cref="MaxChars"/> characters, cut at a space.</summary>
public static class SearchInsertion
{
    /// <summary>Most characters of a passage written into the context.</summary>
    public const int MaxChars = 480;

    /// <summary>The passage's text with every run of white space (newlines included) made one space, cut to <see cref="MaxChars"/> at the last space before it, with no '&gt;&gt;' inside (the call's closing mark).</summary>
    public static string OneLine(string text)
    {
        var sb = new StringBuilder(Math.Min(text.Length, MaxChars + 1));
        bool space = false;
        foreach (char c in text)
        {
            if (char.IsWhiteSpace(c)) { space = sb.Length > 0; continue; }
            if (space) { sb.Append(' '); space = false; }
            sb.Append(c);
            if (sb.Length > MaxChars) break;
        }
        string s = sb.Replace(ToolDecoder.CallClose, "> >").ToString();
        if (s.Length <= MaxChars) return s;
        int cut = s.LastIndexOf(' ', MaxChars);
        if (cut > 0) return s[..cut];
        return char.IsHighSurrogate(s[MaxChars - 1]) ? s[..(MaxChars - 1)] : s[..MaxChars];   // never half a surrogate pair
    }
}
