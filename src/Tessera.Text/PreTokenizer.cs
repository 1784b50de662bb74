using System.Text;
using System.Text.RegularExpressions;

namespace Tessera.Text;

/// <summary>
/// Splits text into pre-tokens with a GPT-style regex. Patterns are written in the
/// Rust/PCRE dialect tiktoken uses (possessive quantifiers, <c>$</c> = end of text) and
/// translated to .NET once: <c>X++</c> → <c>(?&gt;X+)</c>, which is the same semantics.
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

    private readonly Regex _regex;

    /// <summary>Compiles <paramref name="pattern"/> (Rust/PCRE dialect).</summary>
    /// <exception cref="ArgumentException">The pattern is not a valid regex; the message names it.</exception>
    public PreTokenizer(string pattern)
    {
        Pattern = pattern;
        try
        {
            _regex = new Regex(ToDotNet(pattern), RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"invalid pre-tokenizer regex '{pattern}': {e.Message}", nameof(pattern), e);
        }
    }

    /// <summary>The pattern as given (Rust/PCRE dialect).</summary>
    public string Pattern { get; }

    /// <summary>Enumerates the pre-tokens of <paramref name="text"/> as (start, length) in chars.</summary>
    public Regex.ValueMatchEnumerator Split(ReadOnlySpan<char> text) => _regex.EnumerateMatches(text);

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
