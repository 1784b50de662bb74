namespace Tessera.Retrieval.Evaluation;

/// <summary>
/// SOTU cloze-passage retrieval: the corpus is State of the Union addresses cut into passages of
/// whole sentences (about <c>passageWords</c> words each, id <c>{address}#{n}</c>); each query is a
/// corpus-swap cloze sentence (<see cref="CorpusSwapTask.Questions"/>) with the blank removed, and
/// the relevant document is the one passage that holds the completed sentence — the passage a
/// reader needs to fill the blank. Relevance is automatic: passages never split a sentence, so the
/// sentence sits in exactly one passage of its address.
/// </summary>
public static class SotuClozeRetrievalTask
{
    /// <summary>
    /// Passages of <paramref name="speeches"/> and up to <paramref name="queries"/> labelled queries
    /// (seeded). Sentences whose completed text is in <paramref name="exclude"/> are skipped (a
    /// validation set disjoint from a test set); a sentence that occurs in two passages is skipped too.
    /// With <paramref name="holdOutSentence"/> each query's sentence is removed from its passage, so
    /// the passage must be found from its surrounding text (the harder variant: no verbatim match).
    /// </summary>
    public static (List<SourceDocument> Corpus, List<LabelledQuery> Queries) Generate(IReadOnlyList<Speech> speeches, int queries, int seed = 1,
        int passageWords = 100, IReadOnlySet<string>? exclude = null, bool holdOutSentence = false)
    {
        if (queries < 1) throw new ArgumentException($"SOTU cloze retrieval: need at least 1 query, got {queries}.");
        if (passageWords < 10) throw new ArgumentException($"SOTU cloze retrieval: passages of {passageWords} words are too short (≥ 10).");
        var corpus = new List<SourceDocument>();
        var sentencesOf = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var home = new Dictionary<string, string>(StringComparer.Ordinal);   // completed sentence → passage id
        var ambiguous = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in speeches)
        {
            var current = new List<string>();
            int words = 0, n = 0;
            void Flush()
            {
                if (current.Count == 0) return;
                string id = $"{s.Id}#{n++}";
                corpus.Add(new SourceDocument(id, string.Join(" ", current), new DateTimeOffset(s.Year, 1, 1, 0, 0, 0, TimeSpan.Zero)));
                sentencesOf[id] = [.. current];
                foreach (var sentence in current)
                    if (!home.TryAdd(sentence, id) && home[sentence] != id) ambiguous.Add(sentence);
                current.Clear(); words = 0;
            }
            foreach (var sentence in CorpusSwapTask.Sentences(s.Text))
            {
                current.Add(sentence);
                words += sentence.Count(c => c == ' ') + 1;
                if (words >= passageWords) Flush();
            }
            Flush();
        }
        // Draw more cloze sentences than needed: exclusions, duplicates and ambiguous sentences are dropped.
        var drawn = CorpusSwapTask.Questions(speeches, queries * 3, seed);
        var rng = new Random(seed);
        for (int i = drawn.Count - 1; i > 0; i--) { int j = rng.Next(i + 1); (drawn[i], drawn[j]) = (drawn[j], drawn[i]); }
        var labelled = new List<LabelledQuery>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var q in drawn)
        {
            if (labelled.Count == queries) break;
            string full = q.Filled(q.Answer);
            if (exclude?.Contains(full) == true || ambiguous.Contains(full) || !seen.Add(full)) continue;
            if (!home.TryGetValue(full, out var id)) continue;
            if (holdOutSentence && sentencesOf[id].Count < 2) continue;   // nothing would be left to find
            labelled.Add(new LabelledQuery(Query(q), id));
            if (holdOutSentence) sentencesOf[id].Remove(full);
        }
        if (holdOutSentence)
            for (int i = 0; i < corpus.Count; i++)
                corpus[i] = corpus[i] with { Text = string.Join(" ", sentencesOf[corpus[i].Id]) };
        if (labelled.Count == 0) throw new InvalidOperationException("SOTU cloze retrieval: no cloze sentence could be drawn from the addresses.");
        return (corpus, labelled);
    }

    /// <summary>The query for a cloze question: its sentence with the blank removed.</summary>
    public static string Query(ClozeQuestion q) => q.Sentence.Replace(ClozeQuestion.Blank, " ", StringComparison.Ordinal).Replace("  ", " ", StringComparison.Ordinal).Trim();
}
