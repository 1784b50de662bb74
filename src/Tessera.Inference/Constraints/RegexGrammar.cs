using System.Globalization;
using System.Text;

namespace Tessera.Inference.Constraints;

/// <summary>
/// The regex constraint: the whole reply must match a pattern, compiled to <see cref="Grammar"/>
/// nodes over bytes, so it shares the token-mask machinery of JSON schemas. The dialect is the
/// common core of .NET and ECMAScript regexes, matched against the whole text:
/// <list type="bullet">
/// <item>literals (any Unicode), <c>.</c> (one code point other than <c>\n</c>);</item>
/// <item>classes <c>[a-z_]</c>, <c>[^…]</c> (ASCII members only), a leading <c>]</c> taken literally;</item>
/// <item><c>\d \w \s</c> (ASCII: <c>[0-9]</c>, <c>[A-Za-z0-9_]</c>, <c>[\t\n\v\f\r ]</c>) and <c>\D \W \S</c>;
/// <c>\n \t \r \f \v \xHH \uHHHH</c>; a backslash before any other non-alphanumeric character;</item>
/// <item>groups <c>(…)</c> and <c>(?:…)</c>, alternation <c>|</c>;</item>
/// <item>quantifiers <c>* + ? {n} {n,} {n,m}</c> (a lazy <c>?</c> after one is accepted: the set of
/// texts is the same);</item>
/// <item><c>^</c> first and <c>$</c> last (the match is whole anyway).</item>
/// </list>
/// Refused with a <see cref="ConstraintException"/> naming the position: backreferences, lookaround,
/// word boundaries, Unicode categories, inline options, class subtraction, non-ASCII ranges, a part
/// that can match nothing under an unbounded quantifier, counts above <see cref="MaxCount"/>, and
/// patterns longer than <see cref="MaxPatternLength"/> characters or deeper than
/// <see cref="MaxDepth"/> groups.
/// </summary>
public static class RegexGrammar
{
    /// <summary>Longest pattern accepted, in characters.</summary>
    public const int MaxPatternLength = 4096;

    /// <summary>Largest count in <c>{n,m}</c>.</summary>
    public const int MaxCount = 1000;

    /// <summary>Deepest group nesting.</summary>
    public const int MaxDepth = 64;

    /// <summary>Compiles <paramref name="pattern"/>; the grammar matches exactly the texts the whole pattern matches.</summary>
    public static Grammar Compile(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        if (pattern.Length == 0) throw new ConstraintException("the pattern is empty.");
        if (pattern.Length > MaxPatternLength) throw new ConstraintException($"the pattern is too long: {pattern.Length} characters, at most {MaxPatternLength}.");
        var part = new Parser(pattern).Whole();
        return new Grammar(part.Node, "the pattern");
    }

    readonly record struct Part(GrammarNode Node, bool Nullable);

    sealed class Parser(string s)
    {
        int i;

        ConstraintException Error(string what) => new($"the pattern cannot be compiled at character {i}: {what}.");

        static GrammarNode Empty() => new LiteralNode([]);

        public Part Whole()
        {
            if (i < s.Length && s[i] == '^') i++;
            var p = Alternation(0);
            if (i < s.Length) throw Error(s[i] == ')' ? "an unmatched ')'" : $"unexpected '{s[i]}'");
            return p;
        }

        Part Alternation(int depth)
        {
            if (depth > MaxDepth) throw Error($"groups nest deeper than {MaxDepth}");
            var items = new List<Part> { Concat(depth) };
            while (i < s.Length && s[i] == '|') { i++; items.Add(Concat(depth)); }
            return items.Count == 1 ? items[0] : new Part(new ChoiceNode([.. items.Select(p => p.Node)]), items.Any(p => p.Nullable));
        }

        Part Concat(int depth)
        {
            var items = new List<Part>();
            while (i < s.Length && s[i] is not ('|' or ')'))
            {
                if (s[i] == '$')
                {
                    if (i == s.Length - 1) { i++; break; }
                    throw Error("'$' is supported only at the end of the pattern");
                }
                if (s[i] == '^') throw Error("'^' is supported only at the start of the pattern");
                items.Add(Quantified(Atom(depth)));
            }
            return items.Count switch
            {
                0 => new Part(Empty(), true),
                1 => items[0],
                _ => new Part(new SequenceNode([.. items.Select(p => p.Node)]), items.All(p => p.Nullable)),
            };
        }

        Part Quantified(Part atom)
        {
            if (i >= s.Length) return atom;
            int min, max;
            switch (s[i])
            {
                case '*': min = 0; max = -1; i++; break;
                case '+': min = 1; max = -1; i++; break;
                case '?': min = 0; max = 1; i++; break;
                case '{': (min, max) = Count(); break;
                default: return atom;
            }
            if (i < s.Length && s[i] == '?') i++;   // lazy: the same texts
            if (i < s.Length && s[i] is '*' or '+' or '?' or '{') throw Error("a nested quantifier");
            return Repeat(atom, min, max);
        }

        (int Min, int Max) Count()
        {
            const string Form = "'{' must start a count {n}, {n,} or {n,m} (write \\{ for a brace)";
            i++;
            int min = Number(), max = min;
            if (min < 0) throw Error(Form);
            if (i < s.Length && s[i] == ',')
            {
                i++;
                max = i < s.Length && s[i] == '}' ? -1 : Number();
                if (max < 0 && !(i < s.Length && s[i] == '}')) throw Error(Form);
                if (max >= 0 && max < min) throw Error($"the count {{{min},{max}}} has its maximum below its minimum");
            }
            if (i >= s.Length || s[i] != '}') throw Error(Form);
            i++;
            if (min > MaxCount || max > MaxCount) throw Error($"a count above {MaxCount}");
            return (min, max);
        }

        // The decimal number at i (saturating), or −1 when no digit is there.
        int Number()
        {
            int start = i;
            long v = 0;
            while (i < s.Length && s[i] is >= '0' and <= '9') { v = Math.Min(v * 10 + (s[i] - '0'), int.MaxValue); i++; }
            return i == start ? -1 : (int)v;
        }

        Part Repeat(Part atom, int min, int max)
        {
            if (max < 0 && atom.Nullable) throw Error("a part that can match nothing cannot repeat without bound");
            var parts = new List<GrammarNode>();
            for (int k = 0; k < min; k++) parts.Add(atom.Node);
            if (max < 0)
            {
                // x* = ε | x x*: the reference closes the loop; the matcher pops a finished sequence before its last item, so a long run keeps the stack flat.
                var loop = new ReferenceNode("*");
                var star = new ChoiceNode([Empty(), new SequenceNode([atom.Node, loop])]);
                loop.Node = star;
                parts.Add(star);
            }
            else
            {
                // x{0,k} = ε | x x{0,k−1}, built from the inside out.
                GrammarNode optional = Empty();
                for (int k = 0; k < max - min; k++) optional = new ChoiceNode([Empty(), new SequenceNode([atom.Node, optional])]);
                if (max > min) parts.Add(optional);
            }
            var node = parts.Count switch { 0 => Empty(), 1 => parts[0], _ => new SequenceNode([.. parts]) };
            return new Part(node, min == 0 || atom.Nullable);
        }

        Part Atom(int depth)
        {
            char c = s[i];
            switch (c)
            {
                case '(':
                {
                    int open = i++;
                    if (i < s.Length && s[i] == '?')
                    {
                        if (i + 1 < s.Length && s[i + 1] == ':') i += 2;
                        else throw Error("only (…) and (?:…) groups are supported (no lookaround, named groups or inline options)");
                    }
                    var inner = Alternation(depth + 1);
                    if (i >= s.Length || s[i] != ')') { i = open; throw Error("an unclosed '('"); }
                    i++;
                    return inner;
                }
                case '[': return Class();
                case '.': i++; return new Part(new ChoiceNode([Ascii(b => b != '\n'), AnyMultibyte()]), false);
                case '\\': return Escape();
                case '*' or '+' or '?' or '{': throw Error($"'{c}' has nothing to repeat");
                default: return Literal(CodePoint());
            }
        }

        // The code point at i (a surrogate pair taken whole); a lone surrogate is refused.
        int CodePoint()
        {
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i += 2; return char.ConvertToUtf32(c, s[i - 1]); }
            if (char.IsSurrogate(c)) throw Error("a lone surrogate");
            i++;
            return c;
        }

        static Part Literal(int cp) => new(new LiteralNode(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(cp))), false);

        Part Escape()
        {
            i++;
            if (i >= s.Length) throw Error("a pattern cannot end with '\\'");
            char e = s[i];
            if (ClassEscape(e) is { } set)
            {
                i++;
                return char.IsUpper(e) ? new Part(new ChoiceNode([Ascii(b => !set(b)), AnyMultibyte()]), false) : new Part(Ascii(set), false);
            }
            return Literal(EscapedChar());
        }

        // \d \w \s and their negations: the ASCII membership test (of the lower-case form).
        static Func<byte, bool>? ClassEscape(char e) => char.ToLowerInvariant(e) switch
        {
            'd' when e is 'd' or 'D' => b => b is >= (byte)'0' and <= (byte)'9',
            'w' when e is 'w' or 'W' => b => b is (>= (byte)'0' and <= (byte)'9') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'a' and <= (byte)'z') or (byte)'_',
            's' when e is 's' or 'S' => b => b is (>= 0x09 and <= 0x0D) or 0x20,
            _ => null,
        };

        // The character of a one-character escape at i (after the backslash); i moves past it.
        int EscapedChar()
        {
            char e = s[i];
            switch (e)
            {
                case 'n': i++; return '\n';
                case 't': i++; return '\t';
                case 'r': i++; return '\r';
                case 'f': i++; return '\f';
                case 'v': i++; return '\v';
                case 'x': return Hex(2);
                case 'u':
                {
                    int cp = Hex(4);
                    if (cp is >= 0xD800 and <= 0xDFFF) throw Error("\\u escapes of surrogates are not supported");
                    return cp;
                }
            }
            if (char.IsAsciiLetterOrDigit(e)) throw Error($"'\\{e}' is not supported (no backreferences, word boundaries or Unicode categories)");
            return CodePoint();
        }

        int Hex(int digits)
        {
            int start = i++;
            if (i + digits > s.Length || !int.TryParse(s.AsSpan(i, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int v))
            { i = start; throw Error($"'\\{s[start]}' needs {digits} hex digits"); }
            i += digits;
            return v;
        }

        Part Class()
        {
            int open = i++;
            bool negated = i < s.Length && s[i] == '^';
            if (negated) i++;
            var ascii = new bool[128];
            var wide = new List<int>();
            bool first = true;
            while (true)
            {
                if (i >= s.Length) { i = open; throw Error("an unclosed '['"); }
                if (s[i] == ']' && !first) { i++; break; }
                first = false;
                if (s[i] == '-' && i + 1 < s.Length && s[i + 1] == '[') throw Error("class subtraction is not supported");
                int lo;
                if (s[i] == '\\')
                {
                    i++;
                    if (i >= s.Length) { i = open; throw Error("an unclosed '['"); }
                    if (ClassEscape(s[i]) is { } set)
                    {
                        if (char.IsUpper(s[i])) throw Error($"'\\{s[i]}' inside a class is not supported");
                        for (int b = 0; b < 128; b++) ascii[b] |= set((byte)b);
                        i++;
                        continue;
                    }
                    if (s[i] == 'b') throw Error("'\\b' inside a class is not supported");
                    lo = EscapedChar();
                }
                else lo = CodePoint();
                int hi = lo;
                if (i + 1 < s.Length && s[i] == '-' && s[i + 1] != ']')
                {
                    i++;
                    if (s[i] == '[') throw Error("class subtraction is not supported");
                    if (s[i] == '\\')
                    {
                        i++;
                        if (i >= s.Length || ClassEscape(s[i]) is not null) throw Error("a range must end at a character");
                        hi = EscapedChar();
                    }
                    else hi = CodePoint();
                    if (hi < lo) throw Error("a range whose end comes before its start");
                    if (hi >= 128) throw Error("ranges beyond ASCII are not supported (list the characters)");
                }
                if (lo < 128) for (int b = lo; b <= hi; b++) ascii[b] = true;
                else if (negated) throw Error("a negated class may list ASCII characters only");
                else wide.Add(lo);
            }
            var items = new List<GrammarNode>();
            if (negated)
            {
                if (ascii.Any(x => !x)) items.Add(Ascii(b => !ascii[b]));
                items.Add(AnyMultibyte());
            }
            else
            {
                if (ascii.Any(x => x)) items.Add(Ascii(b => ascii[b]));
                foreach (int cp in wide.Distinct()) items.Add(Literal(cp).Node);
            }
            return new Part(items.Count == 1 ? items[0] : new ChoiceNode([.. items]), false);
        }

        static ByteSetNode Ascii(Func<byte, bool> member) => new(Enumerable.Range(0, 128).Select(b => (byte)b).Where(member));

        /// <summary>Any one code point from U+0080 up in UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).</summary>
        static GrammarNode AnyMultibyte()
        {
            var tail = ByteSetNode.Range(0x80, 0xBF);
            return new ChoiceNode(
            [
                new SequenceNode([ByteSetNode.Range(0xC2, 0xDF), tail]),
                new SequenceNode([ByteSetNode.Range(0xE0, 0xE0), ByteSetNode.Range(0xA0, 0xBF), tail]),
                new SequenceNode([new ByteSetNode([.. Enumerable.Range(0xE1, 12).Select(b => (byte)b), 0xEE, 0xEF]), tail, tail]),
                new SequenceNode([ByteSetNode.Range(0xED, 0xED), ByteSetNode.Range(0x80, 0x9F), tail]),
                new SequenceNode([ByteSetNode.Range(0xF0, 0xF0), ByteSetNode.Range(0x90, 0xBF), tail, tail]),
                new SequenceNode([ByteSetNode.Range(0xF1, 0xF3), tail, tail, tail]),
                new SequenceNode([ByteSetNode.Range(0xF4, 0xF4), ByteSetNode.Range(0x80, 0x8F), tail, tail]),
            ]);
        }
    }
}
