using Tessera.Inference;
using Tessera.Model;
using Tessera.Retrieval.Evaluation;
using Tessera.Text;

namespace Tessera.Retrieval.Tests;

public class CorpusSwapTests
{
    static string Corpus()
    {
        var parts = new List<string>();
        string[] names = ["Korea", "Berlin", "Vietnam", "Alaska", "Hawaii", "Texas", "Panama", "Cuba"];
        for (int y = 0; y < 8; y++)
        {
            int year = 1948 + y;
            parts.Add($"=== {year}_some_president_{(y % 2 == 0 ? "d" : "r")}.txt ===");
            parts.Add($"Fellow citizens of the House and Senate. In {1930 + y * 7} the nation faced trials that we have answered with courage and resolve together. " +
                      $"We shall spend {120 + y * 13} million dollars on new roads and schools across the land this coming year. " +
                      $"Our friends in {names[y]} stand with us in the long struggle for freedom and peace in the world today.");
        }
        return string.Join("\n", parts);
    }

    [Fact]
    public void Speeches_split_at_the_cutoff_and_questions_blank_one_fact_with_four_choices()
    {
        var speeches = CorpusSwapTask.ParseSotu(Corpus());
        Assert.Equal(8, speeches.Count);
        Assert.Equal(1948, speeches[0].Year);
        Assert.Equal("1948_some_president_d", speeches[0].Id);
        Assert.DoesNotContain("===", speeches[0].Text);
        var later = speeches.Where(s => s.Year > 1950).ToList();
        var qs = CorpusSwapTask.Questions(later, 12, seed: 4);
        Assert.Equal(12, qs.Count);
        Assert.Equal(["name", "number", "year"], qs.Select(q => q.Kind).Distinct().Order().ToArray());
        foreach (var q in qs)
        {
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(q.Sentence, ClozeQuestion.Blank));
            Assert.Equal(4, q.Choices.Distinct().Count());
            Assert.Contains(q.Answer, q.Choices);
            var source = later.Single(s => s.Id == q.Speech);
            Assert.Contains(q.Filled(q.Answer), source.Text);                    // the completed sentence is the speech's own
            Assert.All(q.Choices.Where(c => c != q.Answer), c => Assert.DoesNotContain(q.Filled(c), source.Text));
        }
        // Matched distractors: each question's distractors are all like the answer, or (too few alike) drawn as before;
        // over the set, more distractors are alike than with the plain draw.
        static bool Alike(ClozeQuestion q, string c) => q.Kind switch
        {
            "year" => Math.Abs(int.Parse(c) - int.Parse(q.Answer)) <= 20,
            "number" => c.Length == q.Answer.Length,
            _ => c[0] == q.Answer[0],
        };
        static int AlikeCount(List<ClozeQuestion> set) => set.Sum(q => q.Choices.Count(c => c != q.Answer && Alike(q, c)));
        var matched = CorpusSwapTask.Questions(later, 12, seed: 4, matched: true);
        Assert.Equal(12, matched.Count);
        Assert.All(matched, q => { Assert.Equal(4, q.Choices.Distinct().Count()); Assert.Contains(q.Answer, q.Choices); });
        Assert.Contains(matched, q => q.Choices.Where(c => c != q.Answer).All(c => Alike(q, c)));
        Assert.True(AlikeCount(matched) > AlikeCount(qs), $"matched {AlikeCount(matched)} alike distractors, plain {AlikeCount(qs)}");
        Assert.Contains("headers", Assert.Throws<InvalidDataException>(() => CorpusSwapTask.ParseSotu("no headers here")).Message);
    }

    [Fact]
    public void The_answer_is_the_choice_with_the_highest_sentence_likelihood_after_the_passage()
    {
        var tok = TokenizerFiles.Load("bytes");
        using var model = new Transformer(DenseTests.TinyConfig(), seed: 5);
        using var engine = new BatchingEngine(model);
        var reference = new ReferenceEngine(model);
        var q = new ClozeQuestion("s", "year", "In ____ we built roads.", "1960", ["1970", "1960", "1980", "1990"]);
        foreach (string? passage in new[] { null, "In 1960 we built roads." })
        {
            double Score(string choice)
            {
                var ctx = passage is null ? new List<int>() : tok.Encode(passage + "\n\n");
                var s = tok.Encode(q.Filled(choice));
                if (ctx.Count == 0) { ctx.Add(s[0]); s.RemoveAt(0); }
                var ids = ctx.Concat(s).ToList();
                var ev = reference.Score(ids, 0);
                return Enumerable.Range(ctx.Count, s.Count).Sum(i => (double)ev[i].Logprob);
            }
            Assert.Equal(q.Choices.MaxBy(Score), CorpusSwapTask.Answer(engine, tok, null, q, passage));
        }
    }
}
