using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tessera.Text.Tests;

/// <summary>Checks a fixture's cases (name, text, ids from a reference tokenizer) against ours, reporting every mismatch.</summary>
internal static class OracleCases
{
    /// <param name="cases">Objects with <c>name</c>, <c>text</c> and <c>ids</c>.</param>
    /// <param name="encode">Our encoding of a text.</param>
    /// <param name="oracle">The reference, for the message.</param>
    /// <param name="minCases">Fewer cases than this fails (a truncated fixture must not pass).</param>
    /// <param name="extra">Optional further check of a case; returns a failure message or null.</param>
    public static void AssertIds(JsonArray cases, Func<string, List<int>> encode, string oracle, int minCases, Func<JsonNode, List<int>, string?>? extra = null)
    {
        var failures = new List<string>();
        int n = 0;
        foreach (var c in cases)
        {
            n++;
            string text = c!["text"]!.GetValue<string>();
            var expected = c["ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToList();
            var got = encode(text);
            if (!got.SequenceEqual(expected))
                failures.Add($"{c["name"]}: {JsonSerializer.Serialize(text)}\n  expected [{string.Join(",", expected)}]\n  got      [{string.Join(",", got)}]");
            if (extra?.Invoke(c, expected) is { } more) failures.Add($"{c["name"]}: {more}");
        }
        Assert.True(n >= minCases, $"only {n} cases in the fixture (expected at least {minCases})");
        Assert.True(failures.Count == 0, $"{failures.Count} of {n} cases differ from {oracle}:\n" + string.Join("\n", failures.Take(6)));
    }
}
