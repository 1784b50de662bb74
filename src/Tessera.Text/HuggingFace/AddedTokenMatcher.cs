namespace Tessera.Text;

/// <summary>One entry of tokenizer.json's <c>added_tokens</c>.</summary>
internal sealed record HfAddedToken(string Content, int Id, bool Special, bool Normalized, bool LStrip, bool RStrip, bool SingleWord);

/// <summary>
/// Finds added tokens in text as HF's added vocabulary does: leftmost-longest, non-overlapping
/// matches (a trie walk from each position), a <c>single_word</c> token only between non-word
/// characters, <c>lstrip</c>/<c>rstrip</c> absorbing the whitespace beside it.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly List<Dictionary<char, int>> _children = [new()];
    private readonly List<int> _terminal = [-1];
    private readonly HfAddedToken[] _tokens;
    private readonly string[] _patterns;
    private readonly bool[] _firstChar = new bool[65536];

    /// <param name="tokens">Tokens to find.</param>
    /// <param name="patterns">The text to look for, per token (the content, or its normalized form).</param>
    public AddedTokenMatcher(IReadOnlyList<HfAddedToken> tokens, IReadOnlyList<string> patterns)
    {
        _tokens = [.. tokens];
        _patterns = [.. patterns];
        for (int k = 0; k < _tokens.Length; k++)
        {
            string p = _patterns[k];
            if (p.Length == 0) continue;
            int node = 0;
            foreach (char c in p)
            {
                if (!_children[node].TryGetValue(c, out int child))
                {
                    child = _children.Count;
                    _children.Add(new Dictionary<char, int>());
                    _terminal.Add(-1);
                    _children[node][c] = child;
                }
                node = child;
            }
            if (_terminal[node] < 0) _terminal[node] = k;
            _firstChar[p[0]] = true;
        }
        IsEmpty = _children[0].Count == 0;
    }

    public bool IsEmpty { get; }

    /// <summary>Splits <paramref name="text"/> into sections: (start, end, token index or -1 for plain text).</summary>
    public List<(int Start, int End, int Token)> Split(string text)
    {
        var result = new List<(int, int, int)>();
        if (IsEmpty) { result.Add((0, text.Length, -1)); return result; }
        int startOffset = 0;
        int pos = 0;
        while (pos < text.Length)
        {
            if (!_firstChar[text[pos]]) { pos++; continue; }
            int node = 0, best = -1, bestEnd = -1;
            for (int i = pos; i < text.Length; i++)
            {
                if (!_children[node].TryGetValue(text[i], out node)) break;
                if (_terminal[node] >= 0) { best = _terminal[node]; bestEnd = i + 1; }
            }
            if (best < 0) { pos++; continue; }
            int start = pos, stop = bestEnd;
            pos = bestEnd;
            var tok = _tokens[best];
            if (tok.SingleWord)
            {
                bool startOk = start == 0 || !IsWordChar(text, start - 1, before: true);
                bool stopOk = stop == text.Length || !IsWordChar(text, stop, before: false);
                if (!startOk || !stopOk) continue;
            }
            if (tok.LStrip)
            {
                int s = start;
                while (s > 0 && OnigPattern.IsSpace(text[s - 1])) s--;
                start = Math.Max(s, startOffset);
            }
            if (tok.RStrip)
            {
                while (stop < text.Length && OnigPattern.IsSpace(text[stop])) stop++;
                pos = Math.Max(pos, stop);
            }
            if (startOffset < start) result.Add((startOffset, start, -1));
            result.Add((start, stop, best));
            startOffset = stop;
        }
        if (startOffset < text.Length) result.Add((startOffset, text.Length, -1));
        return result;
    }

    /// <summary>The token of a match index.</summary>
    public HfAddedToken Token(int index) => _tokens[index];

    private static bool IsWordChar(string s, int i, bool before)
    {
        int cp;
        if (before && char.IsLowSurrogate(s[i]) && i > 0 && char.IsHighSurrogate(s[i - 1])) cp = char.ConvertToUtf32(s[i - 1], s[i]);
        else if (!before && char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) cp = char.ConvertToUtf32(s[i], s[i + 1]);
        else cp = s[i];
        if (cp == '_') return true;
        var c = OnigPattern.Category(cp);
        return c is <= System.Globalization.UnicodeCategory.OtherLetter or System.Globalization.UnicodeCategory.DecimalDigitNumber
            or System.Globalization.UnicodeCategory.LetterNumber or System.Globalization.UnicodeCategory.OtherNumber
            or System.Globalization.UnicodeCategory.NonSpacingMark or System.Globalization.UnicodeCategory.SpacingCombiningMark;
    }
}
