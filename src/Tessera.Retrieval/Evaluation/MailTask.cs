using System.Diagnostics;
using System.Text;
using Tessera.Inference;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Evaluation;

/// <summary>
/// The personal-data task (issue 12, item 6): cloze questions about a user's own mail, with the
/// message that holds each answer known, so retrieval and citations are scored without a person.
/// Questions are the corpus swap's (<see cref="CorpusSwapTask.Questions"/>: a 12–40-word sentence
/// with its one year, number or proper name blanked, distractors of the same kind) drawn from each
/// message's own text (quoted lines, those starting with <c>&gt;</c>, left out), and kept only when
/// the completed sentence occurs in exactly one message of the whole corpus
/// (<see cref="Normalise"/>d: quote markers and line breaks do not hide a copy), so the answer's
/// message is unambiguous: mailing-list footers and text quoted in replies are never asked about.
/// </summary>
public static class MailTask
{
    /// <summary>
    /// Text as compared by the task: each line's leading quote markers (<c>&gt;</c>, with the spaces
    /// among them) removed, and all whitespace collapsed to one space.
    /// </summary>
    public static string Normalise(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var raw in text.AsSpan().EnumerateLines())
        {
            var line = raw.TrimStart();
            while (line.Length > 0 && line[0] == '>') line = line[1..].TrimStart();
            foreach (char c in line)
            {
                if (char.IsWhiteSpace(c)) { if (sb.Length > 0 && sb[^1] != ' ') sb.Append(' '); }
                else sb.Append(c);
            }
            if (sb.Length > 0 && sb[^1] != ' ') sb.Append(' ');
        }
        return sb.ToString().TrimEnd();
    }

    /// <summary>A message's own text: its lines that are not quoted (do not start with <c>&gt;</c> after indentation).</summary>
    public static string OwnText(string text)
        => string.Join('\n', text.Split('\n').Where(l => !l.TrimStart().StartsWith('>')));

    /// <summary>
    /// Up to <paramref name="count"/> questions (a third of each kind where possible) about the
    /// documents <paramref name="askFrom"/> accepts, each with its answer in exactly one document of
    /// <paramref name="corpus"/> (the question's <see cref="ClozeQuestion.Speech"/> is that document's id).
    /// </summary>
    /// <remarks><paramref name="minLeftWords"/> is <see cref="CorpusSwapTask.Questions"/>'s (at least that many words before the blank; for generated answers).</remarks>
    public static List<ClozeQuestion> Questions(IReadOnlyList<SourceDocument> corpus, Func<string, bool> askFrom, int count, int seed = 1, int choices = 4, int minLeftWords = 0)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "mail task: ask for at least one question.");
        var asked = corpus.Where(d => askFrom(d.Id)).Select(d => new Speech(d.Id, d.Date?.Year ?? 0, OwnText(d.Text))).ToList();
        if (asked.Count == 0) throw new ArgumentException("mail task: no document to ask about (check the folders given to ask from).");
        var drawn = CorpusSwapTask.Questions(asked, count * 4, seed, matched: false, choices, minLeftWords);   // drawn four times over: uniqueness drops some
        var all = new StringBuilder();
        var starts = new List<int>(corpus.Count);
        foreach (var d in corpus) { starts.Add(all.Length); all.Append(Normalise(d.Text)).Append('\u0001'); }
        string haystack = all.ToString();
        var keep = new List<ClozeQuestion>();
        var groups = drawn.GroupBy(q => q.Kind).ToList();
        for (int k = 0; k < groups.Count; k++)
        {
            var group = groups[k];
            int want = (count - keep.Count) / (groups.Count - k);   // an even share; a short kind's rest goes to the next
            int taken = 0;
            foreach (var q in group)
            {
                if (taken >= want) break;
                if (OnlyIn(haystack, starts, corpus, q.Filled(q.Answer)) != q.Speech) continue;
                keep.Add(q);
                taken++;
            }
        }
        return keep;
    }

    /// <summary>The id of the one document whose normalised text holds <paramref name="sentence"/>; null when none or several do.</summary>
    static string? OnlyIn(string haystack, List<int> starts, IReadOnlyList<SourceDocument> corpus, string sentence)
    {
        string? found = null;
        for (int at = haystack.IndexOf(sentence, StringComparison.Ordinal); at >= 0; at = haystack.IndexOf(sentence, at + 1, StringComparison.Ordinal))
        {
            int doc = starts.BinarySearch(at);
            if (doc < 0) doc = ~doc - 1;
            string id = corpus[doc].Id;
            if (found is not null && found != id) return null;
            found = id;
        }
        return found;
    }

    /// <summary>
    /// The query for <paramref name="q"/>: the blanked sentence with the blank removed, or with
    /// <paramref name="words"/> &gt; 0 only that many of its searchable words (those the index's
    /// analyzer keeps a term of: no stop words), drawn at random (seeded by <paramref name="seed"/>
    /// and the sentence) and kept in order: a user who remembers a few words of a message rather
    /// than a whole sentence.
    /// </summary>
    public static string Query(ClozeQuestion q, int words = 0, int seed = 1)
    {
        string full = q.Sentence.Replace(ClozeQuestion.Blank, " ", StringComparison.Ordinal);
        var all = full.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words <= 0) return string.Join(' ', all);
        using var analyzer = Bm25Index.CreateAnalyzer();
        var searchable = Enumerable.Range(0, all.Length).Where(i => QueryTerms.Tokens(analyzer, all[i]).Count > 0).ToList();
        if (words >= searchable.Count) return string.Join(' ', searchable.Select(i => all[i]));
        var rng = new Random(unchecked(seed * 1_000_003 + StableHash(q.Sentence)));   // not HashCode.Combine: its seed changes with every process
        var keep = searchable.OrderBy(_ => rng.Next()).Take(words).Order();
        return string.Join(' ', keep.Select(i => all[i]));
    }

    static int StableHash(string s)
    {
        int h = 17;
        foreach (char c in s) h = unchecked(h * 31 + c);
        return h;
    }

    /// <summary>Whether a passage holds the question's completed sentence (both <see cref="Normalise"/>d).</summary>
    public static bool Holds(string passage, ClozeQuestion q) => Normalise(passage).Contains(q.Filled(q.Answer), StringComparison.Ordinal);

    /// <summary>
    /// Searches each question (the blanked sentence, blank removed: what a user would type, and what
    /// <c>tessera serve --index</c> searches for a chat message) and scores: the rank of the answer's
    /// message among the top <paramref name="depth"/> passages, search latency, and the citations a
    /// served reply would carry (the top <paramref name="cite"/> passages, <c>serve --index</c>'s
    /// <c>--index-passages</c>). With <paramref name="engine"/>, the model also answers each question
    /// by the likelihood choice of the corpus swap (<see cref="CorpusSwapTask.Answer"/>, In-Context
    /// RALM layout unless <paramref name="layout"/> says otherwise; <paramref name="ownTextTokens"/> as in
    /// <c>eval swap --own-text-tokens</c>), without and with the top passage; with <paramref name="queryWords"/> &gt; 0 the
    /// query is only that many of the sentence's words (<see cref="Query"/>); with <paramref name="generate"/> it writes the
    /// filler after the sentence's left context instead (<see cref="CorpusSwapTask.GenerateFiller"/>),
    /// right on an exact match (<see cref="CorpusSwapTask.ExactMatch"/>).
    /// </summary>
    public static MailScore Evaluate(Bm25Index index, IReadOnlyList<ClozeQuestion> questions, int depth = 100, int cite = 3,
        IGenerationEngine? engine = null, ITokenizer? tok = null, int? bos = null, Action<string>? progress = null, bool generate = false, int queryWords = 0,
        SwapLayout layout = SwapLayout.Ralm, int ownTextTokens = 0)
    {
        if (cite < 1 || cite > depth) throw new ArgumentOutOfRangeException(nameof(cite), cite, $"mail task: cite between 1 and the search depth {depth}.");
        if (engine is not null && tok is null) throw new ArgumentException("mail task: a model needs its tokenizer.", nameof(tok));
        var rows = new List<MailRow>(questions.Count);
        var clock = new Stopwatch();
        foreach (var q in questions)
        {
            string query = Query(q, queryWords);
            clock.Restart();
            IReadOnlyList<SearchHit> hits;
            try { hits = index.Search(query, depth); }
            catch (ArgumentException) { hits = []; }   // nothing searchable: a miss, and a served reply would carry no citations
            double ms = clock.Elapsed.TotalMilliseconds;
            int rank = -1;
            for (int i = 0; i < hits.Count; i++) if (hits[i].Passage.DocumentId == q.Speech) { rank = i; break; }
            var cited = hits.Take(cite).ToList();
            bool? plain = null, with = null;
            string? wroteWithout = null, wroteWith = null;
            if (engine is not null && generate)
            {
                int ctx = engine.Config.ContextLength;
                wroteWithout = CorpusSwapTask.GenerateFiller(engine, tok!, CorpusSwapTask.Prompt(tok!, bos, q, null, layout, ctx, ownTextTokens: ownTextTokens));
                wroteWith = CorpusSwapTask.GenerateFiller(engine, tok!, CorpusSwapTask.Prompt(tok!, bos, q, hits.Count > 0 ? hits[0].Passage.Text : null, layout, ctx, ownTextTokens: ownTextTokens));
                plain = CorpusSwapTask.ExactMatch(wroteWithout, q.AnswerAsWritten);
                with = CorpusSwapTask.ExactMatch(wroteWith, q.AnswerAsWritten);
            }
            else if (engine is not null)
            {
                plain = CorpusSwapTask.Answer(engine, tok!, bos, q, null, layout, ownTextTokens: ownTextTokens) == q.Answer;
                with = CorpusSwapTask.Answer(engine, tok!, bos, q, hits.Count > 0 ? hits[0].Passage.Text : null, layout, ownTextTokens: ownTextTokens) == q.Answer;
            }
            rows.Add(new MailRow(q.Speech, q.Kind, rank, ms, cited.Any(h => h.Passage.DocumentId == q.Speech),
                cited.Count > 0 && cited[0].Passage.DocumentId == q.Speech, cited.Any(h => Holds(h.Passage.Text, q)), plain, with)
            {
                Cited = [.. cited.Select(h => new RetrievedCitation(h.Passage.DocumentId, h.Passage.Start, h.Passage.Length))],
                GeneratedWithout = wroteWithout,
                GeneratedWith = wroteWith,
            });
            if (rows.Count % 50 == 0) progress?.Invoke($"mail task: {rows.Count}/{questions.Count} questions");
        }
        return new MailScore(rows, depth, cite);
    }
}

/// <summary>Where a citation points: a document id and a character span of its indexed text.</summary>
/// <param name="DocumentId">The document (a mail message: its file's relative path, <c>#n</c> for the n-th message of an mbox).</param>
/// <param name="Start">Character offset of the passage in the indexed text.</param>
/// <param name="Length">Passage length in characters.</param>
public sealed record RetrievedCitation(string DocumentId, int Start, int Length);

/// <summary>One question's outcome in <see cref="MailTask.Evaluate"/>.</summary>
/// <param name="Message">The answer's message id.</param>
/// <param name="Kind">year, number or name.</param>
/// <param name="Rank">0-based rank of the first passage from the answer's message among the searched passages; −1 when absent.</param>
/// <param name="Milliseconds">Search time.</param>
/// <param name="CitesMessage">A cited passage comes from the answer's message.</param>
/// <param name="FirstCitesMessage">The first citation does.</param>
/// <param name="CitedPassageHoldsAnswer">A cited passage holds the completed sentence.</param>
/// <param name="RightWithout">With a model: chose the answer without a passage (null: no model).</param>
/// <param name="RightWith">With a model: chose the answer after the top passage.</param>
public sealed record MailRow(string Message, string Kind, int Rank, double Milliseconds, bool CitesMessage, bool FirstCitesMessage, bool CitedPassageHoldsAnswer,
    bool? RightWithout, bool? RightWith)
{
    /// <summary>The citations a served reply carries for this question.</summary>
    public IReadOnlyList<RetrievedCitation> Cited { get; init; } = [];
    /// <summary>With generated answers: the filler written without the passage.</summary>
    public string? GeneratedWithout { get; init; }
    /// <summary>With generated answers: the filler written after the top passage.</summary>
    public string? GeneratedWith { get; init; }
}

/// <summary>The mail task's figures over all questions.</summary>
/// <param name="Rows">Per-question outcomes.</param>
/// <param name="Depth">Passages searched per question.</param>
/// <param name="Cite">Passages cited per question.</param>
public sealed record MailScore(IReadOnlyList<MailRow> Rows, int Depth, int Cite)
{
    /// <summary>Fraction of questions whose answer's message is among the first <paramref name="k"/> passages (k ≤ <see cref="Depth"/>).</summary>
    public double RecallAt(int k) => k > Depth ? throw new ArgumentOutOfRangeException(nameof(k), k, $"searched only {Depth} passages") : Share(Rows, r => r.Rank >= 0 && r.Rank < k);

    /// <summary>Search latency percentile in milliseconds (0.5: median).</summary>
    public double LatencyPercentile(double p)
    {
        var sorted = Rows.Select(r => r.Milliseconds).Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Floor(p * sorted.Count))];
    }

    /// <summary>Share of questions with a cited passage from the answer's message.</summary>
    public double CitesMessage => Share(Rows, r => r.CitesMessage);

    /// <summary>Share of questions whose cited passages hold the completed sentence.</summary>
    public double CitedPassageHoldsAnswer => Share(Rows, r => r.CitedPassageHoldsAnswer);

    /// <summary>The questions the model answered right with the passage (empty without a model).</summary>
    public IReadOnlyList<MailRow> Right => [.. Rows.Where(r => r.RightWith == true)];

    /// <summary>Fraction of <paramref name="rows"/> meeting <paramref name="test"/> (NaN for none).</summary>
    public static double Share(IReadOnlyList<MailRow> rows, Func<MailRow, bool> test) => rows.Count == 0 ? double.NaN : rows.Count(test) / (double)rows.Count;
}
