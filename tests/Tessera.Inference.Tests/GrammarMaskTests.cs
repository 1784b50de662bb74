using System.Text;
using Tessera.Inference.Constraints;

namespace Tessera.Inference.Tests;

/// <summary>The trie walk against its slow twin (every token's bytes stepped one by one), the matcher on fixed texts, and refused schemas.</summary>
public sealed class GrammarMaskTests
{
    /// <summary>A BPE-like vocabulary: every byte, then random multi-byte pieces of JSON-ish text, then a special.</summary>
    static TokenVocabulary MultiByte(int seed, out List<byte[]?> tokens)
    {
        var rng = new Random(seed);
        tokens = [.. Enumerable.Range(0, 256).Select(i => (byte[]?)[(byte)i])];
        const string alphabet = "{}[]\":,0123456789.-abcdeéxyz nulltruefalse\\";
        var pieces = new HashSet<string>();
        while (pieces.Count < 600)
        {
            int len = rng.Next(2, 7);
            var sb = new StringBuilder();
            for (int i = 0; i < len; i++) sb.Append(alphabet[rng.Next(alphabet.Length)]);
            pieces.Add(sb.ToString());
        }
        foreach (var p in pieces) tokens.Add(Encoding.UTF8.GetBytes(p));
        tokens.Add(null);
        return new TokenVocabulary(tokens);
    }

    [Fact]
    public void TrieMaskEqualsSteppingEveryTokenAlone()
    {
        var vocab = MultiByte(1, out var tokens);
        var rng = new Random(4);
        int checkedStates = 0;
        for (int s = 0; s < 30; s++)
        {
            var constraint = new TokenConstraint(JsonSchemaGrammar.Compile(RandomSchemas.Make(rng).ToJsonString()), vocab);
            var m = constraint.Matcher;
            var state = constraint.Start;
            for (int step = 0; step < 40 && state.CanContinue; step++)
            {
                var mask = constraint.Mask(state);
                var fast = new Dictionary<int, int>();
                for (int i = 0; i < mask.Ids.Length; i++) fast[mask.Ids[i]] = mask.MinToFinish[i];
                var slow = new Dictionary<int, int>();
                for (int id = 0; id < tokens.Count; id++)
                {
                    if (tokens[id] is not { } b) continue;
                    var next = m.Step(state, b);
                    if (!next.Dead) slow[id] = next.MinToFinish;
                }
                Assert.Equal(slow.OrderBy(p => p.Key), fast.OrderBy(p => p.Key));
                checkedStates++;
                var ids = mask.Ids;
                state = m.Step(state, tokens[ids[rng.Next(ids.Length)]]!);
            }
        }
        Assert.True(checkedStates > 300);
    }

    [Theory]
    [InlineData("""{"type":"integer","minimum":-3,"exclusiveMaximum":12}""", "-3", true)]
    [InlineData("""{"type":"integer","minimum":-3,"exclusiveMaximum":12}""", "12", false)]
    [InlineData("""{"type":"integer","minimum":-3,"exclusiveMaximum":12}""", "-4", false)]
    [InlineData("""{"type":"integer","minimum":-3,"exclusiveMaximum":12}""", "011", false)]
    [InlineData("""{"type":"number","exclusiveMinimum":0.5,"maximum":0.7}""", "0.5", false)]
    [InlineData("""{"type":"number","exclusiveMinimum":0.5,"maximum":0.7}""", "0.500001", true)]
    [InlineData("""{"type":"number","exclusiveMinimum":0.5,"maximum":0.7}""", "0.7", true)]
    [InlineData("""{"type":"number","exclusiveMinimum":0.5,"maximum":0.7}""", "0.71", false)]
    [InlineData("""{"type":"string","maxLength":3}""", "\"abc\"", true)]
    [InlineData("""{"type":"string","maxLength":3}""", "\"abcd\"", false)]
    [InlineData("""{"type":"string"}""", "\"a\\n\u00e9\u4e2d\U0001F600\"", true)]
    [InlineData("""{"type":"string"}""", "\"a\nb\"", false)]
    [InlineData("""{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"}},"required":["b"]}""", """{"a":true,"b":null}""", true)]
    [InlineData("""{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"}},"required":["b"]}""", """{"b":null}""", true)]
    [InlineData("""{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"}},"required":["b"]}""", """{"a":true}""", false)]
    [InlineData("""{"type":"array","items":{"enum":["x",1]},"minItems":1,"maxItems":2}""", """["x",1]""", true)]
    [InlineData("""{"type":"array","items":{"enum":["x",1]},"minItems":1,"maxItems":2}""", """[]""", false)]
    [InlineData("""{"type":"array","items":{"enum":["x",1]},"minItems":1,"maxItems":2}""", """[1,1,1]""", false)]
    [InlineData("""{"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}""", """{"next":{"next":{}}}""", true)]
    public void MatcherAcceptsExactlyTheValidTexts(string schema, string text, bool valid)
    {
        var m = new GrammarMatcher(JsonSchemaGrammar.Compile(schema));
        Assert.Equal(valid, m.Matches(Encoding.UTF8.GetBytes(text)));
    }

    [Fact]
    public void AnyObjectAcceptsNestedJsonObjectsOnly()
    {
        var m = new GrammarMatcher(JsonSchemaGrammar.AnyObject());
        Assert.True(m.Matches("""{"a":[1,{"b":null},"x"],"c":{}}"""u8));
        Assert.False(m.Matches("""[1]"""u8));
        Assert.False(m.Matches("""{"a":}"""u8));
    }

    [Theory]
    [InlineData("""{"type":"string","pattern":"a+"}""", "pattern")]
    [InlineData("""{"oneOf":[{"type":"string"}]}""", "oneOf")]
    [InlineData("""false""", "nothing validates")]
    [InlineData("""{"$ref":"#"}""", "no finite instance")]
    [InlineData("""{"type":"object","properties":{"a":{"$ref":"#"}},"required":["a"]}""", "no finite instance")]
    [InlineData("""{"type":"array","minItems":3,"maxItems":2}""", "minItems")]
    [InlineData("""{"type":"integer","minimum":5,"maximum":4}""", "bounds")]
    [InlineData("""{"type":"strin"}""", "unknown type")]
    [InlineData("""{"$ref":"#/$defs/missing"}""", "points to nothing")]
    [InlineData("""{"type":"object","required":["x"],"additionalProperties":false}""", "required")]
    [InlineData("""{"type":"string""", "not valid JSON")]
    public void BadSchemasAreRefusedWithAReason(string schema, string reason)
    {
        var e = Assert.Throws<ConstraintException>(() => JsonSchemaGrammar.Compile(schema));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void TooLargeSchemasAreRefused()
    {
        string values = string.Join(",", Enumerable.Range(0, 2000).Select(i => i.ToString()));
        Assert.Contains("more than", Assert.Throws<ConstraintException>(() => JsonSchemaGrammar.Compile($$"""{"enum":[{{values}}]}""")).Message);
        var deep = new StringBuilder();
        for (int i = 0; i < 3000; i++) deep.Append("""{"type":"object","properties":{"a":""");
        deep.Append("""{"type":"null"}""");
        for (int i = 0; i < 3000; i++) deep.Append("}}");
        Assert.IsType<ConstraintException>(Record.Exception(() => JsonSchemaGrammar.Compile(deep.ToString())), exactMatch: true);
    }

    [Fact]
    public void BudgetTooSmallForTheShortestOutputIsRefused()
    {
        var c = new TokenConstraint(JsonSchemaGrammar.Compile("""{"type":"object","properties":{"abcdef":{"type":"string","minLength":20}},"required":["abcdef"]}"""), StructuredOutputTests.Bytes);
        Assert.Equal(2 + 9 + 22, c.MinTokens);
        Assert.Contains("budget", Assert.Throws<ConstraintException>(() => c.Processor(1, 20, new HashSet<int> { 256 })).Message);
    }
}
