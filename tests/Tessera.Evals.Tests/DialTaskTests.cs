using System.Globalization;
using System.Text;
using Tessera.Evals.Thinking;
using Tessera.Thinking;

namespace Tessera.Evals.Tests;

/// <summary>The dial's pieces that need no model: the calculator, the task generator, the verifier and pass@k.</summary>
public class DialTaskTests
{
    [Fact]
    public void CalculatorMatchesDecimalArithmeticOnRandomExpressions()
    {
        var rng = new Random(17);
        int checkedCount = 0;
        for (int i = 0; i < 3000; i++)
        {
            var (text, value) = RandomExpression(rng, rng.Next(0, 5));
            if (value is null) continue;   // the reference itself divided by zero or overflowed
            Assert.Equal(value.Value, Calculator.Evaluate(text));
            checkedCount++;
        }
        Assert.True(checkedCount > 2000, $"only {checkedCount} expressions were checked");
    }

    /// <summary>A random expression tree printed fully parenthesised (with spaces and ×/÷/− at random), evaluated with C# decimal.</summary>
    static (string Text, decimal? Value) RandomExpression(Random rng, int depth)
    {
        if (depth == 0 || rng.Next(4) == 0)
        {
            decimal v = rng.Next(3) == 0 ? Math.Round((decimal)rng.NextDouble() * 1000, rng.Next(1, 4)) : rng.Next(0, 200);
            string s = v.ToString(CultureInfo.InvariantCulture);
            if (rng.Next(8) == 0) return ($"-{s}", -v);
            return (s, v);
        }
        var (a, av) = RandomExpression(rng, depth - 1);
        var (b, bv) = RandomExpression(rng, depth - 1);
        int op = rng.Next(4);
        string sym = op switch { 0 => rng.Next(2) == 0 ? "+" : "+", 1 => rng.Next(2) == 0 ? "-" : "−", 2 => rng.Next(2) == 0 ? "*" : "×", _ => rng.Next(2) == 0 ? "/" : "÷" };
        string sp = rng.Next(2) == 0 ? " " : "";
        string text = $"({a}{sp}{sym}{sp}{b})";
        if (av is null || bv is null) return (text, null);
        try
        {
            decimal? v = op switch { 0 => av + bv, 1 => av - bv, 2 => av * bv, _ => bv == 0 ? null : av / bv };
            return (text, v);
        }
        catch (OverflowException) { return (text, null); }
    }

    [Theory]
    [InlineData("", "empty expression")]
    [InlineData("1+", "ends where a number")]
    [InlineData("2*(3+4", "missing ')'")]
    [InlineData("2)", "unexpected ')'")]
    [InlineData("7/0", "division by zero")]
    [InlineData("7/(3-3)", "division by zero")]
    [InlineData("1.", "'.' without digits")]
    [InlineData("2^3", "unexpected '^'")]
    [InlineData("abc", "unexpected 'a'")]
    [InlineData("1e5", "unexpected 'e'")]
    [InlineData("9999999999999999999999999999*99999", "overflows")]
    [InlineData("12345678901234567890123456789012", "at most 28 digits")]
    public void BadExpressionsGiveClearErrors(string expression, string expected)
    {
        var e = Assert.Throws<CalculatorException>(() => Calculator.Evaluate(expression));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("calculator:", e.Message);
    }

    [Fact]
    public void CalculatorBoundsLengthAndDepth()
    {
        Assert.Contains("at most 256", Assert.Throws<CalculatorException>(() => Calculator.Evaluate(string.Join("+", Enumerable.Repeat("1", 129)))).Message);
        Assert.Equal(128m, Calculator.Evaluate(string.Join("+", Enumerable.Repeat("1", 128))));
        string deep = new string('(', 40) + "1" + new string(')', 40);
        Assert.Contains("nesting deeper than 32", Assert.Throws<CalculatorException>(() => Calculator.Evaluate(deep)).Message);
        Assert.Equal(1m, Calculator.Evaluate(new string('(', 20) + "1" + new string(')', 20)));
        Assert.Equal(-6m, Calculator.Evaluate("-(2*3)"));
        Assert.Equal(2.5m, Calculator.Evaluate("5÷2"));
        Assert.Equal("2.5", Calculator.Format(Calculator.Evaluate("5/2")));
        Assert.Equal("84", Calculator.Format(Calculator.Evaluate("12 × 7")));
    }

    [Fact]
    public void GeneratedProblemsAreCorrectDeterministicAndSplit()
    {
        var train = ArithmeticTask.Generate(150, test: false, seed: 1);
        var test = ArithmeticTask.Generate(50, test: true, seed: 2);
        Assert.Equal(4 * 150, train.Count);
        Assert.Equal(4 * 50, test.Count);
        // Deterministic from the seed.
        Assert.Equal(train.Select(p => p.Question + p.Trace(true)), ArithmeticTask.Generate(150, false, 1).Select(p => p.Question + p.Trace(true)));
        // Disjoint, even when the test side is drawn with the training seed.
        var trainQuestions = train.Select(p => p.Question).ToHashSet();
        Assert.DoesNotContain(ArithmeticTask.Generate(50, true, 1), p => trainQuestions.Contains(p.Question));
        Assert.DoesNotContain(test, p => trainQuestions.Contains(p.Question));
        foreach (var p in train.Concat(test))
        {
            Assert.InRange(p.Level, 1, ArithmeticTask.MaxLevel);
            // The answer, checked independently: arithmetic questions by the calculator on the question text,
            // word problems by replaying the sentences.
            decimal independent = p.Word ? ReplayWordProblem(p.Question) : Calculator.Evaluate(p.Question);
            Assert.Equal(independent, p.Answer);
            Assert.Equal(p.Level, p.Word ? p.Steps.Count : p.Question.Count(c => c is '+' or '-' or '*' or '/'));
            Assert.Equal(p.Answer, decimal.Truncate(p.Answer));
            // Both worked traces pass the verifier and give the answer.
            foreach (bool tool in new[] { false, true })
            {
                var check = TraceChecker.Check(p.Numbers, p.Trace(tool));
                Assert.True(check.Verified, $"{p.Question} → {p.Trace(tool)}");
                Assert.Equal(p.Answer, check.Answer);
            }
        }
        Assert.Contains(test, p => p.Word);
        Assert.Contains(test, p => !p.Word);
    }

    /// <summary>An independent reading of a word problem: the first number, then each sentence's operation.</summary>
    static decimal ReplayWordProblem(string q)
    {
        var sentences = q.Split(". ");
        decimal total = TraceChecker.NumbersIn(sentences[0])[0];
        foreach (var s in sentences.Skip(1))
        {
            var n = TraceChecker.NumbersIn(s);
            if (s.StartsWith("Buys") && s.Contains("boxes of")) total += n[0] * n[1];
            else if (s.StartsWith("Buys")) total += n[0];
            else if (s.StartsWith("Gives away")) total -= n[0];
            else if (s.StartsWith("Gets")) total *= n[0];
            else if (s.StartsWith("Splits")) total /= n[0];
            else Assert.StartsWith("How many", s);
        }
        return total;
    }

    [Fact]
    public void VerifierRejectsWrongStepsAndPointsAtThem()
    {
        decimal[] stated = [12, 7, 5, 9];
        Assert.True(TraceChecker.Check(stated, "7*5=35;12+35=47;47-9=38;#38\n").Verified);
        Assert.True(TraceChecker.Check(stated, "<<7*5=35>>;<<12+35=47>>;<<47-9=38>>;#38\n").Verified);
        var wrong = TraceChecker.Check(stated, "7*5=35;12+35=48;48-9=39;#39\n");
        Assert.False(wrong.Verified);
        Assert.Equal("7*5=35;".Length, wrong.FirstBad);
        Assert.Equal(39m, wrong.Answer);
        // A number the question does not state; a stated number left unused; an answer that is not the last result.
        Assert.False(TraceChecker.Check(stated, "7*6=42;12+42=54;54-9=45;#45\n").Verified);
        Assert.False(TraceChecker.Check(stated, "7*5=35;12+35=47;#47\n").Verified);
        Assert.False(TraceChecker.Check(stated, "7*5=35;12+35=47;47-9=38;#47\n").Verified);
        Assert.Null(TraceChecker.Check(stated, "7*5=35;12+").Answer);
        Assert.False(TraceChecker.Check(stated, "<<7*5=ERR>>;#3\n").Verified);
    }

    [Fact]
    public void PassAtKMatchesBruteForceEnumeration()
    {
        for (int n = 1; n <= 10; n++)
            for (int c = 0; c <= n; c++)
                for (int k = 1; k <= n; k++)
                {
                    // Every k-subset of n samples whose first c are correct: the share holding a correct one.
                    int subsets = 0, hit = 0;
                    for (int mask = 0; mask < 1 << n; mask++)
                    {
                        if (System.Numerics.BitOperations.PopCount((uint)mask) != k) continue;
                        subsets++;
                        if ((mask & ((1 << c) - 1)) != 0) hit++;
                    }
                    Assert.Equal((double)hit / subsets, PassAtK.Estimate(n, c, k), 12);
                }
        Assert.Equal(0.25, PassAtK.Estimate(64, 16, 1), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(4, 5, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(4, 1, 5));
    }

    [Fact]
    public void MajorityPicksTheModeAndVerifierPicksACorrectSample()
    {
        static Completion C(string text, double lp = -1) => new(text, 10, 0, lp * 10, 0, []);
        var samples = new[] { C("#5\n"), C("#7\n"), C("#7\n"), C("no answer"), C("#5\n"), C("#7\n") };
        int pick = Dial.Majority(samples, _ => true);
        Assert.Equal(1, pick);   // 7 occurs three times, first at index 1
        // The verifier keeps only the sample whose steps check, even though the majority is wrong.
        decimal[] stated = [3, 4];
        var mixed = new[] { C("3+4=8;#8\n"), C("3+4=8;#8\n"), C("3+4=7;#7\n"), C("3*4=12;#12\n", -0.1) };
        Assert.Equal(0, Dial.Select(ThinkStrategy.Vote, mixed, stated));
        int v = Dial.Select(ThinkStrategy.Verify, mixed, stated);
        Assert.True(v == 2 || v == 3);
        Assert.Equal(2, v);   // two verified samples (7 and 12), one each: the first seen wins
        Assert.Equal(3, Dial.Select(ThinkStrategy.Score, mixed, stated));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ThinkOptions(ThinkStrategy.Vote, 65).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ThinkOptions(ThinkStrategy.Vote, 0).Validate());
        Assert.Contains("expected one of", Assert.Throws<ArgumentException>(() => ThinkOptions.ParseStrategy("majority")).Message);
        Assert.Equal(ThinkStrategy.Verify, ThinkOptions.ParseStrategy("verify"));
    }
}
