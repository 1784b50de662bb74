using System.Globalization;
using System.Text.RegularExpressions;

namespace Tessera.Thinking;

/// <summary>What <see cref="TraceChecker.Check"/> found in a completion.</summary>
/// <param name="Answer">The number after the last '#', or null when there is none.</param>
/// <param name="Verified">Every step parses and is exact, uses each stated number once and only earlier results besides, and the answer is the last result.</param>
/// <param name="FirstBad">Where a revision should restart: the offset of the first step that fails (the completion's length when only the ending is wrong; 0 when nothing parses).</param>
/// <param name="Steps">The steps that parsed.</param>
public sealed record TraceCheck(decimal? Answer, bool Verified, int FirstBad, int Steps);

/// <summary>
/// The dial's exact verifier. It does not know the answer: it re-does each written step with the
/// <see cref="Calculator"/> and checks the bookkeeping (every number the question states is used
/// exactly once, each intermediate result at most once, the final answer is the last result). A
/// verified trace can still be wrong (the right numbers combined in the wrong order), so best-of-n
/// with this verifier is not an oracle.
/// </summary>
public static partial class TraceChecker
{
    [GeneratedRegex(@"^(?:<<)?(-?\d+(?:\.\d+)?)([-+*/])(-?\d+(?:\.\d+)?)=(-?\d+(?:\.\d+)?|[^>;]*)(?:>>)?$")]
    private static partial Regex StepPattern();

    [GeneratedRegex(@"\d+(?:\.\d+)?")]
    private static partial Regex NumberPattern();

    /// <summary>The numbers stated in a question's text, in order (what the server's verifier uses).</summary>
    public static List<decimal> NumbersIn(string text)
    {
        var list = new List<decimal>();
        foreach (Match m in NumberPattern().Matches(text)) list.Add(decimal.Parse(m.Value, CultureInfo.InvariantCulture));
        return list;
    }

    /// <summary>The answer of a completion: the number after its last '#', or null.</summary>
    public static decimal? AnswerOf(string completion)
    {
        int hash = completion.LastIndexOf('#');
        if (hash < 0) return null;
        var rest = completion.AsSpan(hash + 1).TrimEnd('\n').Trim();
        return decimal.TryParse(rest, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v) ? v : null;
    }

    /// <summary>Checks a completion (the text after the prompt) against the numbers its question states.</summary>
    public static TraceCheck Check(IReadOnlyList<decimal> stated, string completion)
    {
        var answer = AnswerOf(completion);
        var unusedStated = new List<decimal>(stated);
        var results = new List<decimal>();
        int offset = 0, steps = 0;
        string body = completion.TrimEnd('\n');
        int hash = body.LastIndexOf('#');
        string stepsText = hash < 0 ? body : body[..hash];
        foreach (var part in stepsText.Split(';'))
        {
            if (part.Length == 0) { offset += 1; continue; }
            var m = StepPattern().Match(part);
            if (!m.Success || !Calculator.TryEvaluate(m.Groups[1].Value + m.Groups[2].Value + m.Groups[3].Value, out decimal exact, out _)
                || !decimal.TryParse(m.Groups[4].Value, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal written)
                || written != exact
                || !Take(decimal.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), results, unusedStated)
                || !Take(decimal.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture), results, unusedStated))
                return new TraceCheck(answer, false, offset, steps);
            results.Add(written);
            steps++;
            offset += part.Length + 1;
        }
        bool ok = steps > 0 && unusedStated.Count == 0 && results.Count == 1 && answer == results[0] && completion.EndsWith('\n');
        return new TraceCheck(answer, ok, ok ? completion.Length : Math.Min(offset, completion.Length), steps);
    }

    /// <summary>Uses an operand: the latest unused earlier result equal to it, else an unused stated number.</summary>
    static bool Take(decimal v, List<decimal> results, List<decimal> stated)
    {
        int r = results.LastIndexOf(v);
        if (r >= 0) { results.RemoveAt(r); return true; }
        int s = stated.IndexOf(v);
        if (s >= 0) { stated.RemoveAt(s); return true; }
        return false;
    }
}
