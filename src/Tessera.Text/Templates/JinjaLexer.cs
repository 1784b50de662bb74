using System.Text;
using System.Text.RegularExpressions;

namespace Tessera.Text.Templates;

/// <summary>Kinds of template tokens.</summary>
internal enum JinjaTokenKind { Text, OpenExpr, CloseExpr, OpenStmt, CloseStmt, Name, Int, Float, String, Op, End }

/// <summary>One token; <see cref="Offset"/> is its position in the preprocessed source, for messages.</summary>
internal readonly record struct JinjaToken(JinjaTokenKind Kind, string Text, int Offset);

/// <summary>
/// Splits a chat template into text and tag tokens. The source is first preprocessed as HF
/// chat templating configures Jinja: one trailing newline dropped, <c>lstrip_blocks</c>
/// (spaces and tabs before a block tag at line start removed), <c>trim_blocks</c> (the newline
/// after a block tag removed), and transformers' <c>{% generation %}</c> markers removed.
/// <c>{%-</c>/<c>-%}</c> style markers strip whitespace beside the tag; comments vanish.
/// </summary>
internal static class JinjaLexer
{
    private static readonly Regex LStrip = new(@"^[ \t]*(\{[#%-])", RegexOptions.Multiline | RegexOptions.CultureInvariant);
    private static readonly Regex TrimBlocks = new(@"([#%-]\})\n", RegexOptions.CultureInvariant);
    private static readonly Regex Generation = new(@"(\s*)\{%(-?)\s*(?:end)?generation\s*(-?)%\}(\s*)", RegexOptions.Singleline | RegexOptions.CultureInvariant);

    public static string Preprocess(string template)
    {
        if (template.EndsWith('\n')) template = template[..^1];
        template = LStrip.Replace(template, "$1");
        template = TrimBlocks.Replace(template, "$1");
        return Generation.Replace(template, m => (m.Groups[2].Length > 0 ? "" : m.Groups[1].Value) + (m.Groups[3].Length > 0 ? "" : m.Groups[4].Value));
    }

    private static readonly string[] Operators = ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    public static List<JinjaToken> Tokenize(string template)
    {
        string src = Preprocess(template);
        var tokens = new List<JinjaToken>();
        int i = 0;
        bool stripNextText = false;
        while (i < src.Length)
        {
            int open = FindTagStart(src, i);
            int textEnd = open < 0 ? src.Length : open;
            string text = src[i..textEnd];
            if (stripNextText) text = text.TrimStart();
            bool stripBefore = open >= 0 && open + 2 < src.Length && src[open + 2] == '-';
            if (stripBefore) text = text.TrimEnd();
            if (text.Length > 0) tokens.Add(new JinjaToken(JinjaTokenKind.Text, text, i));
            stripNextText = false;
            if (open < 0) break;
            char kind = src[open + 1];
            int p = open + 2 + (stripBefore ? 1 : 0);
            if (kind == '#')
            {
                int close = src.IndexOf("#}", p, StringComparison.Ordinal);
                if (close < 0) throw new JinjaException($"unterminated comment at offset {open}");
                stripNextText = close > 0 && src[close - 1] == '-';
                i = close + 2;
                continue;
            }
            tokens.Add(new JinjaToken(kind == '{' ? JinjaTokenKind.OpenExpr : JinjaTokenKind.OpenStmt, kind == '{' ? "{{" : "{%", open));
            string closer = kind == '{' ? "}}" : "%}";
            p = LexInside(src, p, closer, tokens, out bool stripAfter);
            tokens.Add(new JinjaToken(kind == '{' ? JinjaTokenKind.CloseExpr : JinjaTokenKind.CloseStmt, closer, p));
            stripNextText = stripAfter;
            i = p + 2;
        }
        tokens.Add(new JinjaToken(JinjaTokenKind.End, "", src.Length));
        return tokens;
    }

    private static int FindTagStart(string s, int from)
    {
        for (int i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>Lexes expression tokens up to the closer; returns the closer's position.</summary>
    private static int LexInside(string s, int i, string closer, List<JinjaToken> tokens, out bool stripAfter)
    {
        int depth = 0;
        while (true)
        {
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
            if (i >= s.Length) throw new JinjaException($"unterminated tag: expected '{closer}'");
            if (depth == 0 && s[i] == '-' && string.CompareOrdinal(s, i + 1, closer, 0, 2) == 0) { stripAfter = true; return i + 1; }
            if (depth == 0 && string.CompareOrdinal(s, i, closer, 0, 2) == 0) { stripAfter = false; return i; }
            char c = s[i];
            if (char.IsLetter(c) || c == '_')
            {
                int st = i;
                while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_')) i++;
                tokens.Add(new JinjaToken(JinjaTokenKind.Name, s[st..i], st));
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                int st = i;
                while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '_')) i++;
                bool isFloat = false;
                if (i + 1 < s.Length && s[i] == '.' && char.IsAsciiDigit(s[i + 1]))
                {
                    isFloat = true;
                    i++;
                    while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                }
                tokens.Add(new JinjaToken(isFloat ? JinjaTokenKind.Float : JinjaTokenKind.Int, s[st..i].Replace("_", ""), st));
                continue;
            }
            if (c is '\'' or '"')
            {
                int st = i++;
                var sb = new StringBuilder();
                while (i < s.Length && s[i] != c)
                {
                    if (s[i] == '\\' && i + 1 < s.Length)
                    {
                        char e = s[i + 1];
                        sb.Append(e switch { 'n' => '\n', 't' => '\t', 'r' => '\r', 'b' => '\b', 'f' => '\f', 'v' => '\v', '\'' => '\'', '"' => '"', '\\' => '\\', _ => e });
                        if (e is not ('n' or 't' or 'r' or 'b' or 'f' or 'v' or '\'' or '"' or '\\')) sb.Insert(sb.Length - 1, '\\');
                        i += 2;
                        continue;
                    }
                    sb.Append(s[i++]);
                }
                if (i >= s.Length) throw new JinjaException($"unterminated string literal at offset {st}");
                i++;
                tokens.Add(new JinjaToken(JinjaTokenKind.String, sb.ToString(), st));
                continue;
            }
            string? op = null;
            foreach (var o in Operators) if (string.CompareOrdinal(s, i, o, 0, o.Length) == 0) { op = o; break; }
            if (op is null) throw new JinjaException($"unexpected character '{c}' at offset {i}");
            if (op is "(" or "[" or "{") depth++;
            if (op is ")" or "]" or "}") depth--;
            tokens.Add(new JinjaToken(JinjaTokenKind.Op, op, i));
            i += op.Length;
        }
    }
}

/// <summary>A template that cannot be parsed or fails while rendering (including <c>raise_exception</c>).</summary>
public sealed class JinjaException(string message) : Exception(message);
