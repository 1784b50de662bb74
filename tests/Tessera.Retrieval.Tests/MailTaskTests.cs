using Tessera.Retrieval.Evaluation;
using Tessera.Retrieval.Sparse;

namespace Tessera.Retrieval.Tests;

/// <summary>The mail task's questions: each answer in exactly one message, never about quoted text; its scores from a known index.</summary>
public class MailTaskTests
{
    [Fact]
    public void Normalise_drops_quote_markers_and_collapses_whitespace()
    {
        Assert.Equal("Bob wrote: ship it on Friday at noon. Agreed.", MailTask.Normalise("Bob wrote:\n> ship it on\n>  > Friday   at noon.\n\n  Agreed.\n"));
        Assert.Equal("a > b", MailTask.Normalise("a > b"));   // a '>' inside a line is text
        Assert.Equal("own line\nnext", MailTask.OwnText("own line\n> quoted\n  > indented quote\nnext"));
    }

    static string Sentence(string name, int n) => $"The committee agreed that {name} will present the budget of {n} dollars at the meeting next week in the hall.";

    [Fact]
    public void Questions_are_asked_only_where_the_answer_is_in_one_message_and_not_quoted()
    {
        var docs = new List<SourceDocument>
        {
            new("a/1", "Subject: one\n\nHello all. " + Sentence("Harriet", 4500) + "\n\n" + Sentence("Leopold", 7100)),
            new("a/2", "Subject: two\n\n" + "> " + Sentence("Harriet", 4500).Replace("budget of", "budget\n> of", StringComparison.Ordinal) + "\n\nThanks."),   // quotes a/1, folded
            new("a/3", "Subject: three\n\nHello all. " + Sentence("Matilda", 9300) + "\n\n" + Sentence("Ottoline", 2600)),
            new("b/4", "Subject: four\n\nHello all. " + Sentence("Ottoline", 2600)),   // the same sentence in another message: ambiguous
        };
        for (int i = 0; i < 12; i++) docs.Add(new SourceDocument($"a/x{i}", $"Subject: filler {i}\n\n" + Sentence($"Person{(char)('A' + i)}xyz", 1000 + 37 * i)));
        var qs = MailTask.Questions(docs, id => id.StartsWith("a/", StringComparison.Ordinal), 60, seed: 3);
        Assert.NotEmpty(qs);
        Assert.DoesNotContain(qs, q => q.Speech is "a/2" or "b/4");                                 // quoted text, and a message not asked from
        Assert.DoesNotContain(qs, q => q.Sentence.Contains("Harriet", StringComparison.Ordinal) || q.Answer == "Harriet");   // also in a/2's quote
        Assert.DoesNotContain(qs, q => q.Sentence.Contains("Ottoline", StringComparison.Ordinal) || q.Answer == "Ottoline"); // also in b/4
        Assert.Contains(qs, q => q.Speech == "a/1" && (q.Answer == "7100" || q.Answer == "Leopold"));
        Assert.Contains(qs, q => q.Speech == "a/3");
        foreach (var q in qs)
        {
            Assert.Contains(q.Answer, q.Choices);
            Assert.Single(docs, d => MailTask.Normalise(d.Text).Contains(q.Filled(q.Answer), StringComparison.Ordinal));
            Assert.True(MailTask.Holds(docs.Single(d => d.Id == q.Speech).Text, q));
        }
    }

    [Fact]
    public void Evaluate_scores_recall_and_citations_against_the_answer_message()
    {
        using var tmp = new TempFolder();
        var docs = new List<SourceDocument>();
        for (int i = 0; i < 15; i++) docs.Add(new SourceDocument($"m/{i}", $"Subject: note {i}\n\n" + Sentence($"Person{(char)('A' + i)}xyz", 1000 + 37 * i) + $"\n\nUnrelated words about topic{i} follow here."));
        Bm25IndexBuilder.Build(tmp["idx"], docs, new IndexBuildOptions { PassageWords = 200 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var qs = MailTask.Questions(docs, _ => true, 9, seed: 1);
        var score = MailTask.Evaluate(index, qs, depth: 10, cite: 2);
        Assert.Equal(qs.Count, score.Rows.Count);
        // Each sentence is unique to its message by its name and number, and a passage is a whole message here.
        Assert.Equal(1.0, score.RecallAt(1));
        Assert.Equal(1.0, score.CitesMessage);
        Assert.Equal(1.0, score.CitedPassageHoldsAnswer);
        Assert.All(score.Rows, r => Assert.Equal(2, r.Cited.Count));
        Assert.All(score.Rows, r => Assert.Equal(r.Message, r.Cited[0].DocumentId));
        Assert.Throws<ArgumentOutOfRangeException>(() => score.RecallAt(11));
        Assert.Empty(score.Right);   // no model: nothing answered
    }

    [Fact]
    public void A_short_query_keeps_that_many_searchable_words_in_order()
    {
        var q = new ClozeQuestion("m/1", "number", "The committee agreed that the budget of ____ dollars is in the hall of the town.", "4500", ["4500", "1"]);
        Assert.Equal("The committee agreed that the budget of dollars is in the hall of the town.", MailTask.Query(q));
        string three = MailTask.Query(q, 3);
        Assert.Equal(three, MailTask.Query(q, 3));   // seeded: the same words every time
        Assert.Equal("agreed hall town.", three);        // and in every process (pinned: a per-process hash seed would move it)
        var words = three.Split(' ');
        Assert.Equal(3, words.Length);
        var content = new[] { "committee", "agreed", "budget", "dollars", "hall", "town." };   // the words that survive the English analyzer's stop list
        Assert.All(words, w => Assert.Contains(w, content));
        Assert.Equal(words.OrderBy(w => Array.IndexOf(content, w)), words);
        Assert.Equal(string.Join(' ', content), MailTask.Query(q, 50));   // more than there are: all searchable words
    }
}
