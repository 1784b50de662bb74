using System.Text;
using System.Text.RegularExpressions;
using Tessera.Inference.Constraints;
using Tessera.Model;

namespace Tessera.Inference.Tests;

/// <summary>
/// The regex constraint against .NET's own regex engine (ECMAScript mode: ASCII \d \w \s, the
/// dialect <see cref="RegexGrammar"/> documents): random patterns agree on random and on
/// pattern-walked texts, constrained decoding on a random-weight byte model always ends in a
/// match, and every unsupported construct is refused with its position.
/// </summary>
public sealed class RegexConstraintTests
{
    static Regex Reference(string pattern) => new("^(?:" + pattern + ")\\z", RegexOptions.ECMAScript | RegexOptions.CultureInvariant);

    static bool Matches(Grammar g, string text) => new GrammarMatcher(g).Matches(Encoding.UTF8.GetBytes(text));

    [Theory]
    [InlineData(@"\d{4}-\d{2}-\d{2}", "2026-12-06", "2026-1-06")]
    [InlineData(@"[a-z]+@[a-z]+\.(com|org)", "ann@example.org", "ann@example.net")]
    [InlineData(@"-?\d+(\.\d{1,3})?", "-12.125", "12.1234")]
    [InlineData(@"(yes|no|maybe so)", "maybe so", "maybe")]
    [InlineData(@"[A-Z][a-z]{2,8}( [A-Z][a-z]{2,8})?", "Ada Lovelace", "Ada lovelace")]
    [InlineData(@".{3,5}", "a\u00e9\u4e2d", "ab")]
    [InlineData(@"[^,\n]+,[^,\n]+", "x y,z", "x,y,z")]
    [InlineData(@"^(?:\w+\s)*\w+$", "one two three", "one  two")]
    [InlineData(@"caf\u00e9|na\x69ve|[\u00e9\u00e8]+", "\u00e8\u00e9", "cafe")]
    [InlineData(@"\(\d+\)\*\{x\}", "(12)*{x}", "(12)*x")]
    [InlineData(@"[]a-c]+b*?", "]ab", "d")]
    [InlineData(@"\S\W\D", "a-x", "a1x")]
    [InlineData(@"(?:😀)+.", "😀😀x", "x")]
    public void FixedPatternsAgreeWithDotNet(string pattern, string yes, string no)
    {
        var g = RegexGrammar.Compile(pattern);
        var r = Reference(pattern);
        Assert.True(r.IsMatch(yes) && !r.IsMatch(no), "the test's own examples must be right for .NET");
        Assert.True(Matches(g, yes), yes);
        Assert.False(Matches(g, no), no);
    }

    [Fact]
    public void RandomPatternsAgreeWithDotNetOnRandomAndWalkedTexts()
    {
        var rng = new Random(7);
        const string alphabet = "ab1\u00e9- \n_c.";
        int patterns = 0, positives = 0, texts = 0;
        for (int n = 0; n < 400; n++)
        {
            string pattern = RandomPattern(rng, 0, out _);
            var g = RegexGrammar.Compile(pattern);
            var r = Reference(pattern);
            var m = new GrammarMatcher(g);
            var samples = new List<string>();
            for (int k = 0; k < 15; k++)
            {
                var sb = new StringBuilder();
                int len = rng.Next(0, 7);
                for (int j = 0; j < len; j++) sb.Append(alphabet[rng.Next(alphabet.Length)]);
                samples.Add(sb.ToString());
            }
            for (int k = 0; k < 15; k++) if (Walk(m, rng) is { } w) samples.Add(w);
            foreach (var text in samples)
            {
                // .NET's '.' and classes step over UTF-16 units; ours over code points (documented): they agree below U+10000.
                if (text.Any(char.IsSurrogate)) continue;
                bool expected = r.IsMatch(text);
                Assert.True(expected == Matches(g, text), $"pattern /{pattern}/ on \"{Regex.Escape(text)}\": .NET {expected}");
                if (expected) positives++;
                texts++;
            }
            patterns++;
        }
        Assert.Equal(400, patterns);
        Assert.True(positives > texts / 5, $"{positives} of {texts} texts matched: the walk should reach many matches");
    }

    /// <summary>A random text the matcher allows, byte by byte, ending when accepted and a coin says so; null when it runs long.</summary>
    static string? Walk(GrammarMatcher m, Random rng)
    {
        var state = m.Start();
        var bytes = new List<byte>();
        for (int step = 0; step < 40; step++)
        {
            if (state.Accepted && (!state.CanContinue || rng.Next(3) == 0)) return Encoding.UTF8.GetString([.. bytes]);
            // The first live byte in a random odd-stride order over all 256 (every byte is visited, so none found means none exists).
            int start = rng.Next(256), stride = 2 * rng.Next(128) + 1;
            MatchState? ps = null;
            byte pick = 0;
            for (int k = 0; k < 256 && ps is null; k++)
            {
                pick = (byte)((start + k * stride) & 255);
                var t = m.Step(state, pick);
                if (!t.Dead) ps = t;
            }
            Assert.NotNull(ps);   // a live state that cannot end must have a next byte
            bytes.Add(pick);
            state = ps!;
        }
        return null;
    }

    /// <summary>A random pattern over a, b, c, 1, é and friends; unbounded repeats only of parts that cannot match nothing.</summary>
    static string RandomPattern(Random rng, int depth, out bool nullable)
    {
        int parts = rng.Next(1, 4);
        var sb = new StringBuilder();
        nullable = true;
        for (int p = 0; p < parts; p++)
        {
            string atom;
            bool atomNullable = false;
            int kind = depth >= 2 ? rng.Next(8) : rng.Next(10);
            switch (kind)
            {
                case 0: atom = "a"; break;
                case 1: atom = "\u00e9"; break;
                case 2: atom = new[] { "[ab]", "[^a]", "[a-c1]", "[^\\n ]", "[\u00e9b]" }[rng.Next(5)]; break;
                case 3: atom = new[] { "\\d", "\\w", "\\s", "\\W", "\\D" }[rng.Next(5)]; break;
                case 4: atom = "."; break;
                case 5: atom = "\\."; break;
                case 6: atom = "b"; break;
                case 7: atom = "c"; break;
                case 8: atom = "(" + RandomPattern(rng, depth + 1, out atomNullable) + ")"; break;
                default:
                {
                    string x = RandomPattern(rng, depth + 1, out bool xn), y = RandomPattern(rng, depth + 1, out bool yn);
                    atom = (rng.Next(2) == 0 ? "(?:" : "(") + x + "|" + y + ")";
                    atomNullable = xn || yn;
                    break;
                }
            }
            int q = rng.Next(8);
            string quantifier = q switch
            {
                0 when !atomNullable => "*",
                1 when !atomNullable => "+",
                2 => "?",
                3 => "{" + rng.Next(0, 3) + "}",
                4 => "{1,3}",
                5 when !atomNullable => "{2,}",
                _ => "",
            };
            if (quantifier.Length > 0 && rng.Next(4) == 0) quantifier += "?";   // lazy
            bool partNullable = atomNullable || quantifier.StartsWith('?') || quantifier.StartsWith('*') || quantifier.StartsWith("{0");
            nullable &= partNullable;
            sb.Append(atom).Append(quantifier);
        }
        return sb.ToString();
    }

    [Fact]
    public void ConstrainedDecodingOnARandomModelAlwaysMatches()
    {
        string[] patterns =
        [
            @"\d{4}-\d{2}-\d{2}", @"[a-z]+@[a-z]+\.(com|org)", @"-?\d+(\.\d{1,3})?", @"(yes|no|maybe so)",
            @"[A-Z][a-z]{2,8}( [A-Z][a-z]{2,8})?", @".{3,10}", @"[^,\n]+,[^,\n]+", @"(\w+ ){2,4}\w+", @"\{""a"":\d\}", @"x*y",
        ];
        using var model = new Transformer(StructuredOutputTests.ByteModel, seed: 11);
        using var decoder = new SequenceDecoder(InferenceWeights.FromTransformer(model));
        int ended = 0, total = 0;
        foreach (var pattern in patterns)
        {
            var constraint = new TokenConstraint(RegexGrammar.Compile(pattern), StructuredOutputTests.Bytes);
            var r = Reference(pattern);
            for (int seed = 0; seed < 5; seed++)
            {
                string output = StructuredOutputTests.Generate(decoder, constraint, (ulong)(seed + 1), out bool end, budget: 48);
                Assert.True(r.IsMatch(output), $"/{pattern}/ gave \"{Regex.Escape(output)}\"");
                if (end) ended++;
                total++;
            }
        }
        Assert.True(ended > total / 2, $"{ended} of {total} outputs ended by choice");
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData(@"(a", "unclosed '('")]
    [InlineData(@"a)", "unmatched ')'")]
    [InlineData(@"[ab", "unclosed '['")]
    [InlineData(@"*a", "nothing to repeat")]
    [InlineData(@"a**", "nested quantifier")]
    [InlineData(@"(a)\1", "not supported")]
    [InlineData(@"\bword", "not supported")]
    [InlineData(@"(?=a)b", "only (…) and (?:…)")]
    [InlineData(@"(?i)a", "only (…) and (?:…)")]
    [InlineData(@"\p{L}", "not supported")]
    [InlineData(@"a{2,1}", "maximum below its minimum")]
    [InlineData(@"a{1001}", "above 1000")]
    [InlineData(@"a{x}", "must start a count")]
    [InlineData(@"(a*)*", "cannot repeat without bound")]
    [InlineData(@"[z-a]", "end comes before its start")]
    [InlineData(@"[à-é]", "beyond ASCII")]
    [InlineData(@"[^é]", "ASCII characters only")]
    [InlineData(@"[a-z-[aeiou]]", "subtraction")]
    [InlineData(@"a$b", "only at the end")]
    [InlineData(@"a^b", "only at the start")]
    [InlineData(@"\x4", "hex digits")]
    [InlineData(@"\", "cannot end")]
    public void UnsupportedOrMalformedPatternsAreRefusedByName(string pattern, string why)
    {
        var e = Assert.Throws<ConstraintException>(() => RegexGrammar.Compile(pattern));
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void SizeLimitsAreStatedAndEnforced()
    {
        Assert.Contains("too long", Assert.Throws<ConstraintException>(() => RegexGrammar.Compile(new string('a', RegexGrammar.MaxPatternLength + 1))).Message);
        Assert.Contains("deeper", Assert.Throws<ConstraintException>(() => RegexGrammar.Compile(new string('(', 70) + "a" + new string(')', 70))).Message);
        // Within the limits, a large count compiles and still means what it says.
        var g = RegexGrammar.Compile("a{998,1000}");
        Assert.True(Matches(g, new string('a', 999)));
        Assert.False(Matches(g, new string('a', 997)));
        Assert.False(Matches(g, new string('a', 1001)));
    }
}
