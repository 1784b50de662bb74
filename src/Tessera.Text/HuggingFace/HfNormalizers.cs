using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Tessera.Text;

/// <summary>
/// A Hugging Face normalizer: rewrites one section of input (the text between added tokens)
/// before pre-tokenization. Only the resulting text matters for ids, so offsets are not kept.
/// </summary>
internal abstract partial class HfNormalizer
{
    public abstract string Normalize(string text);

    /// <summary>NFC, NFD, NFKC, NFKD.</summary>
    public sealed class Unicode(NormalizationForm form, string component) : HfNormalizer
    {
        public NormalizationForm Form { get; } = Init(form, component);
        private static NormalizationForm Init(NormalizationForm f, string component) { UnicodeNormalizer.EnsureAvailable(component); return f; }
        public override string Normalize(string text) => UnicodeNormalizer.Normalize(text, Form);
    }

    /// <summary>Rust's <c>str::to_lowercase</c>: full lowercase mapping (İ → i̇, final sigma).</summary>
    public sealed class Lowercase : HfNormalizer
    {
        public override string Normalize(string text) => ToLowerFull(text);

        public static string ToLowerFull(string text)
        {
            bool simple = true;
            foreach (char c in text) if (c is '\u0130' or '\u03A3') { simple = false; break; }
            if (simple) return text.ToLowerInvariant();
            var sb = new StringBuilder(text.Length + 4);
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (c == '\u0130') sb.Append("i\u0307");
                else if (c == '\u03A3') sb.Append(IsFinalSigma(text, i) ? '\u03C2' : '\u03C3');
                else if (char.IsHighSurrogate(c) && i + 1 < text.Length) { sb.Append(text.AsSpan(i, 2).ToString().ToLowerInvariant()); i++; }
                else sb.Append(char.ToLowerInvariant(c));
            }
            return sb.ToString();
        }

        // Final_Sigma: preceded by a cased letter (skipping case-ignorable) and not followed by one.
        private static bool IsFinalSigma(string s, int i)
        {
            int j = i - 1;
            while (j >= 0 && IsCaseIgnorable(s[j])) j--;
            if (j < 0 || !IsCased(s[j])) return false;
            j = i + 1;
            while (j < s.Length && IsCaseIgnorable(s[j])) j++;
            return j >= s.Length || !IsCased(s[j]);
        }

        private static bool IsCased(char c) => char.IsUpper(c) || char.IsLower(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.TitlecaseLetter;
        private static bool IsCaseIgnorable(char c) => c is '\'' or '.' or ':' or '^' or '`' or '\u00AD' or '\u2019'
            || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;
    }

    /// <summary>Replace a literal string or a regex with <c>content</c>.</summary>
    public sealed class Replace(string? literal, Regex? regex, string content) : HfNormalizer
    {
        public override string Normalize(string text) => Apply(text, literal, regex, content);

        public static string Apply(string text, string? literal, Regex? regex, string content)
        {
            if (literal is not null) return literal.Length == 0 ? text : text.Replace(literal, content, StringComparison.Ordinal);
            return regex!.Replace(text, content.Replace("$", "$$", StringComparison.Ordinal));
        }
    }

    /// <summary>Prepends a string to non-empty text.</summary>
    public sealed class Prepend(string prefix) : HfNormalizer
    {
        public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
    }

    /// <summary>Strips whitespace (Unicode White_Space) on the left and/or right.</summary>
    public sealed class Strip(bool left, bool right) : HfNormalizer
    {
        public override string Normalize(string text)
        {
            int a = 0, b = text.Length;
            if (left) while (a < b && OnigPattern.IsSpace(text[a])) a++;
            if (right) while (b > a && OnigPattern.IsSpace(text[b - 1])) b--;
            return text[a..b];
        }
    }

    /// <summary>Removes combining marks (general category M).</summary>
    public sealed class StripAccents : HfNormalizer
    {
        public override string Normalize(string text) => RemoveMarks(text);

        public static string RemoveMarks(string text)
        {
            var sb = new StringBuilder(text.Length);
            for (int i = 0; i < text.Length; i++)
            {
                int cp = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? char.ConvertToUtf32(text[i], text[i + 1]) : text[i];
                int n = cp > 0xFFFF ? 2 : 1;
                if (!IsMark(cp)) sb.Append(text, i, n);
                i += n - 1;
            }
            return sb.ToString();
        }

        public static bool IsMark(int cp) => OnigPattern.Category(cp) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;
    }

    /// <summary>BERT's normalizer: clean control characters, space out CJK ideographs, strip accents, lowercase.</summary>
    public sealed class Bert(bool cleanText, bool handleChineseChars, bool? stripAccents, bool lowercase, string component) : HfNormalizer
    {
        private readonly bool _strip = Init(stripAccents ?? lowercase, component);
        private static bool Init(bool strip, string component) { if (strip) UnicodeNormalizer.EnsureAvailable(component); return strip; }

        public override string Normalize(string text)
        {
            var sb = new StringBuilder(text.Length);
            for (int i = 0; i < text.Length; i++)
            {
                int cp = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? char.ConvertToUtf32(text[i], text[i + 1]) : text[i];
                int n = cp > 0xFFFF ? 2 : 1;
                i += n - 1;
                if (cleanText)
                {
                    if (cp == 0 || cp == 0xFFFD || (IsControl(cp))) continue;
                    if (OnigPattern.IsSpace(cp) || cp is '\t' or '\n' or '\r') { sb.Append(' '); continue; }
                }
                if (handleChineseChars && IsChinese(cp)) { sb.Append(' ').Append(char.ConvertFromUtf32(cp)).Append(' '); continue; }
                sb.Append(char.ConvertFromUtf32(cp));
            }
            string s = sb.ToString();
            if (_strip) s = StripAccents.RemoveMarks(UnicodeNormalizer.Normalize(s, NormalizationForm.FormD));
            if (lowercase) s = Lowercase.ToLowerFull(s);
            return s;
        }

        private static bool IsControl(int cp) => cp is not ('\t' or '\n' or '\r') && OnigPattern.Category(cp) is UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;

        private static bool IsChinese(int cp) => cp is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF)
            or (>= 0x2A700 and <= 0x2B73F) or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B920 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
    }

    /// <summary>Applies normalizers in order.</summary>
    public sealed class Sequence(IReadOnlyList<HfNormalizer> steps) : HfNormalizer
    {
        public IReadOnlyList<HfNormalizer> Steps { get; } = steps;
        public override string Normalize(string text)
        {
            foreach (var s in Steps) text = s.Normalize(text);
            return text;
        }
    }
}
