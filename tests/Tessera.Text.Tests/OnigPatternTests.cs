using System.Text.RegularExpressions;

namespace Tessera.Text.Tests;

/// <summary>The code-point-aware regex translation and its fast BMP-only twin.</summary>
public class OnigPatternTests
{
    private static readonly string[] Patterns =
    [
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        PreTokenizer.O200kPattern,
        @"[!""#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        @"\w+|[^\w\s]+",
    ];

    private static List<(int, int)> Matches(Regex r, string s) => r.Matches(s).Select(m => (m.Index, m.Length)).ToList();

    [Fact]
    public void BmpTwin_MatchesTheFullTranslation_OnTextWithoutSurrogates()
    {
        var texts = HfTokenizerConformanceTests.Corpus().Select(c => c.Text).Where(t => !t.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF')).ToList();
        Assert.True(texts.Count > 40);
        foreach (var p in Patterns)
        {
            var full = OnigPattern.Compile(p);
            var bmp = new Regex(OnigPattern.TranslateBmp(p));
            foreach (var t in texts) Assert.Equal(Matches(full, t), Matches(bmp, t));
        }
    }

    [Theory]
    [InlineData(PreTokenizer.O200kPattern)]
    [InlineData(PreTokenizer.Cl100kPattern)]
    public void HandWrittenScanner_MatchesTheTranslatedRegex(string pattern)
    {
        // HF Split uses the scanner for these patterns; the translation is its slow twin.
        var scanner = new PreTokenizer(pattern);
        Assert.True(scanner.IsHandWritten);
        var regex = OnigPattern.Compile(pattern, OnigPattern.Dialect.Rust);
        foreach (var (name, raw) in HfTokenizerConformanceTests.Corpus())
        {
            string t = HfTokenizer.ToWellFormed(raw);
            var got = new List<(int, int)>();
            foreach (var m in scanner.Split(t)) got.Add((m.Index, m.Length));
            Assert.True(Matches(regex, t).SequenceEqual(got), $"{name}: the scanner and the regex split differently");
        }
    }

    [Fact]
    public void SupplementaryLetters_AreOneCodePoint()
    {
        // 𝐀 (U+1D400, Lu) and 𠀀 (U+20000, Lo) are letters: one \p{L}+ run with the ASCII around them.
        var r = OnigPattern.Compile(@"\p{L}+|\p{N}+|[^\p{L}\p{N}]");
        Assert.Equal(["a𝐀b𠀀c", " ", "1", "🙂"], r.Matches("a𝐀b𠀀c 1🙂").Select(m => m.Value));
        // A negated class takes a whole supplementary symbol, not half of it.
        Assert.Equal(["🙂", "x"], OnigPattern.Compile(@"[^\s\p{L}]|\p{L}").Matches("🙂x").Select(m => m.Value));
    }
}

/// <summary>The piece cache of <see cref="BpeTokenizer"/> returns exactly what merging computes.</summary>
public class BpeCacheTests
{
    [Fact]
    public void CachedIds_EqualFreshlyMergedIds()
    {
        var text = string.Join("\n", HfTokenizerConformanceTests.Corpus().Select(c => HfTokenizer.ToWellFormed(c.Text)));
        var warm = TestTokenizers.Trained;
        var first = warm.Encode(text);
        var second = warm.Encode(text); // long pieces now come from the cache
        Assert.Equal(first, second);
        // A fresh instance (empty cache) merging piece by piece agrees too.
        var fresh = new BpeTokenizer("fresh", Enumerable.Range(0, warm.VocabSize).Select(id => warm.IsAssigned(id) && !warm.SpecialTokens.IsSpecial(id) ? warm.TokenBytes(id).ToArray() : null).ToList(),
            null, warm.Pattern, warm.SpecialTokens);
        var pieceByPiece = new List<int>();
        foreach (var m in new PreTokenizer(warm.Pattern).Split(text)) fresh.EncodePiece(System.Text.Encoding.UTF8.GetBytes(text.Substring(m.Index, m.Length)), pieceByPiece);
        Assert.Equal(first, pieceByPiece);
    }
}
