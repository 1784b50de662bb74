using Tessera.Retrieval.Expansion;

namespace Tessera.Retrieval.Evaluation;

/// <summary>A retrieval query with the one document id that answers it.</summary>
/// <param name="Query">Query text.</param>
/// <param name="Relevant">The relevant document's id.</param>
public sealed record LabelledQuery(string Query, string Relevant);

/// <summary>
/// The reverse-dictionary task, generated from WordNet: each query is one sense's definition and
/// the relevant document is its headword's entry. A target's entry lists the headword, its other
/// senses' definitions, synonyms and usage examples, but never the held-out definition, and the
/// held-out sense is one whose synset has no other lemma, so no other entry contains that
/// definition either: relevance is automatic and the definition's words are not copied anywhere.
/// Distractor entries (whole, all senses) fill the corpus up to the requested size.
/// </summary>
public static class ReverseDictionaryTask
{
    /// <summary>
    /// Builds <paramref name="entries"/> entries and <paramref name="queries"/> queries (seeded,
    /// reproducible). With <paramref name="heldOutTargets"/> the query headwords come only from the
    /// held-out split (<see cref="IsHeldOut"/>), the ones <see cref="TrainPairs"/> never uses. Headwords in
    /// <paramref name="excludeTargets"/> are never query targets (a validation set disjoint from a test set).
    /// </summary>
    public static (List<SourceDocument> Corpus, List<LabelledQuery> Queries) Generate(WordNet wordNet, int entries, int queries, int seed = 1, bool heldOutTargets = false,
        IReadOnlySet<string>? excludeTargets = null)
    {
        if (queries < 1 || entries < queries) throw new ArgumentException($"reverse dictionary: need 1 ≤ queries ≤ entries, got {queries} queries and {entries} entries.");
        var rng = new Random(seed);
        var lemmas = wordNet.Lemmas.Where(l => l.Length > 2 && l.All(char.IsAsciiLetterLower)).Order(StringComparer.Ordinal).ToList();
        Shuffle(lemmas, rng);
        var targets = new List<(string Lemma, Synset HeldOut)>();
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var l in lemmas)
        {
            if (targets.Count == queries) break;
            if (heldOutTargets && !IsHeldOut(l)) continue;
            if (excludeTargets?.Contains(l) == true) continue;
            var senses = wordNet.Senses(l);
            if (senses.Count < 2) continue;
            var held = senses.FirstOrDefault(s => s.Words.Count == 1 && s.Definition.Split(' ').Length >= 4);
            if (held is null) continue;
            targets.Add((l, held));
            taken.Add(l);
        }
        if (targets.Count < queries) throw new InvalidOperationException($"reverse dictionary: WordNet has only {targets.Count} eligible headwords for {queries} queries.");
        var corpus = targets.Select(t => new SourceDocument(t.Lemma, Entry(t.Lemma, wordNet.Senses(t.Lemma), t.HeldOut))).ToList();
        foreach (var l in lemmas)
        {
            if (corpus.Count == entries) break;
            if (taken.Contains(l)) continue;
            corpus.Add(new SourceDocument(l, Entry(l, wordNet.Senses(l), null)));
        }
        Shuffle(corpus, rng);
        return (corpus, targets.Select(t => new LabelledQuery(t.HeldOut.Definition, t.Lemma)).ToList());
    }

    /// <summary>The headword split: one headword in five (by FNV-1a of the lemma) is held out for evaluation.</summary>
    public static bool IsHeldOut(string lemma)
    {
        uint h = 2166136261;
        foreach (char c in lemma) { h ^= c; h *= 16777619; }
        return h % 5 == 0;
    }

    /// <summary>
    /// Training pairs for a bi-encoder from the headwords outside the held-out split: per headword
    /// with at least two senses, one sense's definition (four words or more, chosen at random) as the
    /// query and the entry without that definition as the positive — the task's format (headwords
    /// where another sense repeats the definition are skipped). At most
    /// <paramref name="max"/> pairs, seeded.
    /// </summary>
    public static List<(string Query, string Positive)> TrainPairs(WordNet wordNet, int max, int seed = 1)
    {
        var rng = new Random(seed);
        var lemmas = wordNet.Lemmas.Where(l => l.Length > 2 && l.All(char.IsAsciiLetterLower) && !IsHeldOut(l)).Order(StringComparer.Ordinal).ToList();
        Shuffle(lemmas, rng);
        var pairs = new List<(string, string)>();
        foreach (var l in lemmas)
        {
            if (pairs.Count == max) break;
            var senses = wordNet.Senses(l);
            if (senses.Count < 2) continue;
            var eligible = senses.Where(s => s.Definition.Split(' ').Length >= 4).ToList();
            if (eligible.Count == 0) continue;
            var held = eligible[rng.Next(eligible.Count)];
            string entry = Entry(l, senses, held);
            if (entry.Contains(held.Definition, StringComparison.Ordinal)) continue;   // another sense repeats it: the pair would be a copy
            pairs.Add((held.Definition, entry));
        }
        return pairs;
    }

    /// <summary>An entry's text: headword, then per sense its definition (except the held-out one), synonyms and examples.</summary>
    public static string Entry(string lemma, IReadOnlyList<Synset> senses, Synset? heldOut)
    {
        var parts = new List<string> { lemma + "." };
        int n = 0;
        foreach (var s in senses)
        {
            var sense = new List<string>();
            if (!ReferenceEquals(s, heldOut)) sense.Add(s.Definition + ".");
            var syn = s.Words.Where(w => w != lemma).ToList();
            if (syn.Count > 0) sense.Add("Synonyms: " + string.Join(", ", syn) + ".");
            if (s.Examples.Count > 0) sense.Add("Example: " + string.Join(" ", s.Examples.Select(e => e.TrimEnd('.') + ".")));
            if (sense.Count > 0) parts.Add($"{++n}. " + string.Join(" ", sense));
        }
        return string.Join(" ", parts);
    }

    static void Shuffle<T>(List<T> list, Random rng)
    {
        for (int i = list.Count - 1; i > 0; i--) { int j = rng.Next(i + 1); (list[i], list[j]) = (list[j], list[i]); }
    }
}
