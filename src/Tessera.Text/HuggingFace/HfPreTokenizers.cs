using System.Globalization;
using System.Text.RegularExpressions;

namespace Tessera.Text;

/// <summary>A pre-token: its text and whether it begins at the start of the original input.</summary>
internal readonly record struct HfPiece(string Text, bool AtStart);

/// <summary>How a split keeps its delimiters (HF <c>SplitDelimiterBehavior</c>).</summary>
internal enum HfSplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>
/// A Hugging Face pre-tokenizer: splits a piece into smaller pieces. <c>ByteLevel</c> does not
/// rewrite text here; it marks the pipeline byte-level and the model reads UTF-8 bytes.
/// </summary>
internal abstract class HfPreTokenizer
{
    public abstract void Split(HfPiece piece, List<HfPiece> output);

    /// <summary>Cuts <paramref name="piece"/> by segments (start, end, isMatch) covering it and applies the behaviour.</summary>
    public static void ApplyBehavior(HfPiece piece, List<(int Start, int End, bool Match)> segments, HfSplitBehavior behavior, bool invert, List<HfPiece> output)
    {
        if (invert) for (int k = 0; k < segments.Count; k++) segments[k] = segments[k] with { Match = !segments[k].Match };
        var merged = new List<(int Start, int End)>(segments.Count);
        switch (behavior)
        {
            case HfSplitBehavior.Removed:
                foreach (var s in segments) if (!s.Match) merged.Add((s.Start, s.End));
                break;
            case HfSplitBehavior.Isolated:
                foreach (var s in segments) merged.Add((s.Start, s.End));
                break;
            case HfSplitBehavior.MergedWithPrevious:
            {
                bool prev = false;
                foreach (var s in segments)
                {
                    if (s.Match && !prev && merged.Count > 0) merged[^1] = (merged[^1].Start, s.End);
                    else merged.Add((s.Start, s.End));
                    prev = s.Match;
                }
                break;
            }
            case HfSplitBehavior.MergedWithNext:
            {
                bool prev = false;
                for (int k = segments.Count - 1; k >= 0; k--)
                {
                    var s = segments[k];
                    if (s.Match && !prev && merged.Count > 0) merged[^1] = (s.Start, merged[^1].End);
                    else merged.Add((s.Start, s.End));
                    prev = s.Match;
                }
                merged.Reverse();
                break;
            }
            case HfSplitBehavior.Contiguous:
            {
                bool prev = false;
                foreach (var s in segments)
                {
                    if (s.Match == prev && merged.Count > 0) merged[^1] = (merged[^1].Start, s.End);
                    else merged.Add((s.Start, s.End));
                    prev = s.Match;
                }
                break;
            }
        }
        foreach (var (a, b) in merged)
            if (b > a) output.Add(new HfPiece(a == 0 && b == piece.Text.Length ? piece.Text : piece.Text[a..b], piece.AtStart && a == 0));
    }

    /// <summary>Segments of <paramref name="text"/> from regex matches and the gaps between them (an empty match only cuts).</summary>
    public static List<(int, int, bool)> RegexSegments(Regex regex, string text)
    {
        var segs = new List<(int, int, bool)>();
        int prev = 0;
        foreach (var m in regex.EnumerateMatches(text))
        {
            if (m.Length == 0)
            {
                // An empty match still cuts the text there (a lookahead such as (?=(\d{3})+(?!\d))).
                if (m.Index > prev && m.Index < text.Length) { segs.Add((prev, m.Index, false)); prev = m.Index; }
                continue;
            }
            if (m.Index > prev) segs.Add((prev, m.Index, false));
            segs.Add((m.Index, m.Index + m.Length, true));
            prev = m.Index + m.Length;
        }
        if (prev < text.Length) segs.Add((prev, text.Length, false));
        return segs;
    }

    /// <summary>Segments of <paramref name="text"/> from a hand-written scanner's pre-tokens and the gaps between them.</summary>
    public static List<(int, int, bool)> ScannerSegments(PreTokenizer scanner, string text)
    {
        var segs = new List<(int, int, bool)>();
        int prev = 0;
        foreach (var m in scanner.Split(text))
        {
            if (m.Length == 0) continue;
            if (m.Index > prev) segs.Add((prev, m.Index, false));
            segs.Add((m.Index, m.Index + m.Length, true));
            prev = m.Index + m.Length;
        }
        if (prev < text.Length) segs.Add((prev, text.Length, false));
        return segs;
    }

    /// <summary>Segments where each code point is a match when <paramref name="isDelimiter"/> holds.</summary>
    public static List<(int, int, bool)> CharSegments(string text, Func<int, bool> isDelimiter)
    {
        var segs = new List<(int, int, bool)>();
        int runStart = 0;
        for (int i = 0; i < text.Length;)
        {
            int cp = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? char.ConvertToUtf32(text[i], text[i + 1]) : text[i];
            int n = cp > 0xFFFF ? 2 : 1;
            if (isDelimiter(cp))
            {
                if (i > runStart) segs.Add((runStart, i, false));
                segs.Add((i, i + n, true));
                runStart = i + n;
            }
            i += n;
        }
        if (runStart < text.Length) segs.Add((runStart, text.Length, false));
        return segs;
    }

    /// <summary>Split on a literal string or a regex (HF <c>Split</c>).</summary>
    public sealed class SplitPattern : HfPreTokenizer
    {
        private readonly string? _literal;
        // Two translations of one pattern: for text without surrogates (fast .NET class loops) and
        // for any text (supplementary code points as surrogate pairs; compiled on first need).
        // One instance per thread: a shared Regex hands its runner back and forth between threads.
        private readonly ThreadLocal<Regex>? _bmp;
        private readonly ThreadLocal<Regex>? _full;
        private readonly HfSplitBehavior _behavior;
        private readonly bool _invert;
        // cl100k / o200k (gpt-4o, gpt-oss): the hand-written scanner gives the same matches, faster.
        private readonly PreTokenizer? _scanner;

        public SplitPattern(string? literal, string? regex, HfSplitBehavior behavior, bool invert)
        {
            _literal = literal;
            if (regex is PreTokenizer.O200kPattern or PreTokenizer.Cl100kPattern) _scanner = new PreTokenizer(regex);
            if (regex is not null)
            {
                const RegexOptions options = RegexOptions.Compiled | RegexOptions.CultureInvariant;
                string bmp = OnigPattern.TranslateBmp(regex);
                var first = new Regex(bmp, options);
                _bmp = new ThreadLocal<Regex>(() => new Regex(bmp, options)) { Value = first };
                var full = new Lazy<string>(() => OnigPattern.Translate(regex));
                _ = full.Value; // translation errors surface at load time
                _full = new ThreadLocal<Regex>(() => new Regex(full.Value, options));
            }
            _behavior = behavior;
            _invert = invert;
            Regex = regex;
        }

        public string? Regex { get; }
        public HfSplitBehavior Behavior => _behavior;
        public bool Invert => _invert;

        public override void Split(HfPiece piece, List<HfPiece> output)
        {
            List<(int, int, bool)> segs;
            if (_scanner is not null) segs = ScannerSegments(_scanner, piece.Text);
            else if (_bmp is not null) segs = RegexSegments((piece.Text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF') ? _full! : _bmp).Value!, piece.Text);
            else
            {
                segs = [];
                string text = piece.Text;
                int prev = 0;
                if (_literal!.Length > 0)
                    for (int at = text.IndexOf(_literal, StringComparison.Ordinal); at >= 0; at = text.IndexOf(_literal, prev, StringComparison.Ordinal))
                    {
                        if (at > prev) segs.Add((prev, at, false));
                        segs.Add((at, at + _literal.Length, true));
                        prev = at + _literal.Length;
                    }
                if (prev < text.Length) segs.Add((prev, text.Length, false));
            }
            ApplyBehavior(piece, segs, _behavior, _invert, output);
        }
    }

    /// <summary>HF <c>ByteLevel</c>: optional prefix space and GPT-2 regex split; the byte mapping itself is left to the model.</summary>
    public sealed class ByteLevel(bool addPrefixSpace, bool useRegex) : HfPreTokenizer
    {
        /// <summary>The regex HF's ByteLevel uses (GPT-2's, with <c>\s+(?!\S)|\s+</c> at the end).</summary>
        public const string Gpt2Regex = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
        private readonly SplitPattern? _split = useRegex ? new SplitPattern(null, Gpt2Regex, HfSplitBehavior.Isolated, false) : null;

        public override void Split(HfPiece piece, List<HfPiece> output)
        {
            if (addPrefixSpace && !piece.Text.StartsWith(' ')) piece = piece with { Text = " " + piece.Text };
            if (_split is null) output.Add(piece);
            else _split.Split(piece, output);
        }
    }

    /// <summary>Digits: isolate digits (each one, or contiguous runs).</summary>
    public sealed class Digits(bool individual) : HfPreTokenizer
    {
        public override void Split(HfPiece piece, List<HfPiece> output) =>
            ApplyBehavior(piece, CharSegments(piece.Text, IsNumeric), individual ? HfSplitBehavior.Isolated : HfSplitBehavior.Contiguous, false, output);

        private static bool IsNumeric(int cp) => OnigPattern.Category(cp) is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;
    }

    /// <summary>Metaspace: spaces become the replacement (▁), a prefix per scheme, optional split before each ▁.</summary>
    public sealed class Metaspace(char replacement, string prependScheme, bool split) : HfPreTokenizer
    {
        public override void Split(HfPiece piece, List<HfPiece> output)
        {
            if (piece.Text.Length == 0) return; // HF prepends nothing to an empty string
            string text = piece.Text.Replace(' ', replacement);
            bool prepend = prependScheme switch
            {
                "always" => !text.StartsWith(replacement),
                "first" => !text.StartsWith(replacement) && piece.AtStart,
                _ => false,
            };
            if (prepend) text = replacement + text;
            var p = piece with { Text = text };
            if (!split) { output.Add(p); return; }
            ApplyBehavior(p, CharSegments(text, cp => cp == replacement), HfSplitBehavior.MergedWithNext, false, output);
        }
    }

    /// <summary>Whitespace: <c>\w+|[^\w\s]+</c> runs, whitespace removed.</summary>
    public sealed class Whitespace : HfPreTokenizer
    {
        private readonly SplitPattern _split = new(null, @"\w+|[^\w\s]+", HfSplitBehavior.Removed, true);
        public override void Split(HfPiece piece, List<HfPiece> output) => _split.Split(piece, output);
    }

    /// <summary>WhitespaceSplit: split on whitespace, which is removed.</summary>
    public sealed class WhitespaceSplit : HfPreTokenizer
    {
        public override void Split(HfPiece piece, List<HfPiece> output) =>
            ApplyBehavior(piece, CharSegments(piece.Text, OnigPattern.IsSpace), HfSplitBehavior.Removed, false, output);
    }

    /// <summary>Punctuation (ASCII punctuation or Unicode P*) split with a behaviour.</summary>
    public sealed class Punctuation(HfSplitBehavior behavior) : HfPreTokenizer
    {
        public override void Split(HfPiece piece, List<HfPiece> output) =>
            ApplyBehavior(piece, CharSegments(piece.Text, IsPunctuation), behavior, false, output);

        public static bool IsPunctuation(int cp) => (cp < 0x80 && char.IsAsciiLetterOrDigit((char)cp) == false && cp > 0x20 && cp < 0x7F)
            || OnigPattern.Category(cp) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>BERT: split on whitespace (removed), then isolate punctuation.</summary>
    public sealed class Bert : HfPreTokenizer
    {
        private readonly WhitespaceSplit _ws = new();
        private readonly Punctuation _punct = new(HfSplitBehavior.Isolated);
        public override void Split(HfPiece piece, List<HfPiece> output)
        {
            var tmp = new List<HfPiece>();
            _ws.Split(piece, tmp);
            foreach (var p in tmp) _punct.Split(p, output);
        }
    }

    /// <summary>
    /// UnicodeScripts: cut where the script changes (SentencePiece's rule, as HF applies it).
    /// Hiragana, Katakana and U+30FC count as Han; a space, and a code point unassigned in the
    /// Unicode 9.0 table, count as "any": they never cause a cut and do not change the current
    /// script, so "Apples are りんご" cuts before り, not at the space. Common (digits,
    /// punctuation) and Inherited are scripts of their own. Pieces are cut, never dropped.
    /// </summary>
    public sealed class UnicodeScripts : HfPreTokenizer
    {
        private const int Any = -1;
        private static readonly int Han = UnicodeScripts9.Index("Han");
        private static readonly int Hiragana = UnicodeScripts9.Index("Hiragana");
        private static readonly int Katakana = UnicodeScripts9.Index("Katakana");

        /// <summary>The script a code point counts as here (-1: any).</summary>
        public static int ScriptOf(int cp)
        {
            if (cp == 0x30FC) return Han;
            if (cp == ' ') return Any;
            int s = UnicodeScripts9.Of(cp);
            return s == Hiragana || s == Katakana ? Han : s;
        }

        public override void Split(HfPiece piece, List<HfPiece> output)
        {
            // A piece starts at every code point whose script differs from the last non-"any"
            // script before it (so also at the first non-"any" code point). As in HF, text before
            // the first such point (leading spaces) belongs to no piece and is dropped, and so is a
            // piece made only of spaces.
            string text = piece.Text;
            int start = -1, last = int.MinValue; // MinValue: no script seen yet
            for (int i = 0; i < text.Length;)
            {
                int cp = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? char.ConvertToUtf32(text[i], text[i + 1]) : text[i];
                if (char.IsSurrogate(text[i]) && cp <= 0xFFFF) cp = 0xFFFD; // a lone surrogate reads as U+FFFD, as everywhere in the HF pipeline
                int script = ScriptOf(cp);
                if (script != Any && last != script)
                {
                    if (start >= 0) output.Add(new HfPiece(text[start..i], piece.AtStart && start == 0));
                    start = i;
                }
                if (script != Any) last = script;
                i += cp > 0xFFFF ? 2 : 1;
            }
            if (start >= 0) output.Add(new HfPiece(start == 0 ? text : text[start..], piece.AtStart && start == 0));
        }
    }

    /// <summary>Applies pre-tokenizers in order, each to every piece of the previous.</summary>
    public sealed class Sequence(IReadOnlyList<HfPreTokenizer> steps) : HfPreTokenizer
    {
        public IReadOnlyList<HfPreTokenizer> Steps { get; } = steps;
        public override void Split(HfPiece piece, List<HfPiece> output)
        {
            var current = new List<HfPiece> { piece };
            var next = new List<HfPiece>();
            foreach (var s in Steps)
            {
                next.Clear();
                foreach (var p in current) s.Split(p, next);
                (current, next) = (next, current);
            }
            output.AddRange(current);
        }
    }
}
