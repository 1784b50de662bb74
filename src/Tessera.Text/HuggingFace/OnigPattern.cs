using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Tessera.Text;

/// <summary>
/// Translates a pre-tokenizer regex written for a code-point engine (Oniguruma in HF
/// tokenizers, fancy-regex in tiktoken, llama.cpp's own matcher) into a .NET regex that gives
/// the same matches on UTF-16 text. .NET matches UTF-16 code units, so a class such as
/// <c>\p{L}</c> or <c>[^\s\p{L}\p{N}]</c> would see the two halves of a supplementary letter
/// (𝐀, 𠀀) as two surrogates; here every character-matching atom becomes
/// <c>(?:[its BMP part]|its supplementary part as surrogate pairs)</c>, with membership of
/// supplementary code points decided by their Unicode general category. Possessive
/// quantifiers become atomic groups. Lone surrogates must be replaced (U+FFFD) before matching.
/// </summary>
public static class OnigPattern
{
    /// <summary>How <c>$</c> is read: Oniguruma (Ruby syntax) ends a line; Rust's regex and fancy-regex end the text.</summary>
    public enum Dialect
    {
        /// <summary>Oniguruma (Ruby syntax): <c>$</c> matches at the end of each line.</summary>
        Oniguruma,
        /// <summary>Rust regex / fancy-regex: <c>$</c> matches only at the end of the text.</summary>
        Rust
    }

    private static readonly ConcurrentDictionary<string, string> SupplementaryCache = new();

    /// <summary>Compiles <paramref name="pattern"/>.</summary>
    /// <exception cref="FormatException">A construct the translation does not cover; the message names it.</exception>
    public static Regex Compile(string pattern, Dialect dialect = Dialect.Oniguruma) =>
        new(Translate(pattern, dialect), RegexOptions.Compiled | RegexOptions.CultureInvariant);

    /// <summary>
    /// The translation for text without surrogates: the same classes without their supplementary
    /// alternatives, which keeps .NET's fast single-class loops. Equal to <see cref="Translate(string, Dialect)"/>
    /// on any text that has no UTF-16 surrogate.
    /// </summary>
    public static string TranslateBmp(string pattern, Dialect dialect = Dialect.Oniguruma) => Translate(pattern, dialect, bmpOnly: true);

    /// <summary>The .NET pattern for <paramref name="pattern"/>.</summary>
    /// <exception cref="FormatException">A construct the translation does not cover; the message names it.</exception>
    public static string Translate(string pattern, Dialect dialect = Dialect.Oniguruma) => Translate(pattern, dialect, bmpOnly: false);

    private static string Translate(string pattern, Dialect dialect, bool bmpOnly)
    {
        var sb = new StringBuilder(pattern.Length * 2);
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
                    int end = EscapeEnd(pattern, i);
                    string esc = pattern[i..end];
                    atomStart = sb.Length;
                    if (IsCharClassEscape(esc)) sb.Append(Atom(esc, negated: false, bmpOnly));
                    else sb.Append(esc);
                    i = end;
                    continue;
                }
                case '[':
                {
                    int end = ClassEnd(pattern, i);
                    atomStart = sb.Length;
                    bool negated = i + 1 < pattern.Length && pattern[i + 1] == '^';
                    string inner = pattern[(negated ? i + 2 : i + 1)..(end - 1)];
                    sb.Append(Atom(inner, negated, bmpOnly));
                    i = end;
                    continue;
                }
                case '.':
                    atomStart = sb.Length;
                    sb.Append(Atom("\\n", negated: true, bmpOnly));
                    i++;
                    continue;
                case '(':
                    groupStarts.Push(sb.Length);
                    sb.Append(c);
                    i++;
                    if (i < pattern.Length && pattern[i] == '?')
                    {
                        // Group flags and kinds: (?: (?i: (?= (?! (?<= (?<! (?> are copied as they are.
                        int j = i + 1;
                        while (j < pattern.Length && pattern[j] != ':' && pattern[j] != ')' && pattern[j] != '=' && pattern[j] != '!' && pattern[j] != '>' && pattern[j] != '<') j++;
                        if (j < pattern.Length && pattern[j] == '<' && j + 1 < pattern.Length && pattern[j + 1] is '=' or '!') j++;
                        if (j >= pattern.Length) throw new FormatException($"regex '{pattern}': unterminated group");
                        sb.Append(pattern, i, j + 1 - i);
                        i = j + 1;
                    }
                    continue;
                case ')':
                    atomStart = groupStarts.Count > 0 ? groupStarts.Pop() : throw new FormatException($"regex '{pattern}': unbalanced ')'");
                    sb.Append(c);
                    i++;
                    continue;
                case '$':
                    atomStart = -1;
                    sb.Append(dialect == Dialect.Rust ? @"\z" : @"(?=\n|\z)");
                    i++;
                    continue;
                case '?' or '*' or '+' or '{':
                {
                    int end = c == '{' ? QuantifierBraceEnd(pattern, i) : i + 1;
                    if (end < 0) goto default;
                    if (end < pattern.Length && pattern[end] == '?') { sb.Append(pattern, i, end + 1 - i); i = end + 1; atomStart = -1; continue; } // lazy
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
                case '|' or '^':
                    atomStart = -1;
                    sb.Append(c);
                    i++;
                    continue;
                default:
                {
                    atomStart = sb.Length;
                    if (char.IsHighSurrogate(c) && i + 1 < pattern.Length && char.IsLowSurrogate(pattern[i + 1]))
                    {
                        sb.Append("(?:").Append(c).Append(pattern[i + 1]).Append(')');
                        i += 2;
                        continue;
                    }
                    if (c is ' ' or '#') sb.Append('\\');
                    sb.Append(c);
                    i++;
                    continue;
                }
            }
        }
        return sb.ToString();
    }

    private static bool IsCharClassEscape(string esc) =>
        esc.Length >= 2 && esc[1] is 'p' or 'P' or 's' or 'S' or 'd' or 'D' or 'w' or 'W' or 'h' or 'H';

    /// <summary>A character atom (class body or single escape) as BMP class | supplementary pairs.</summary>
    private static string Atom(string body, bool negated, bool bmpOnly)
    {
        var items = ParseClass(body);
        bool Member(int cp) => items.Contains(cp) != negated;
        string supp = bmpOnly ? "" : SupplementaryCache.GetOrAdd((negated ? "^" : "") + body, _ => Supplementary(Member));
        // BMP part: .NET's own class syntax where it means the same on the BMP (general categories,
        // \s, \d, literals and ranges; its category checks are much faster than long range lists),
        // else explicit ranges. Surrogates are subtracted either way.
        if (IsNativeSafe(body))
        {
            string native = (negated ? "[^" : "[") + body + @"-[\uD800-\uDFFF]]";
            return supp.Length == 0 ? native : $"(?:{native}|{supp})";
        }
        var bmp = new StringBuilder("[");
        int runStart = -1;
        for (int cp = 0; cp <= 0x10000; cp++)
        {
            bool inSet = cp < 0x10000 && (cp < 0xD800 || cp > 0xDFFF) && Member(cp);
            if (inSet && runStart < 0) runStart = cp;
            else if (!inSet && runStart >= 0)
            {
                AppendRange(bmp, runStart, cp - 1);
                runStart = -1;
            }
        }
        bmp.Append(']');
        bool emptyBmp = bmp.Length == 2;
        if (supp.Length == 0) return emptyBmp ? "(?!)" : bmp.ToString();
        return emptyBmp ? $"(?:{supp})" : $"(?:{bmp}|{supp})";
    }

    /// <summary>
    /// Whether a class body (or single escape) reads the same in .NET on BMP characters: only
    /// literal BMP characters, ranges, general-category properties, \s \S \d \D and simple escapes.
    /// </summary>
    private static bool IsNativeSafe(string body)
    {
        for (int i = 0; i < body.Length; i++)
        {
            char c = body[i];
            if (char.IsSurrogate(c) || c == '[') return false;
            if (c == '-' && i + 1 < body.Length && body[i + 1] == '[') return false;
            if (c == '&' && i + 1 < body.Length && body[i + 1] == '&') return false;
            if (c != '\\') continue;
            int end = EscapeEnd(body, i);
            string esc = body[i..end];
            char e = esc.Length > 1 ? esc[1] : '\0';
            if (e is 'p' or 'P')
            {
                string name = esc.Length > 3 && esc[2] == '{' ? esc[3..^1] : esc[2..];
                if (name is not ("L" or "Lu" or "Ll" or "Lt" or "Lm" or "Lo" or "M" or "Mn" or "Mc" or "Me" or "N" or "Nd" or "Nl" or "No" or "P" or "Pc" or "Pd"
                    or "Ps" or "Pe" or "Pi" or "Pf" or "Po" or "S" or "Sm" or "Sc" or "Sk" or "So" or "Z" or "Zs" or "Zl" or "Zp" or "Cc" or "Cf" or "Co" or "Cn")) return false;
            }
            else if (e is 'w' or 'W' or 'h' or 'H' or 'x' or 'u' || char.IsDigit(e)) return false;
            i = end - 1;
        }
        return true;
    }

    private static void AppendRange(StringBuilder sb, int a, int b)
    {
        sb.Append(Escape(a));
        if (b > a) { if (b > a + 1) sb.Append('-'); sb.Append(Escape(b)); }
    }

    private static string Escape(int cp) => $"\\u{cp:X4}";

    private static string Supplementary(Func<int, bool> member)
    {
        // Group by high surrogate: each high surrogate gets a class of low surrogates; runs of
        // high surrogates with the same low class share one alternative.
        var alternatives = new List<string>();
        string? prevLow = null;
        int prevHighStart = -1, prevHighEnd = -1;
        void Flush()
        {
            if (prevLow is null) return;
            string high = prevHighStart == prevHighEnd ? Escape(prevHighStart) : $"[{Escape(prevHighStart)}-{Escape(prevHighEnd)}]";
            alternatives.Add(high + prevLow);
            prevLow = null;
        }
        var low = new StringBuilder();
        for (int hi = 0xD800; hi <= 0xDBFF; hi++)
        {
            low.Clear();
            int runStart = -1;
            int baseCp = 0x10000 + ((hi - 0xD800) << 10);
            for (int lo = 0; lo <= 0x400; lo++)
            {
                bool inSet = lo < 0x400 && member(baseCp + lo);
                if (inSet && runStart < 0) runStart = lo;
                else if (!inSet && runStart >= 0) { AppendRange(low, 0xDC00 + runStart, 0xDC00 + lo - 1); runStart = -1; }
            }
            string? cls = low.Length == 0 ? null : "[" + low + "]";
            if (cls is not null && cls == prevLow && prevHighEnd == hi - 1) { prevHighEnd = hi; continue; }
            Flush();
            if (cls is not null) { prevLow = cls; prevHighStart = prevHighEnd = hi; }
        }
        Flush();
        return string.Join("|", alternatives);
    }

    /// <summary>A parsed class body: the union of its items.</summary>
    private sealed class ClassItems
    {
        public readonly List<(int Lo, int Hi)> Ranges = [];
        public readonly List<Func<int, bool>> Predicates = [];
        public bool Contains(int cp)
        {
            foreach (var (lo, hi) in Ranges) if (cp >= lo && cp <= hi) return true;
            foreach (var p in Predicates) if (p(cp)) return true;
            return false;
        }
    }

    private static ClassItems ParseClass(string body)
    {
        var items = new ClassItems();
        int i = 0;
        while (i < body.Length)
        {
            if (body[i] == '[')
            {
                int end = ClassEnd(body, i);
                bool neg = i + 1 < body.Length && body[i + 1] == '^';
                var nested = ParseClass(body[(neg ? i + 2 : i + 1)..(end - 1)]);
                items.Predicates.Add(cp => nested.Contains(cp) != neg);
                i = end;
                continue;
            }
            if (body[i] == '&' && i + 1 < body.Length && body[i + 1] == '&') throw new FormatException($"regex class '[{body}]': intersection (&&) is not supported");
            int lo;
            if (body[i] == '\\')
            {
                int end = EscapeEnd(body, i);
                string esc = body[i..end];
                i = end;
                var pred = EscapePredicate(esc);
                if (pred is not null) { items.Predicates.Add(pred); continue; }
                lo = EscapeLiteral(esc);
            }
            else
            {
                lo = char.ConvertToUtf32(body, i);
                i += char.IsSurrogatePair(body, i) ? 2 : 1;
            }
            if (i + 1 < body.Length && body[i] == '-' && body[i + 1] != ']')
            {
                i++;
                int hi;
                if (body[i] == '\\') { int end = EscapeEnd(body, i); hi = EscapeLiteral(body[i..end]); i = end; }
                else { hi = char.ConvertToUtf32(body, i); i += char.IsSurrogatePair(body, i) ? 2 : 1; }
                items.Ranges.Add((lo, hi));
            }
            else items.Ranges.Add((lo, lo));
        }
        return items;
    }

    private static int EscapeLiteral(string esc)
    {
        char e = esc[1];
        return e switch
        {
            'n' => '\n', 'r' => '\r', 't' => '\t', 'f' => '\f', 'v' => '\v', 'a' => '\a', 'e' => 0x1B, '0' => 0,
            'x' when esc.Length > 2 && esc[2] == '{' => int.Parse(esc[3..^1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            'x' or 'u' => int.Parse(esc[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            _ when char.IsAsciiLetterOrDigit(e) => throw new FormatException($"regex escape '{esc}' is not supported"),
            _ => char.ConvertToUtf32(esc, 1),
        };
    }

    private static Func<int, bool>? EscapePredicate(string esc)
    {
        switch (esc[1])
        {
            case 's': return IsSpace;
            case 'S': return cp => !IsSpace(cp);
            case 'd': return cp => Category(cp) == UnicodeCategory.DecimalDigitNumber;
            case 'D': return cp => Category(cp) != UnicodeCategory.DecimalDigitNumber;
            case 'w': return IsWord;
            case 'W': return cp => !IsWord(cp);
            case 'h': return cp => char.IsAsciiHexDigit((char)Math.Min(cp, 0x7F)) && cp < 0x80;
            case 'H': return cp => !(cp < 0x80 && char.IsAsciiHexDigit((char)cp));
            case 'p' or 'P':
            {
                string name = esc.Length > 3 && esc[2] == '{' ? esc[3..^1] : esc[2..];
                bool neg = esc[1] == 'P';
                if (name.StartsWith('^')) { neg = !neg; name = name[1..]; }
                var p = Property(name);
                return neg ? cp => !p(cp) : p;
            }
            default: return null;
        }
    }

    /// <summary>White_Space (what Oniguruma's Unicode <c>\s</c> and Rust's <c>char::is_whitespace</c> use).</summary>
    public static bool IsSpace(int cp) => cp is (>= 0x09 and <= 0x0D) or 0x20 or 0x85 or 0xA0 or 0x1680 or (>= 0x2000 and <= 0x200A)
        or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    private static bool IsWord(int cp)
    {
        var c = Category(cp);
        return c is <= UnicodeCategory.OtherLetter or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
            or UnicodeCategory.EnclosingMark or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation;
    }

    internal static UnicodeCategory Category(int cp) => CharUnicodeInfo.GetUnicodeCategory(cp);

    private static Func<int, bool> Property(string name)
    {
        static Func<int, bool> Cats(params UnicodeCategory[] cats) => cp => Array.IndexOf(cats, Category(cp)) >= 0;
        return name switch
        {
            "L" or "Letter" => Cats(UnicodeCategory.UppercaseLetter, UnicodeCategory.LowercaseLetter, UnicodeCategory.TitlecaseLetter, UnicodeCategory.ModifierLetter, UnicodeCategory.OtherLetter),
            "Lu" => Cats(UnicodeCategory.UppercaseLetter),
            "Ll" => Cats(UnicodeCategory.LowercaseLetter),
            "Lt" => Cats(UnicodeCategory.TitlecaseLetter),
            "Lm" => Cats(UnicodeCategory.ModifierLetter),
            "Lo" => Cats(UnicodeCategory.OtherLetter),
            "M" or "Mark" => Cats(UnicodeCategory.NonSpacingMark, UnicodeCategory.SpacingCombiningMark, UnicodeCategory.EnclosingMark),
            "Mn" => Cats(UnicodeCategory.NonSpacingMark),
            "Mc" => Cats(UnicodeCategory.SpacingCombiningMark),
            "Me" => Cats(UnicodeCategory.EnclosingMark),
            "N" or "Number" => Cats(UnicodeCategory.DecimalDigitNumber, UnicodeCategory.LetterNumber, UnicodeCategory.OtherNumber),
            "Nd" => Cats(UnicodeCategory.DecimalDigitNumber),
            "Nl" => Cats(UnicodeCategory.LetterNumber),
            "No" => Cats(UnicodeCategory.OtherNumber),
            "P" or "Punctuation" => Cats(UnicodeCategory.ConnectorPunctuation, UnicodeCategory.DashPunctuation, UnicodeCategory.OpenPunctuation, UnicodeCategory.ClosePunctuation,
                UnicodeCategory.InitialQuotePunctuation, UnicodeCategory.FinalQuotePunctuation, UnicodeCategory.OtherPunctuation),
            "Pc" => Cats(UnicodeCategory.ConnectorPunctuation),
            "Pd" => Cats(UnicodeCategory.DashPunctuation),
            "Ps" => Cats(UnicodeCategory.OpenPunctuation),
            "Pe" => Cats(UnicodeCategory.ClosePunctuation),
            "Pi" => Cats(UnicodeCategory.InitialQuotePunctuation),
            "Pf" => Cats(UnicodeCategory.FinalQuotePunctuation),
            "Po" => Cats(UnicodeCategory.OtherPunctuation),
            "S" or "Symbol" => Cats(UnicodeCategory.MathSymbol, UnicodeCategory.CurrencySymbol, UnicodeCategory.ModifierSymbol, UnicodeCategory.OtherSymbol),
            "Sm" => Cats(UnicodeCategory.MathSymbol),
            "Sc" => Cats(UnicodeCategory.CurrencySymbol),
            "Sk" => Cats(UnicodeCategory.ModifierSymbol),
            "So" => Cats(UnicodeCategory.OtherSymbol),
            "Z" or "Separator" => Cats(UnicodeCategory.SpaceSeparator, UnicodeCategory.LineSeparator, UnicodeCategory.ParagraphSeparator),
            "Zs" => Cats(UnicodeCategory.SpaceSeparator),
            "Zl" => Cats(UnicodeCategory.LineSeparator),
            "Zp" => Cats(UnicodeCategory.ParagraphSeparator),
            "C" or "Other" => Cats(UnicodeCategory.Control, UnicodeCategory.Format, UnicodeCategory.Surrogate, UnicodeCategory.PrivateUse, UnicodeCategory.OtherNotAssigned),
            "Cc" => Cats(UnicodeCategory.Control),
            "Cf" => Cats(UnicodeCategory.Format),
            "Co" => Cats(UnicodeCategory.PrivateUse),
            "Cn" => Cats(UnicodeCategory.OtherNotAssigned),
            "Han" => cp => cp is (>= 0x2E80 and <= 0x2E99) or (>= 0x2E9B and <= 0x2EF3) or (>= 0x2F00 and <= 0x2FD5) or 0x3005 or 0x3007
                or (>= 0x3021 and <= 0x3029) or (>= 0x3038 and <= 0x303B) or (>= 0x3400 and <= 0x4DBF) or (>= 0x4E00 and <= 0x9FFF)
                or (>= 0xF900 and <= 0xFA6D) or (>= 0xFA70 and <= 0xFAD9) or (>= 0x20000 and <= 0x2A6DF) or (>= 0x2A700 and <= 0x2EBEF)
                or (>= 0x2F800 and <= 0x2FA1F) or (>= 0x30000 and <= 0x323AF),
            "Hiragana" => cp => cp is (>= 0x3041 and <= 0x3096) or (>= 0x309D and <= 0x309F) or 0x1B001 or 0x1F200,
            "Katakana" => cp => cp is (>= 0x30A1 and <= 0x30FA) or (>= 0x30FD and <= 0x30FF) or (>= 0x31F0 and <= 0x31FF) or (>= 0x32D0 and <= 0x32FE)
                or (>= 0x3300 and <= 0x3357) or (>= 0xFF66 and <= 0xFF6F) or (>= 0xFF71 and <= 0xFF9D) or 0x1B000,
            "Hangul" => cp => cp is (>= 0x1100 and <= 0x11FF) or (>= 0x3131 and <= 0x318E) or (>= 0xA960 and <= 0xA97C) or (>= 0xAC00 and <= 0xD7A3)
                or (>= 0xD7B0 and <= 0xD7FB) or (>= 0xFFA0 and <= 0xFFDC),
            _ => throw new FormatException($"regex property \\p{{{name}}} is not supported"),
        };
    }

    private static int EscapeEnd(string p, int i)
    {
        if (i + 1 >= p.Length) return p.Length;
        char e = p[i + 1];
        if ((e == 'p' || e == 'P' || e == 'x') && i + 2 < p.Length && p[i + 2] == '{')
        {
            int close = p.IndexOf('}', i + 3);
            return close < 0 ? p.Length : close + 1;
        }
        if (e == 'p' || e == 'P') return Math.Min(p.Length, i + 3);
        if (e == 'x') return Math.Min(p.Length, i + 4);
        if (e == 'u') return Math.Min(p.Length, i + 6);
        if (char.IsHighSurrogate(e) && i + 2 < p.Length) return i + 3;
        return i + 2;
    }

    private static int ClassEnd(string p, int i)
    {
        int j = i + 1;
        if (j < p.Length && p[j] == '^') j++;
        if (j < p.Length && p[j] == ']') j++;
        while (j < p.Length)
        {
            if (p[j] == '\\') { j = EscapeEnd(p, j); continue; }
            if (p[j] == '[') { j = ClassEnd(p, j); continue; }
            if (p[j] == ']') return j + 1;
            j++;
        }
        throw new FormatException($"regex '{p}': unterminated class at {i}");
    }

    private static int QuantifierBraceEnd(string p, int i)
    {
        int j = i + 1;
        while (j < p.Length && (char.IsAsciiDigit(p[j]) || p[j] == ',')) j++;
        return j < p.Length && p[j] == '}' && j > i + 1 ? j + 1 : -1;
    }
}
