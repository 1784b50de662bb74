using Tessera.Text.Templates;

namespace Tessera.Fuzz.Tests;

/// <summary>
/// Findings of the chat-template target (a model file's <c>chat_template</c> is untrusted text),
/// each named, plus the render limits that keep a hostile template from hanging or exhausting the
/// server. The AFL++ inputs live in fuzz/regressions/chat-template and are replayed by
/// <see cref="CorpusReplayTests"/> too.
/// </summary>
public class ChatTemplateRegressionTests
{
    static string Render(string template) => new JinjaTemplate(template).Render(new Dictionary<string, object?>());

    static string Regression(string file)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string p = Path.Combine(d.FullName, "fuzz", "regressions", "chat-template", file);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException($"fuzz/regressions/chat-template/{file}");
    }

    // Found by AFL++ (fuzz/run.sh chat-template 120): an integer literal past 64 bits made
    // long.Parse throw OverflowException from the runtime. It is now a float, as in the
    // reference renderer (JavaScript numbers); tojson of such a float printed -9223372036854775808
    // (a cast to long) and now prints the integer, as JSON.stringify does.
    [Fact]
    public void AnIntegerLiteralPast64BitsIsAFloat()
    {
        Assert.Equal("true 100000000000000000000", Render("{{ 99999999999999999999 > 9223372036854775807 }} {{ 100000000000000000000 | tojson }}"));
        FuzzTarget.Get("chat-template").Run(File.ReadAllBytes(Regression("afl-int-literal-past-64-bits.jinja")));   // a clean refusal now (it does not parse)
    }

    // Found by AFL++: integer `%` by zero threw DivideByZeroException from the runtime. The
    // reference's numbers give NaN (and `//` by zero Infinity); long.MinValue % -1 no longer overflows.
    [Fact]
    public void IntegerModuloAndFloorDivisionByZeroGiveWhatTheReferenceGives()
    {
        Assert.Equal("NaN Infinity -Infinity 0", Render("{{ 3 % 0 }} {{ 3 // 0 }} {{ -3 // 0 }} {{ (-9223372036854775807 - 1) % -1 }}"));
        FuzzTarget.Get("chat-template").Run(File.ReadAllBytes(Regression("afl-modulo-by-zero.jinja")));
    }

    // Found by AFL++: range() with no argument indexed past its argument list
    // (ArgumentOutOfRangeException from the runtime). Now a JinjaException saying what range takes.
    [Fact]
    public void RangeWithoutArgumentsIsRefusedByName()
    {
        var e = Assert.Throws<JinjaException>(() => Render("{% for i in range() %}{{ i }}{% endfor %}"));
        Assert.Contains("range takes 1 to 3 arguments", e.Message);
        Assert.Contains("range step must not be zero", Assert.Throws<JinjaException>(() => Render("{{ range(10, 0, 0) | length }}")).Message);
        Assert.Equal("[0, 2, 4] [3, 2, 1]", Render("{{ range(0, 5, 2) | list | tojson }} {{ range(3, 0, -1) | list | tojson }}"));
        FuzzTarget.Get("chat-template").Run(File.ReadAllBytes(Regression("afl-range-without-arguments.jinja")));
    }

    // Found by AFL++: `{% break %}` outside a loop escaped the renderer as its internal break
    // signal (a bare exception the server would answer with 500). Now a parse error.
    [Fact]
    public void BreakOutsideALoopIsAParseError()
    {
        Assert.Contains("outside a for loop", Assert.Throws<JinjaException>(() => new JinjaTemplate("a{% break %}b")).Message);
        Assert.Contains("outside a for loop", Assert.Throws<JinjaException>(() => new JinjaTemplate("{% for x in [1] %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}")).Message);
        Assert.Equal("01", Render("{% for i in range(5) %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}"));
        // Through the model-template wrapper a parse error is a FormatException naming the template.
        Assert.Contains("outside a for loop", Assert.Throws<FormatException>(() => FuzzTarget.Get("chat-template").RunUnfiltered(File.ReadAllBytes(Regression("afl-break-outside-a-loop.jinja")))).Message);
    }

    // Limits, written with the target: each of these used to crash the process (stack overflow) or
    // run the server out of time or memory. Each is now one JinjaException naming the limit.
    [Theory]
    [InlineData("deep-parentheses", "nests deeper than")]
    [InlineData("deep-blocks", "nests deeper than")]
    [InlineData("recursive-macro", "calls nest deeper than")]
    [InlineData("huge-range", "list of")]
    [InlineData("doubling-string", "string of")]
    [InlineData("doubling-list", "list of")]
    [InlineData("long-loops", "steps")]
    [InlineData("huge-indent", "indent width")]
    public void AHostileTemplateIsRefusedNotRun(string kind, string expected)
    {
        string template = kind switch
        {
            "deep-parentheses" => "{{ " + new string('(', 20_000) + "1" + new string(')', 20_000) + " }}",
            "deep-blocks" => string.Concat(Enumerable.Repeat("{% if true %}", 5_000)) + "x" + string.Concat(Enumerable.Repeat("{% endif %}", 5_000)),
            "recursive-macro" => "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            "huge-range" => "{% for i in range(10000000000) %}{{ i }}{% endfor %}",
            "doubling-string" => "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
            "doubling-list" => "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}",
            "long-loops" => "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}{% endfor %}",
            "huge-indent" => "{{ 'a\nb' | indent(1000000000) }}",
            _ => throw new ArgumentException(kind),
        };
        var e = Assert.Throws<JinjaException>(() => Render(template));
        Assert.Contains(expected, e.Message);
        // The same through the fuzz target: a clean refusal.
        FuzzTarget.Get("chat-template").Run(System.Text.Encoding.UTF8.GetBytes(template));
    }

    // The limits leave real templates alone: nesting, loops and recursion at the depths real
    // templates use still render.
    [Fact]
    public void TemplatesWithinTheLimitsStillRender()
    {
        Assert.Equal("3", Render("{% macro f(n) %}{% if n < 3 %}{{ f(n + 1) }}{% else %}{{ n }}{% endif %}{% endmacro %}{{ f(0) }}"));
        Assert.Equal("1", Render("{{ " + new string('(', 30) + "1" + new string(')', 30) + " }}"));
        Assert.Equal("1000000", Render("{% set ns = namespace(n=0) %}{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% set ns.n = ns.n + 1000 %}{% endfor %}{{ ns.n }}"));
    }
}
