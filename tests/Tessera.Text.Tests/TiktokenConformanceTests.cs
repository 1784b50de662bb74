using System.Text.RegularExpressions;

namespace Tessera.Text.Tests;

/// <summary>Exact match on every case of gpt-tokenizer's TestPlans.txt for the encodings we support.</summary>
public class TiktokenConformanceTests
{
    private const string Plans = "tokenizer/tiktoken/TestPlans.txt";

    private sealed record Case(string Encoding, string Sample, int[] Expected, int Line);

    private static List<Case> ReadPlans()
    {
        var lines = File.ReadAllText(SharedData.PathOf(Plans)).Split('\n');
        var cases = new List<Case>();
        for (int i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith("EncodingName: ", StringComparison.Ordinal)) continue;
            string enc = lines[i]["EncodingName: ".Length..].Trim();
            Assert.StartsWith("Sample: ", lines[i + 1]);
            // A sample may span lines: everything up to the "Encoded:" line.
            int j = i + 1;
            var sample = lines[j]["Sample: ".Length..];
            while (!lines[j + 1].StartsWith("Encoded: [", StringComparison.Ordinal)) { j++; sample += "\n" + lines[j]; }
            var encoded = lines[j + 1]["Encoded: ".Length..].Trim().Trim('[', ']');
            var ids = encoded.Length == 0 ? [] : encoded.Split(',').Select(s => int.Parse(s.Trim())).ToArray();
            cases.Add(new Case(enc, sample, ids, i + 1));
        }
        return cases;
    }

    [SharedDataFact(Plans)]
    public void AllSupportedEncodings_MatchTestPlansExactly()
    {
        var cases = ReadPlans();
        Assert.Equal(313, cases.Count);
        var failures = new List<string>();
        int checkedCases = 0;
        foreach (var name in TiktokenEncodings.Names)
        {
            var tok = TiktokenEncodings.Load(name, SharedData.PathOf($"tokenizer/tiktoken/{name}.tiktoken"));
            foreach (var c in cases.Where(c => c.Encoding == name))
            {
                checkedCases++;
                var got = tok.Encode(c.Sample).ToArray();
                if (!got.SequenceEqual(c.Expected))
                    failures.Add($"line {c.Line} {name} '{Regex.Escape(c.Sample)}': expected [{string.Join(",", c.Expected)}] got [{string.Join(",", got)}]");
                else Assert.Equal(c.Sample, tok.Decode(got));
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {checkedCases} cases differ:\n" + string.Join("\n", failures.Take(20)));
        Assert.Equal(64 + 64 + 57, checkedCases);
    }
}
