using System.Text;
using System.Text.RegularExpressions;

namespace Tessera.Text;

/// <summary>
/// Splits text into pre-tokens with a GPT-style regex. Patterns are written in the
/// Rust/PCRE dialect tiktoken uses (possessive quantifiers, <c>$</c> = end of text) and
/// translated to .NET once: <c>X++</c> → <c>(?&gt;X+)</c>, which is the same semantics.
/// The cl100k_base and o200k_base patterns (cl100k is also the trained-tokenizer default)
/// run on a hand-written scanner instead (<see cref="GptPreTokenScanner"/>): same pre-tokens,
/// letters outside the BMP handled as tiktoken does, and several times faster. Other
/// patterns use one compiled <see cref="Regex"/> per thread, because a shared instance hands
/// its single cached runner back and forth through one field on every match, which makes
/// threads contend (and allocate new runners) when they split text at the same time.
/// Instances are safe to use from any number of threads.
/// </summary>
public sealed class PreTokenizer
{
    /// <summary>GPT-2 / r50k_base / p50k_base.</summary>
    public const string Gpt2Pattern =
        @"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s";

    /// <summary>cl100k_base (GPT-4); also the default for trained tokenizers.</summary>
    public const string Cl100kPattern =
        @"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";

    /// <summary>o200k_base (GPT-4o).</summary>
    public const string O200kPattern =
        @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
        @"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
        @"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Llama 3 (GGUF pre-tokenizer <c>llama-bpe</c>).</summary>
    public const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private const RegexOptions Options = RegexOptions.Compiled | RegexOptions.CultureInvariant;

    private readonly ThreadLocal<Regex>? _regex;
    private readonly Scanner _scanner;

    /// <summary>Compiles <paramref name="pattern"/> (Rust/PCRE dialect).</summary>
    /// <param name="pattern">The pre-tokenizer regex.</param>
    /// <param name="regexOnly">Use the regex even for patterns that have a hand-written scanner (the slow twin, for tests and comparisons).</param>
    /// <exception cref="ArgumentException">The pattern is not a valid regex; the message names it.</exception>
    public PreTokenizer(string pattern, bool regexOnly = false)
    {
        Pattern = pattern;
        IsSplittable = pattern is Gpt2Pattern or Cl100kPattern or O200kPattern or Llama3Pattern;
        _scanner = regexOnly ? Scanner.Regex : pattern switch
        {
            Cl100kPattern => Scanner.Cl100k,
            O200kPattern => Scanner.O200k,
            _ => Scanner.Regex,
        };
        if (_scanner != Scanner.Regex) return;
        string dotnet = ToDotNet(pattern);
        Regex first;
        try
        {
            first = new Regex(dotnet, Options);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"invalid pre-tokenizer regex '{pattern}': {e.Message}", nameof(pattern), e);
        }
        _regex = new ThreadLocal<Regex>(() => new Regex(dotnet, Options)) { Value = first };
    }

    private enum Scanner { Regex, Cl100k, O200k }

    /// <summary>The pattern as given (Rust/PCRE dialect).</summary>
    public string Pattern { get; }

    /// <summary>Whether splitting runs on the hand-written scanner rather than a regex.</summary>
    public bool IsHandWritten => _scanner != Scanner.Regex;

    /// <summary>
    /// Whether <see cref="IsSafeCut"/> can find cut points: true for the four built-in patterns,
    /// whose behaviour at a line end was checked alternative by alternative; false for custom ones.
    /// </summary>
    public bool IsSplittable { get; }

    /// <summary>Enumerates the pre-tokens of <paramref name="text"/>.</summary>
    public PreTokenEnumerator Split(ReadOnlySpan<char> text) =>
        _scanner == Scanner.Regex ? new PreTokenEnumerator(_regex!.Value!.EnumerateMatches(text)) : new PreTokenEnumerator(text, _scanner == Scanner.O200k);

    /// <summary>
    /// Whether the pre-tokens of <paramref name="text"/> are exactly those of
    /// <c>text[..p]</c> followed by those of <c>text[p..]</c> (shifted by <paramref name="p"/>).
    /// </summary>
    /// <remarks>
    /// A cut qualifies when it is preceded by a line feed that follows a non-space character and
    /// followed by an ASCII letter or digit (<c>"x\nA"</c> → <c>"x\n" | "A"</c>). For the
    /// built-in patterns: no alternative can run from the line feed into a letter or digit
    /// (letter prefixes exclude CR/LF; punctuation runs may end in CR/LF but not in letters;
    /// whitespace runs end before \S), so a pre-token ends at the cut; the right part starts
    /// a match exactly as the whole text does (no pattern looks behind); and the left part's
    /// last pre-token — the lone line feed, or punctuation ending in it — is matched with the
    /// same span at the end of the text by <c>\s++$</c> / <c>\s</c> / <c>\s*[\r\n]+</c>
    /// (GPT-2's <c>\s+(?!\S)</c> would split a longer whitespace run differently, hence the
    /// non-space before the line feed). Checked on whole corpora by the tests.
    /// </remarks>
    public bool IsSafeCut(ReadOnlySpan<char> text, int p) =>
        IsSplittable && p >= 2 && p < text.Length && text[p - 1] == '\n' && !char.IsWhiteSpace(text[p - 2]) && char.IsAsciiLetterOrDigit(text[p]);

    /// <summary>
    /// Cut points that split <paramref name="text"/> into at most <paramref name="parts"/>
    /// pieces of roughly equal length, each cut a <see cref="IsSafeCut"/> point: the first
    /// element is 0, the last <c>text.Length</c>. Fewer pieces when no safe cut is near.
    /// </summary>
    public List<int> SafeCuts(ReadOnlySpan<char> text, int parts)
    {
        var cuts = new List<int> { 0 };
        for (int k = 1; k < parts && IsSplittable; k++)
        {
            int target = (int)((long)text.Length * k / parts);
            int from = Math.Max(target, cuts[^1] + 1);
            int p = NextSafeCut(text, from);
            if (p < 0) break;
            if (p > cuts[^1] && p < text.Length) cuts.Add(p);
        }
        cuts.Add(text.Length);
        return cuts;
    }

    private int NextSafeCut(ReadOnlySpan<char> text, int from)
    {
        while (from < text.Length)
        {
            int nl = text[from..].IndexOf('\n');
            if (nl < 0) return -1;
            int p = from + nl + 1;
            if (IsSafeCut(text, p)) return p;
            from = p;
        }
        return -1;
    }

    /// <summary>
    /// Translates possessive quantifiers (<c>?+ *+ ++ {m,n}+</c>) into atomic groups and an
    /// unescaped <c>$</c> outside classes into <c>\z</c> (Rust's <c>$</c> never matches before
    /// a final newline; .NET's does).
    /// </summary>
    public static string ToDotNet(string pattern)
    {
        var sb = new StringBuilder(pattern.Length + 16);
        var groupStarts = new Stack<int>();
        int atomStart = -1;
        int i = 0;
        while (i < pattern.Length)
        {
            char c = pattern[i];
            switch (c)
            {
                case '\\':
                {
                    atomStart = sb.Length;
                    int end = EscapeEnd(pattern, i);
                    sb.Append(pattern, i, end - i);
                    i = end;
                    continue;
                }
                case '[':
                {
                    atomStart = sb.Length;
                    int end = ClassEnd(pattern, i);
                    sb.Append(pattern, i, end - i);
                    i = end;
                    continue;
                }
                case '(':
                    groupStarts.Push(sb.Length);
                    sb.Append(c);
                    i++;
                    continue;
                case ')':
                    atomStart = groupStarts.Count > 0 ? groupStarts.Pop() : -1;
                    sb.Append(c);
                    i++;
                    continue;
                case '$':
                    atomStart = -1;
                    sb.Append(@"\z");
                    i++;
                    continue;
                case '?' or '*' or '+' or '{':
                {
                    int end = c == '{' ? QuantifierBraceEnd(pattern, i) : i + 1;
                    if (end < 0) goto default; // a literal '{'
                    bool possessive = end < pattern.Length && pattern[end] == '+' && atomStart >= 0;
                    sb.Append(pattern, i, end - i);
                    i = end;
                    if (possessive)
                    {
                        sb.Insert(atomStart, "(?>");
                        sb.Append(')');
                        i++;
                    }
                    atomStart = -1;
                    continue;
                }
                case '|':
                    atomStart = -1;
                    sb.Append(c);
                    i++;
                    continue;
                default:
                    atomStart = sb.Length;
                    sb.Append(c);
                    i++;
                    continue;
            }
        }
        return sb.ToString();
    }

    private static int EscapeEnd(string p, int i)
    {
        if (i + 1 >= p.Length) return p.Length;
        char e = p[i + 1];
        if ((e == 'p' || e == 'P') && i + 2 < p.Length && p[i + 2] == '{')
        {
            int close = p.IndexOf('}', i + 3);
            return close < 0 ? p.Length : close + 1;
        }
        return i + 2;
    }

    private static int ClassEnd(string p, int i)
    {
        int j = i + 1;
        if (j < p.Length && p[j] == '^') j++;
        if (j < p.Length && p[j] == ']') j++; // a leading ']' is a literal
        while (j < p.Length)
        {
            if (p[j] == '\\') { j = EscapeEnd(p, j); continue; }
            if (p[j] == '[') { j = ClassEnd(p, j); continue; } // nested class / subtraction
            if (p[j] == ']') return j + 1;
            j++;
        }
        return p.Length;
    }

    private static int QuantifierBraceEnd(string p, int i)
    {
        int j = i + 1;
        while (j < p.Length && (char.IsAsciiDigit(p[j]) || p[j] == ',')) j++;
        return j < p.Length && p[j] == '}' && j > i + 1 ? j + 1 : -1;
    }
}
