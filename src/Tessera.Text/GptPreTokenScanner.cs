using System.Globalization;
using System.Runtime.CompilerServices;

namespace Tessera.Text;

/// <summary>
/// Hand-written matchers for the cl100k_base and o200k_base pre-tokenizer patterns. They give
/// the same pre-tokens as the regexes in <see cref="PreTokenizer"/> on every string whose
/// letters and digits lie in the BMP, but classify by Unicode scalar value (a surrogate pair
/// is one character), so letters outside the BMP such as 𝐀 are letters, as in tiktoken's
/// Rust regex — .NET's regex sees their two UTF-16 halves as category Cs. They are also
/// stateless, so any number of threads can use them at once, and several times faster than
/// the compiled regex.
/// </summary>
/// <remarks>
/// Each <c>Next*</c> method returns the end of the pre-token that starts at <c>i</c>. The
/// alternatives are tried in the pattern's order and each one reproduces the regex's
/// backtracking outcome (derivations in the comments); the differential tests compare both
/// on random strings over every character class.
/// </remarks>
internal static class GptPreTokenScanner
{
    // Class bits of one character (Unicode scalar value).
    private const byte L = 1;        // \p{L}
    private const byte N = 2;        // \p{N}
    private const byte S = 4;        // \s (.NET: [\f\n\r\t\v\x85\p{Z}]; the same set as Unicode White_Space)
    private const byte CrLf = 8;     // \r or \n
    private const byte Up = 16;      // o200k [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
    private const byte Lo = 32;      // o200k [\p{Ll}\p{Lm}\p{Lo}\p{M}]

    private static readonly byte[] Latin1 = BuildLatin1();

    private static byte[] BuildLatin1()
    {
        var t = new byte[256];
        for (int c = 0; c < 256; c++) t[c] = Classify(c);
        return t;
    }

    private static byte Classify(int cp)
    {
        if (cp < 0x10000 && char.IsWhiteSpace((char)cp))
            return (byte)(S | (cp is '\r' or '\n' ? CrLf : 0));
        return CharUnicodeInfo.GetUnicodeCategory(cp) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.TitlecaseLetter => L | Up,
            UnicodeCategory.LowercaseLetter => L | Lo,
            UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => L | Up | Lo,
            UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => Up | Lo,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => N,
            _ => 0,
        };
    }

    /// <summary>Class bits of the character at <paramref name="i"/>; <paramref name="width"/> = its UTF-16 length (a lone surrogate is one character of category Cs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte At(ReadOnlySpan<char> s, int i, out int width)
    {
        char c = s[i];
        width = 1;
        if (c < 256) return Latin1[c];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            width = 2;
            return Classify(char.ConvertToUtf32(c, s[i + 1]));
        }
        return Classify(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte At(ReadOnlySpan<char> s, int i) => At(s, i, out _);

    /// <summary>End of the run of characters having any bit of <paramref name="mask"/>, from <paramref name="i"/>.</summary>
    private static int Run(ReadOnlySpan<char> s, int i, byte mask)
    {
        while (i < s.Length && (At(s, i, out int w) & mask) != 0) i += w;
        return i;
    }

    /// <summary>End of the run of <c>[^\s\p{L}\p{N}]</c> from <paramref name="i"/>.</summary>
    private static int OtherRun(ReadOnlySpan<char> s, int i)
    {
        while (i < s.Length && (At(s, i, out int w) & (L | N | S)) == 0) i += w;
        return i;
    }

    /// <summary>End of the whitespace run from <paramref name="i"/> (all \s characters are in the BMP).</summary>
    private static int SpaceRun(ReadOnlySpan<char> s, int i)
    {
        while (i < s.Length && (At(s, i) & S) != 0) i++;
        return i;
    }

    private static int CrLfRun(ReadOnlySpan<char> s, int i, bool slash)
    {
        while (i < s.Length && (s[i] is '\r' or '\n' || (slash && s[i] == '/'))) i++;
        return i;
    }

    // (?i) on these ASCII letters: .NET's regex (and js-tiktoken's spelled-out pattern) accept
    // exactly the two ASCII cases; Rust's Unicode case folding may also accept U+017F (ſ) for 's'.
    private static bool Is(char c, char lower) => (c | 0x20) == lower;

    /// <summary>
    /// Length of an English contraction at <paramref name="i"/>: <c>'s 't 'm 'd</c> (2) or
    /// <c>'ll 've 're</c> (3), case-insensitive; 0 when there is none.
    /// </summary>
    private static int Contraction(ReadOnlySpan<char> s, int i)
    {
        if (i + 1 >= s.Length || s[i] != '\'') return 0;
        char a = s[i + 1];
        if (Is(a, 's') || Is(a, 't') || Is(a, 'm') || Is(a, 'd')) return 2;
        if (i + 2 >= s.Length) return 0;
        char b = s[i + 2];
        return (Is(a, 'l') && Is(b, 'l')) || (Is(a, 'v') && Is(b, 'e')) || (Is(a, 'r') && Is(b, 'e')) ? 3 : 0;
    }

    /// <summary>The whitespace alternatives shared by both patterns, for the run [i, j).</summary>
    /// <remarks>
    /// cl100k tries <c>\s++$</c> first (<paramref name="endFirst"/>): a run that reaches the end
    /// of the text is one pre-token. Then <c>\s*[\r\n]</c> / <c>\s*[\r\n]+</c> backtrack to the
    /// run's last CR or LF; then <c>\s+(?!\S)</c> takes the whole run at the end of the text and
    /// otherwise gives back one character (the last one is followed by \S); a run of one is
    /// matched by the final <c>\s</c> / <c>\s+</c>.
    /// </remarks>
    private static int Whitespace(ReadOnlySpan<char> s, int i, bool endFirst)
    {
        int j = SpaceRun(s, i);
        if (endFirst && j == s.Length) return j;
        for (int q = j - 1; q >= i; q--)
            if (s[q] is '\r' or '\n') return q + 1;
        if (j == s.Length) return j;
        return j - 1 > i ? j - 1 : j;
    }

    /// <summary>
    /// cl100k_base: <c>'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|
    /// ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s</c>.
    /// </summary>
    public static int NextCl100k(ReadOnlySpan<char> s, int i)
    {
        int c = Contraction(s, i);
        if (c > 0) return i + c;
        byte f = At(s, i, out int w);
        if ((f & L) != 0) return Run(s, i + w, L);
        // [^\r\n\p{L}\p{N}]?+ then \p{L}++: the possessive prefix never gives its character back.
        if ((f & (L | N | CrLf)) == 0 && i + w < s.Length && (At(s, i + w) & L) != 0) return Run(s, i + w, L);
        if ((f & N) != 0) return NumberRun(s, i, w);
        // " ?" may give the space back, but then [^\s…] would have to match the space itself.
        if (s[i] == ' ' && i + 1 < s.Length && (At(s, i + 1) & (L | N | S)) == 0) return CrLfRun(s, OtherRun(s, i + 1), false);
        if ((f & (L | N | S)) == 0) return CrLfRun(s, OtherRun(s, i + w), false);
        return Whitespace(s, i, endFirst: true);
    }

    /// <summary>
    /// o200k_base: two letter-run alternatives (an optional non-letter prefix, upper-case then
    /// lower-case runs, an optional contraction), <c>\p{N}{1,3}</c>, <c> ?[^\s\p{L}\p{N}]+[\r\n/]*</c>,
    /// <c>\s*[\r\n]+</c>, <c>\s+(?!\S)</c>, <c>\s+</c>.
    /// </summary>
    public static int NextO200k(ReadOnlySpan<char> s, int i)
    {
        byte f = At(s, i, out int w);
        bool prefix = (f & (L | N | CrLf)) == 0; // [^\r\n\p{L}\p{N}]? can take this character
        int end;
        // First alternative, with the greedy prefix first, then without it.
        if (prefix && i + w < s.Length && (end = UpperThenLower(s, i + w)) >= 0) return end;
        if ((end = UpperThenLower(s, i)) >= 0) return end;
        if (prefix && i + w < s.Length && (end = UpperRunFirst(s, i + w)) >= 0) return end;
        if ((end = UpperRunFirst(s, i)) >= 0) return end;
        if ((f & N) != 0) return NumberRun(s, i, w);
        if (s[i] == ' ' && i + 1 < s.Length && (At(s, i + 1) & (L | N | S)) == 0) return CrLfRun(s, OtherRun(s, i + 1), true);
        if ((f & (L | N | S)) == 0) return CrLfRun(s, OtherRun(s, i + w), true);
        return Whitespace(s, i, endFirst: false);
    }

    /// <summary><c>\p{N}{1,3}</c> from <paramref name="i"/>, whose first character (width <paramref name="w"/>) is a number.</summary>
    private static int NumberRun(ReadOnlySpan<char> s, int i, int w)
    {
        int end = i + w;
        for (int k = 1; k < 3 && end < s.Length; k++)
        {
            if ((At(s, end, out int w2) & N) == 0) break;
            end += w2;
        }
        return end;
    }

    /// <summary>
    /// <c>[Up]*[Lo]+('s|…)?</c> at <paramref name="start"/>, or -1. The greedy <c>[Up]*</c>
    /// backtracks one character at a time until <c>[Lo]+</c> can start; the first start found
    /// from the right wins, and <c>[Lo]+</c> then runs as far as it can.
    /// </summary>
    private static int UpperThenLower(ReadOnlySpan<char> s, int start)
    {
        int e = Run(s, start, Up);
        for (int p = e; ; )
        {
            if (p < s.Length && (At(s, p) & Lo) != 0)
            {
                int end = Run(s, p, Lo);
                return end + Contraction(s, end);
            }
            if (p == start) return -1;
            p -= p - 2 >= start && char.IsLowSurrogate(s[p - 1]) && char.IsHighSurrogate(s[p - 2]) ? 2 : 1;
        }
    }

    /// <summary><c>[Up]+[Lo]*('s|…)?</c> at <paramref name="start"/>, or -1.</summary>
    private static int UpperRunFirst(ReadOnlySpan<char> s, int start)
    {
        int e = Run(s, start, Up);
        if (e == start) return -1;
        int end = Run(s, e, Lo);
        return end + Contraction(s, end);
    }
}
