using System.Text;
using System.Text.Json;

namespace Tessera.Text.Tests;

/// <summary>
/// The hand-written cl100k/o200k scanners against the regexes they replace, the safe cut
/// points used by parallel encoding, and supplementary-plane text against js-tiktoken.
/// </summary>
public class PreTokenizerScannerTests
{
    // Every class the patterns distinguish: ASCII and other letters by case (Lu, Ll, Lt, Lm, Lo),
    // marks, three kinds of numbers, the contraction letters and apostrophe, punctuation
    // including '/', every kind of whitespace (CR/LF, U+0085, Zs, Zl), lone surrogates.
    private const string Alphabet =
        "aZbsStTdDmMlLvVeErRkK\u017F\u212A''' !./,-?\t\n\r\n\r   \u00A0\u2028\u3000\u0085\v\f01٣Ⅻ½\u01C5ʰ中ｱ\u0301\u0903\u20DDéÉß\uD800\uDC00";

    private static List<PreToken> Tokens(PreTokenizer p, ReadOnlySpan<char> s)
    {
        var list = new List<PreToken>();
        foreach (var t in p.Split(s)) list.Add(t);
        return list;
    }

    private static string Show(string s) => string.Join(" ", s.Select(c => ((int)c).ToString("X4")));

    private static bool HasSurrogatePair(string s)
    {
        for (int i = 0; i + 1 < s.Length; i++) if (char.IsSurrogatePair(s[i], s[i + 1])) return true;
        return false;
    }

    private static string RandomText(Random rng, int maxLength, string alphabet)
    {
        var sb = new StringBuilder();
        int n = rng.Next(maxLength + 1);
        for (int k = 0; k < n; k++) sb.Append(alphabet[rng.Next(alphabet.Length)]);
        return sb.ToString();
    }

    [Theory]
    [InlineData(PreTokenizer.Cl100kPattern)]
    [InlineData(PreTokenizer.O200kPattern)]
    public void HandWrittenScanner_MatchesRegex_OnRandomBmpStrings(string pattern)
    {
        var fast = new PreTokenizer(pattern);
        var regex = new PreTokenizer(pattern, regexOnly: true);
        Assert.True(fast.IsHandWritten);
        Assert.False(regex.IsHandWritten);
        var rng = new Random(20240611);
        int compared = 0;
        for (int it = 0; it < 40_000; it++)
        {
            string s = RandomText(rng, it % 4 == 0 ? 40 : 10, Alphabet);
            // A valid pair is one character to the scanner and two to .NET's regex: compared elsewhere.
            if (HasSurrogatePair(s)) continue;
            compared++;
            var want = Tokens(regex, s);
            var got = Tokens(fast, s);
            Assert.True(want.SequenceEqual(got), $"'{Show(s)}': regex [{string.Join(",", want)}] scanner [{string.Join(",", got)}]");
        }
        Assert.True(compared > 30_000, $"only {compared} strings compared");
    }

    [Theory]
    [InlineData(PreTokenizer.Cl100kPattern)]
    [InlineData(PreTokenizer.O200kPattern)]
    public void HandWrittenScanner_MatchesRegex_OnCorpora(string pattern)
    {
        var fast = new PreTokenizer(pattern);
        var regex = new PreTokenizer(pattern, regexOnly: true);
        foreach (var text in new[] { TestTokenizers.English, TestTokenizers.Corpus })
        {
            var want = Tokens(regex, text);
            var got = Tokens(fast, text);
            Assert.True(want.Count > 1000);
            Assert.Equal(want, got);
        }
    }

    [Fact]
    public void SupplementaryLetters_AreLetters_InTheScanner()
    {
        var pre = new PreTokenizer(PreTokenizer.Cl100kPattern);
        // 𝐀𝐁 (U+1D400, U+1D401) are Lu: one letter run with the leading space, as in tiktoken.
        Assert.Equal([new PreToken(0, 1), new PreToken(1, 5)], Tokens(pre, "x 𝐀𝐁"));
        // An emoji is one punctuation character to the scanner, so it can prefix a letter run;
        // the regex sees two Cs code units, and the one-character prefix cannot cover both.
        var regex = new PreTokenizer(PreTokenizer.Cl100kPattern, regexOnly: true);
        Assert.Equal([new PreToken(0, 3)], Tokens(pre, "😀y"));
        Assert.Equal([new PreToken(0, 2), new PreToken(2, 1)], Tokens(regex, "😀y"));
    }

    public static TheoryData<string> SplittablePatterns() =>
        [PreTokenizer.Gpt2Pattern, PreTokenizer.Cl100kPattern, PreTokenizer.O200kPattern, PreTokenizer.Llama3Pattern];

    [Theory]
    [MemberData(nameof(SplittablePatterns))]
    public void EverySafeCut_SplitsPreTokensExactly_OnRandomLines(string pattern)
    {
        // The regex engine, so the claim is checked against the pattern itself, not the scanner.
        var pre = new PreTokenizer(pattern, regexOnly: true);
        Assert.True(pre.IsSplittable);
        // Dense in line feeds, spaces, letters, digits and punctuation so that safe cuts are common
        // and every kind of character sits on both sides of them.
        const string lineAlphabet = "\n\n\n\n   aAzZ09'!./\t\r\u00A0\u0301中";
        var rng = new Random(7);
        int cutsChecked = 0;
        for (int it = 0; it < 6_000; it++)
        {
            string s = RandomText(rng, 24, lineAlphabet);
            var whole = Tokens(pre, s);
            for (int p = 0; p <= s.Length; p++)
            {
                if (!pre.IsSafeCut(s, p)) continue;
                cutsChecked++;
                var left = Tokens(pre, s.AsSpan(0, p));
                var right = Tokens(pre, s.AsSpan(p)).Select(t => t with { Index = t.Index + p });
                Assert.True(whole.SequenceEqual(left.Concat(right)), $"cut at {p} of '{Show(s)}'");
            }
        }
        Assert.True(cutsChecked > 1_000, $"only {cutsChecked} cuts checked");
    }

    [Fact]
    public void CustomPattern_IsNotSplittable()
    {
        var pre = new PreTokenizer(@"\w+|\s+|.");
        Assert.False(pre.IsSplittable);
        Assert.False(pre.IsSafeCut("ab\ncd", 3));
        Assert.Equal([0, 5], pre.SafeCuts("ab\ncd", 4));
    }

    [Fact]
    public void SafeCuts_AreOrderedSafeAndBalanced()
    {
        var pre = new PreTokenizer(PreTokenizer.Cl100kPattern);
        string text = TestTokenizers.English;
        var cuts = pre.SafeCuts(text, 8);
        Assert.Equal(9, cuts.Count);
        Assert.Equal(0, cuts[0]);
        Assert.Equal(text.Length, cuts[^1]);
        for (int k = 1; k < cuts.Count - 1; k++)
        {
            Assert.True(cuts[k] > cuts[k - 1]);
            Assert.True(pre.IsSafeCut(text, cuts[k]));
            Assert.InRange(cuts[k] - cuts[k - 1], text.Length / 16, text.Length / 4);
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void EncodeParallel_EqualsEncode_OnTheWholeCorpus_Trained(int threads)
    {
        var tok = TestTokenizers.Trained;
        string text = TestTokenizers.English;
        Assert.Equal(tok.Encode(text), tok.EncodeParallel(text, threads));
        // Specials in the text, honoured and not: the cuts never split one.
        string withSpecials = string.Concat(Enumerable.Repeat(text[..50_000] + "<|end|>\nAnd <|user|>", 4));
        Assert.Equal(tok.Encode(withSpecials, allowSpecial: true), tok.EncodeParallel(withSpecials, threads, allowSpecial: true));
        Assert.Equal(tok.Encode(withSpecials), tok.EncodeParallel(withSpecials, threads));
    }

    [SharedDataFact("tokenizer/tiktoken/cl100k_base.tiktoken")]
    public void EncodeParallel_EqualsEncode_OnTheWholeCorpus_Cl100k()
    {
        var tok = TestTokenizers.Cl100k!;
        string text = TestTokenizers.English;
        var serial = tok.Encode(text);
        Assert.Equal(serial, tok.EncodeParallel(text, 2));
        Assert.Equal(serial, tok.EncodeParallel(text, 5));
        Assert.Equal(tok.Encode(TestTokenizers.Corpus), tok.EncodeParallel(TestTokenizers.Corpus, 2));
    }

    [SharedDataFact("tokenizer/tiktoken/o200k_base.tiktoken")]
    public void SupplementaryPlaneText_MatchesJsTiktoken()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Data", "supplementary-plane.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var cases = doc.RootElement.GetProperty("cases").EnumerateArray().ToList();
        Assert.Equal(20, cases.Count);
        var failures = new List<string>();
        foreach (var name in new[] { "cl100k_base", "o200k_base" })
        {
            var tok = TiktokenEncodings.Load(name, SharedData.PathOf($"tokenizer/tiktoken/{name}.tiktoken"));
            // The same vocabulary on the UTF-16 regex (a pattern string the scanner does not claim):
            // it must get some of these wrong, or the cases would not test the scanner.
            var tokens = Enumerable.Range(0, tok.VocabSize)
                .Select(id => tok.IsAssigned(id) && !tok.SpecialTokens.IsSpecial(id) ? tok.TokenBytes(id).ToArray() : null).ToList();
            var regexTok = new BpeTokenizer(name, tokens, null, "(?:" + tok.Pattern + ")", SpecialTokenSet.Empty);
            int regexWrong = 0;
            foreach (var c in cases.Where(c => c.GetProperty("encoding").GetString() == name))
            {
                string text = c.GetProperty("text").GetString()!;
                Assert.True(HasSurrogatePair(text));
                var want = c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                var got = tok.Encode(text).ToArray();
                if (!want.SequenceEqual(got)) failures.Add($"{name} '{text}': expected [{string.Join(",", want)}] got [{string.Join(",", got)}]");
                Assert.Equal(text, tok.Decode(got));
                if (!want.SequenceEqual(regexTok.Encode(text))) regexWrong++;
            }
            Assert.True(regexWrong >= 3, $"{name}: the regex engine got only {regexWrong} cases wrong");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
