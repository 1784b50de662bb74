using System.Runtime.CompilerServices;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Retrieval.Evaluation;
using Tessera.Retrieval.Sparse;
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
        var (tok, bos, q, passage) = (LayoutFixture.Tokenizer, LayoutFixture.Bos, LayoutFixture.Question, LayoutFixture.Passage);
        List<int> Ids(int? b, params string[] parts) => LayoutFixture.Ids(b, parts);

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

    [Fact]
    public void Exact_match_normalises_case_whitespace_and_surrounding_punctuation_only()
    {
        Assert.Equal("korea", CorpusSwapTask.NormaliseAnswer("  Korea, "));
        Assert.Equal("new york", CorpusSwapTask.NormaliseAnswer(" New \t York. "));
        Assert.Equal("1,000", CorpusSwapTask.NormaliseAnswer("1,000."));            // inner commas are part of a number
        Assert.True(CorpusSwapTask.ExactMatch("1960,", "1960"));
        Assert.True(CorpusSwapTask.ExactMatch("\"Berlin.\"", "Berlin"));
        Assert.True(CorpusSwapTask.ExactMatch("(Alaska)", "alaska"));
        Assert.False(CorpusSwapTask.ExactMatch("1960s", "1960"));                     // a different word, not a punctuated one
        Assert.False(CorpusSwapTask.ExactMatch("1000", "1,000"));
        Assert.False(CorpusSwapTask.ExactMatch("Korean", "Korea"));
        Assert.False(CorpusSwapTask.ExactMatch("", ""));                              // an empty generation never matches
        Assert.False(CorpusSwapTask.ExactMatch("...", "."));
        // The generated filler is the first whitespace-delimited word of the continuation, as written.
        Assert.Equal("1960,", CorpusSwapTask.FirstWord("  1960, we built roads"));
        Assert.Equal("Korea", CorpusSwapTask.FirstWord("\nKorea"));
        Assert.Equal("", CorpusSwapTask.FirstWord(" \n "));
        // The gold side is the answer with whatever is glued to its right in the sentence.
        ClozeQuestion Q(string sentence, string answer) => new("s", "number", sentence, answer, [answer, "0"]);
        Assert.Equal("89th", Q("the ____th Congress met", "89").AnswerAsWritten);
        Assert.Equal("1980's.", Q("look ahead to the ____'s.", "1980").AnswerAsWritten);
        Assert.Equal("1960,", Q("since ____, the gap", "1960").AnswerAsWritten);
        Assert.Equal("17", Q("the B-____ was a huge plane", "17").AnswerAsWritten);
        Assert.True(CorpusSwapTask.ExactMatch("89th", Q("the ____th Congress met", "89").AnswerAsWritten));
        Assert.False(CorpusSwapTask.ExactMatch("89", Q("the ____th Congress met", "89").AnswerAsWritten));
        Assert.True(CorpusSwapTask.ExactMatch("1960", Q("since ____, the gap", "1960").AnswerAsWritten));
    }

    [Fact]
    public void Questions_take_k_choices_and_a_left_context_minimum_and_refuse_fewer_than_two_choices()
    {
        var later = CorpusSwapTask.ParseSotu(Corpus()).Where(s => s.Year > 1950).ToList();   // 5 addresses: 5 answers of each kind
        var five = CorpusSwapTask.Questions(later, 9, seed: 2, choices: 5);
        Assert.Equal(9, five.Count);
        Assert.All(five, q => { Assert.Equal(5, q.Choices.Distinct().Count()); Assert.Contains(q.Answer, q.Choices); });
        Assert.Empty(CorpusSwapTask.Questions(later, 9, seed: 2, choices: 6));           // no kind has 6 distinct answers
        // The year blank opens its sentence after one word ("In ____ the nation ..."); numbers and names have 3 words before them.
        var left3 = CorpusSwapTask.Questions(later, 9, seed: 2, minLeftWords: 3);
        Assert.Equal(9, left3.Count);
        Assert.DoesNotContain(left3, q => q.Kind == "year");
        Assert.All(left3, q => Assert.True(q.LeftWords >= 3, q.Sentence));
        Assert.Contains(CorpusSwapTask.Questions(later, 9, seed: 2), q => q.Kind == "year" && q.LeftWords == 1 && q.LeftContext == "In");
        Assert.Contains("2 choices", Assert.Throws<ArgumentOutOfRangeException>(() => CorpusSwapTask.Questions(later, 9, choices: 1)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => CorpusSwapTask.Questions(later, 9, minLeftWords: -1));
    }

    [Fact]
    public void The_generation_prompt_is_the_layout_cut_at_the_blank()
    {
        var (tok, bos, q, passage) = (LayoutFixture.Tokenizer, LayoutFixture.Bos, LayoutFixture.Question, LayoutFixture.Passage);
        List<int> Ids(int? b, params string[] parts) => LayoutFixture.Ids(b, parts);
        // RALM: the passage, a blank line, the left context without its trailing space.
        Assert.Equal(Ids(bos, passage + "\n\n", "Then in the fine year"), CorpusSwapTask.Prompt(tok, bos, q, passage, SwapLayout.Ralm, 512));
        Assert.Equal(Ids(bos, "Then in the fine year"), CorpusSwapTask.Prompt(tok, bos, q, null, SwapLayout.Ralm, 512));
        // Retro: the same window as Sequence (the blanked sentence is as long as the filled one here, 37 bytes), the own-text slot, " " + left context.
        Assert.Equal(Ids(bos, "g. Then in the fine year 1960 we built. M", "hing.", " Then in the fine year"),
            CorpusSwapTask.Prompt(tok, bos, q, passage, SwapLayout.Retro, 512, neighbourTokens: 41, ownTextTokens: 5));
        Assert.Equal(Ids(null, " Then in the fine year"), CorpusSwapTask.Prompt(tok, null, q, null, SwapLayout.Retro, 512));
        // A long left context is cut from its start so that it and the filler budget fit half the context (64 − 16 = 48 tokens).
        var longQ = new ClozeQuestion("s", "year", new string('a', 100) + " in ____ we built.", "1960", ["1960", "1970"]);
        Assert.Equal(Ids(null, new string('a', 45) + " in"), CorpusSwapTask.Prompt(tok, null, longQ, null, SwapLayout.Ralm, 128));
        // Nothing to condition on: a clear error, not an empty prompt.
        var opening = new ClozeQuestion("s", "year", "____ was a good year for us all.", "1960", ["1960", "1970"]);
        Assert.Contains("left-context minimum", Assert.Throws<ArgumentException>(() => CorpusSwapTask.Prompt(tok, null, opening, null, SwapLayout.Ralm, 512)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => CorpusSwapTask.Prompt(tok, bos, q, null, SwapLayout.Ralm, 512, fillerTokens: 0));
    }

    [Fact]
    public void A_generated_filler_is_the_first_word_of_the_greedy_continuation()
    {
        var tok = TokenizerFiles.Load("bytes");
        using var model = new Transformer(DenseTests.TinyConfig(), seed: 11);
        using var engine = new BatchingEngine(model);
        var reference = new ReferenceEngine(model);
        var q = new ClozeQuestion("s", "year", "Then in the fine year ____ we built.", "1960", ["1970", "1960", "1980", "1990"]);
        foreach (var (layout, passage) in new[] { (SwapLayout.Ralm, (string?)null), (SwapLayout.Ralm, "In 1960 we built roads."), (SwapLayout.Retro, "Then in the fine year 1960 we built.") })
        {
            var prompt = CorpusSwapTask.Prompt(tok, null, q, passage, layout, 128, fillerTokens: 12);
            // Greedy decoding written out on the reference engine: the argmax after the prompt is the top
            // alternative of a dummy token appended to it; stop once a word is followed by whitespace.
            var ids = prompt.ToList();
            var output = new List<int>();
            for (int step = 0; step < 12; step++)
            {
                var events = reference.Score([.. ids, 0], 1);
                int next = events[^1].Top[0].Id;
                ids.Add(next);
                output.Add(next);
                string text = tok.Decode(output.ToArray()).TrimStart();
                if (text.Length > 0 && text.IndexOfAny([' ', '\t', '\r', '\n']) > 0) break;
            }
            string expected = CorpusSwapTask.FirstWord(tok.Decode(output.ToArray()));
            Assert.Equal(expected, CorpusSwapTask.GenerateFiller(engine, tok, prompt, 12));
        }
    }

    /// <summary>
    /// A byte "model" that copies: it continues its context after the earlier occurrence of the
    /// context's longest repeated suffix (at least 6 bytes), as an induction head would; with no such
    /// repeat (no passage holding the sentence) it writes " zzz qq".
    /// </summary>
    sealed class CopyEngine : IGenerationEngine
    {
        public ModelConfig Config { get; } = new() { VocabSize = 300, Dim = 8, Layers = 1, Heads = 1, KvHeads = 1, HiddenDim = 8, ContextLength = 1024 };

        public async IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancel = default)
        {
            string ctx = new ByteTokenizer().Decode([.. request.Prompt.Where(id => id < 256)]);
            string next = " zzz qq";
            for (int k = Math.Min(60, ctx.Length / 2); k >= 6; k--)
            {
                int at = ctx.LastIndexOf(ctx[^k..], ctx.Length - k - 1, StringComparison.Ordinal);
                if (at >= 0) { next = ctx[(at + k)..]; break; }
            }
            for (int i = 0; i < next.Length && i < request.MaxNewTokens; i++)
            {
                await Task.Yield();
                yield return new TokenEvent(next[i], -1f, []);
            }
        }

        public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs)
            => [.. prompt.Select((id, i) => new TokenEvent(id, i == 0 ? float.NaN : -1f, []))];
        public float[] Embed(IReadOnlyList<int> ids) => throw new NotSupportedException();
    }

    [Fact]
    public void With_generated_answers_a_copying_model_is_right_exactly_when_its_passage_holds_the_sentence()
    {
        var tok = new ByteTokenizer();
        var later = CorpusSwapTask.ParseSotu(Corpus()).Where(s => s.Year > 1950).ToList();
        using var tmp = new TempFolder();
        Bm25IndexBuilder.Build(tmp["idx"], CorpusSwapTask.Documents(later), new IndexBuildOptions { Shards = 1, PassageWords = 100 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var qs = CorpusSwapTask.Questions(later, 10, seed: 3, minLeftWords: 3);
        var engine = new CopyEngine();
        foreach (var layout in new[] { SwapLayout.Ralm, SwapLayout.Retro })
        {
            // The completed sentence as the passage: every answer copied, none without it.
            var oracle = CorpusSwapTask.EvaluateGenerated(engine, tok, null, index, qs, null, layout, oracle: SwapOracle.Sentence);
            Assert.Equal(0.0, oracle.Kinds[^1].AccuracyWithout);
            Assert.Equal(1.0, oracle.Kinds[^1].AccuracyWith);
            Assert.Equal(qs.Select(q => q.Answer), oracle.Rows.Select(r => r.GeneratedWith));
            Assert.All(oracle.Rows, r => Assert.Equal("zzz", r.GeneratedWithout));
            // The top BM25 hit: the test addresses repeat their sentences with other facts, so the copy is right
            // exactly when the hit holds the question's own completed sentence.
            var bm25 = CorpusSwapTask.EvaluateGenerated(engine, tok, null, index, qs, null, layout);
            Assert.Equal(qs.Count, bm25.Rows.Count);
            Assert.All(bm25.Rows, r => Assert.Equal(r.PassageHoldsSentence, r.WithIndex));
            Assert.Contains(bm25.Rows, r => r.WithIndex);
            var all = bm25.Kinds[^1];
            Assert.Equal("all", all.Kind);
            Assert.Equal(bm25.Rows.Count(r => r.WithIndex) / (double)qs.Count, all.AccuracyWith, 12);
            Assert.Equal(1.0, all.CitedPassageHoldsAnswerWhenRight);
        }
    }

    /// <summary>Six later addresses by six presidents, three sentences of their own each, and one sentence two of them share.</summary>
    static List<Speech> AttributionSpeeches()
    {
        string[] ids = ["1951_ann_a_alpha_d", "1952_bob_beta_r", "1953_cy_c_gamma_d", "1954_dee_delta_r", "1955_ed_e_epsilon_d", "1956_fay_zeta_r"];
        string[] topics = ["harbours", "railways", "schools", "forests", "bridges", "hospitals"];
        var text = new List<string>();
        for (int i = 0; i < ids.Length; i++)
        {
            text.Add($"=== {ids[i]}.txt ===");
            text.Add($"This year the Congress must take up the matter of our {topics[i]} and the people who depend on them every day. " +
                     $"We have spent {100 + i} million dollars on {topics[i]} and shall ask for more in the coming months of work. " +
                     (i < 2 ? "We shall never rest until every family in the land has a home and a job and a future. " : "") +
                     $"No nation that neglects its {topics[i]} can long remain strong, free, prosperous and at peace with the world.");
        }
        return CorpusSwapTask.ParseSotu(string.Join("\n", text));
    }

    [Fact]
    public void Attribution_questions_quote_one_address_and_blank_its_year_or_its_president()
    {
        Assert.Equal("Kennedy", CorpusSwapTask.PresidentName("1962_john_f_kennedy_d"));
        Assert.Equal("Bush", CorpusSwapTask.PresidentName("2001_george_w_bush_r"));
        Assert.Equal("Nixon", CorpusSwapTask.PresidentName("1970_richard_nixon_r"));
        Assert.Throws<InvalidDataException>(() => CorpusSwapTask.PresidentName("1970"));
        Assert.Equal("\"We built.\" said President Kennedy in the State of the Union address of 1962.", CorpusSwapTask.SourcedPassage(" We built. ", "1962_john_f_kennedy_d", 1962));
        var speeches = AttributionSpeeches();
        var qs = CorpusSwapTask.AttributionQuestions(speeches, 12, seed: 5);
        Assert.Equal(12, qs.Count);
        Assert.Equal(6, qs.Count(q => q.Kind == CorpusSwapTask.WhichYear));
        Assert.Equal(6, qs.Count(q => q.Kind == CorpusSwapTask.WhichPresident));
        var shared = "We shall never rest until every family in the land has a home and a job and a future.";
        foreach (var q in qs)
        {
            var speech = speeches.Single(x => x.Id == q.Speech);
            string quote = CorpusSwapTask.Quote(q);
            Assert.NotEqual(shared, quote);
            Assert.Contains(quote, CorpusSwapTask.Sentences(speech.Text));
            Assert.Equal(4, q.Choices.Count);
            Assert.Equal(4, q.Choices.Distinct().Count());
            Assert.Contains(q.Answer, q.Choices);
            if (q.Kind == CorpusSwapTask.WhichYear)
            {
                Assert.Equal(speech.Year.ToString(System.Globalization.CultureInfo.InvariantCulture), q.Answer);
                Assert.Equal($"\"{quote}\" said the President in the State of the Union address of {ClozeQuestion.Blank}.", q.Sentence);
                Assert.All(q.Choices, c => Assert.Contains(speeches, x => x.Year.ToString(System.Globalization.CultureInfo.InvariantCulture) == c));
            }
            else
            {
                Assert.Equal(CorpusSwapTask.PresidentName(speech.Id), q.Answer);
                Assert.Equal($"\"{quote}\" said President {ClozeQuestion.Blank} in the State of the Union address.", q.Sentence);
                Assert.All(q.Choices, c => Assert.Contains(speeches, x => CorpusSwapTask.PresidentName(x.Id) == c));
            }
        }
        Assert.Equal(qs.Count, qs.Select(CorpusSwapTask.Quote).Distinct().Count());                       // no sentence asked twice
        Assert.Empty(CorpusSwapTask.AttributionQuestions(speeches, 12, seed: 5, choices: 7));             // six presidents, six years
    }

    [Fact]
    public void A_copying_model_names_the_year_and_the_president_exactly_when_the_hit_is_from_the_own_address()
    {
        var tok = new ByteTokenizer();
        var speeches = AttributionSpeeches();
        using var tmp = new TempFolder();
        Bm25IndexBuilder.Build(tmp["idx"], CorpusSwapTask.Documents(speeches), new IndexBuildOptions { Shards = 1, PassageWords = 30 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var qs = CorpusSwapTask.AttributionQuestions(speeches, 10, seed: 2);
        var engine = new CopyEngine();
        var r = CorpusSwapTask.EvaluateGenerated(engine, tok, null, index, qs, null, SwapLayout.Ralm);
        Assert.Equal(qs.Count, r.Rows.Count);
        Assert.All(r.Rows, row => Assert.False(row.Plain));                  // nothing to copy without the passage
        Assert.All(r.Rows, row => Assert.Equal(row.RetrievedOwnSpeech, row.WithIndex));
        Assert.All(r.Rows, row => Assert.Equal(row.RetrievedOwnSpeech, row.PassageHoldsSentence));
        Assert.Contains(r.Rows, row => row.WithIndex);
        Assert.Contains(r.Rows.Zip(qs), x => x.First.WithIndex && x.Second.Kind == CorpusSwapTask.WhichYear);
        Assert.Contains(r.Rows.Zip(qs), x => x.First.WithIndex && x.Second.Kind == CorpusSwapTask.WhichPresident);
        Assert.Contains("ralm", Assert.Throws<ArgumentException>(() => CorpusSwapTask.EvaluateGenerated(engine, tok, null, index, qs, null, SwapLayout.Retro)).Message);
        Assert.Throws<ArgumentException>(() => CorpusSwapTask.EvaluateGenerated(engine, tok, null, index, qs, null, SwapLayout.Ralm, oracle: SwapOracle.Sentence));
    }
}

/// <summary>The byte-tokenised question and passage the layout tests spell out token by token.</summary>
static class LayoutFixture
{
    /// <summary>One id per byte, so every expected sequence is readable text.</summary>
    public static readonly ITokenizer Tokenizer = TokenizerFiles.Load("bytes");
    public const int Bos = 300;
    public static readonly ClozeQuestion Question = new("s", "year", "Then in the fine year ____ we built.", "1960", ["1970", "1960", "1980", "1990"]);
    public const string Passage = "Long ago we had nothing. Then in the fine year 1960 we built. More came.";

    /// <summary>An optional BOS, then the parts encoded one after another.</summary>
    public static List<int> Ids(int? bos, params string[] parts)
    {
        var ids = new List<int>();
        if (bos is { } x) ids.Add(x);
        foreach (var part in parts) ids.AddRange(Tokenizer.Encode(part));
        return ids;
    }
}
