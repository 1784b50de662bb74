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
        // The probe's passages: the completed sentence, or it inside its address (each test address has three sentences,
        // so three either side is the whole address, whitespace collapsed).
        var probe = qs[0];
        Assert.Equal(probe.Filled(probe.Answer), CorpusSwapTask.OraclePassage(probe, SwapOracle.Sentence, null));
        Assert.Equal(System.Text.RegularExpressions.Regex.Replace(later.Single(s => s.Id == probe.Speech).Text, @"\s+", " "),
            CorpusSwapTask.OraclePassage(probe, SwapOracle.Address, later));
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

    [Fact]
    public void The_two_layouts_give_the_documented_token_sequences()
    {
        var tok = TokenizerFiles.Load("bytes");   // one id per byte, so every expected sequence is readable text
        const int bos = 300;
        var q = new ClozeQuestion("s", "year", "Then in the fine year ____ we built.", "1960", ["1970", "1960", "1980", "1990"]);
        const string passage = "Long ago we had nothing. Then in the fine year 1960 we built. More came.";
        List<int> Ids(int? b, params string[] parts)
        {
            var ids = new List<int>();
            if (b is { } x) ids.Add(x);
            foreach (var part in parts) ids.AddRange(tok.Encode(part));
            return ids;
        }

        // In-Context RALM: BOS, the whole passage, a blank line, the sentence (no leading space); scored from the sentence on.
        var (ralm, ralmFirst) = CorpusSwapTask.Sequence(tok, bos, q, "1970", passage, SwapLayout.Ralm, contextLength: 512);
        Assert.Equal(Ids(bos, passage + "\n\n", "Then in the fine year 1970 we built."), ralm);
        Assert.Equal(1 + passage.Length + 2, ralmFirst);

        // RETRO training layout: BOS, a 41-token window of the passage centred on the sentence (found by the words before
        // the blank: it starts at token 24, the space before "Then"; the sentence is 37 tokens, so the window starts
        // (41 − 37) / 2 = 2 tokens earlier), then the sentence with a leading space and no separator.
        var (retro, retroFirst) = CorpusSwapTask.Sequence(tok, bos, q, "1970", passage, SwapLayout.Retro, contextLength: 512, neighbourTokens: 41);
        Assert.Equal(Ids(bos, "g. Then in the fine year 1960 we built. M", " Then in the fine year 1970 we built."), retro);
        Assert.Equal(1 + 41, retroFirst);

        // The own-text slot: after the window, the 5 passage tokens just before the located sentence ("hing.").
        var (own, ownFirst) = CorpusSwapTask.Sequence(tok, bos, q, "1970", passage, SwapLayout.Retro, 512, neighbourTokens: 41, ownTextTokens: 5);
        Assert.Equal(Ids(bos, "g. Then in the fine year 1960 we built. M", "hing.", " Then in the fine year 1970 we built."), own);
        Assert.Equal(1 + 41 + 5, ownFirst);

        // Located by the text after the blank (the longer side here): the sentence starts after the last sentence end
        // before it, token 12 (the space before "In"), so the 59-token window starts (59 − 41) / 2 = 9 earlier; the own-text slot is the 4 tokens before it, never the answer.
        var q2 = new ClozeQuestion("s", "year", "In ____ we built roads and many schools.", "1960", ["1970", "1960", "1980", "1990"]);
        Assert.Equal(Ids(bos, "bb cc dd. In 1960 we built roads and many schools. Zz yy xx", " dd.", " In 1970 we built roads and many schools."),
            CorpusSwapTask.Sequence(tok, bos, q2, "1970", "Aa bb cc dd. In 1960 we built roads and many schools. Zz yy xx ww.", SwapLayout.Retro, 512,
                neighbourTokens: 59, ownTextTokens: 4).Ids);

        // A passage no longer than the window is used whole; no passage is BOS and the sentence; without BOS the first
        // sentence token is context.
        Assert.Equal(Ids(bos, "In 1960.", " Then in the fine year 1980 we built."),
            CorpusSwapTask.Sequence(tok, bos, q, "1980", "In 1960.", SwapLayout.Retro, 512, neighbourTokens: 41).Ids);
        var (bare, bareFirst) = CorpusSwapTask.Sequence(tok, bos, q, "1980", null, SwapLayout.Retro, 512);
        Assert.Equal(Ids(bos, " Then in the fine year 1980 we built."), bare);
        Assert.Equal(1, bareFirst);
        Assert.Equal(Ids(bos, "Then in the fine year 1980 we built."), CorpusSwapTask.Sequence(tok, bos, q, "1980", null, SwapLayout.Ralm, 512).Ids);
        Assert.Equal(1, CorpusSwapTask.Sequence(tok, null, q, "1980", null, SwapLayout.Retro, 512).First);
        // A passage that does not hold the sentence: the window is its middle ((100 − 41) / 2 = 29 tokens in).
        string other = new string('a', 30) + new string('b', 41) + new string('c', 29);
        Assert.Equal(Ids(bos, "a" + new string('b', 40), " Then in the fine year 1980 we built."),
            CorpusSwapTask.Sequence(tok, bos, q, "1980", other, SwapLayout.Retro, 512, neighbourTokens: 41).Ids);
    }

    [Fact]
    public void In_the_retro_layout_the_answer_is_the_likeliest_sentence_after_the_window()
    {
        var tok = TokenizerFiles.Load("bytes");
        using var model = new Transformer(DenseTests.TinyConfig(), seed: 7);
        using var engine = new BatchingEngine(model);
        var reference = new ReferenceEngine(model);
        var q = new ClozeQuestion("s", "year", "Then in the fine year ____ we built.", "1960", ["1970", "1960", "1980", "1990"]);
        const string passage = "Long ago we had nothing. Then in the fine year 1960 we built. More came.";
        double Score(string choice)
        {
            // The documented layout written out: the 41-byte window, then " " + the sentence, all of it scored.
            var ctx = tok.Encode("g. Then in the fine year 1960 we built. M");
            var s = tok.Encode(" " + q.Filled(choice));
            var ev = reference.Score([.. ctx, .. s], 0);
            return Enumerable.Range(ctx.Count, s.Count).Sum(i => (double)ev[i].Logprob);
        }
        Assert.Equal(q.Choices.MaxBy(Score), CorpusSwapTask.Answer(engine, tok, null, q, passage, SwapLayout.Retro, neighbourTokens: 41));
        // Each choice's summed log-probability (eval swap's nats per token is minus it over the count) matches the reference
        // engine to float rounding over 37 terms; every choice scores the 37 bytes of " " + its sentence.
        var scores = CorpusSwapTask.ChoiceScores(engine, tok, null, q, passage, SwapLayout.Retro, neighbourTokens: 41);
        for (int c = 0; c < q.Choices.Count; c++)
        {
            Assert.Equal(37, scores[c].Tokens);
            Assert.Equal(Score(q.Choices[c]), scores[c].Sum, 1e-3);
        }
    }
}
