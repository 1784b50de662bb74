using System.Globalization;
using System.Text.RegularExpressions;
using Tessera.Inference;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Evaluation;

/// <summary>One State of the Union address.</summary>
/// <param name="Id">File stem, e.g. <c>1962_john_f_kennedy_d</c>.</param>
/// <param name="Year">Year of the address.</param>
/// <param name="Text">The address.</param>
public sealed record Speech(string Id, int Year, string Text);

/// <summary>A multiple-choice cloze question: the sentence with <see cref="Blank"/> in place of the answer.</summary>
/// <param name="Speech">Where the sentence comes from.</param>
/// <param name="Kind">year, number or name.</param>
/// <param name="Sentence">The sentence with the answer replaced by <see cref="Blank"/>.</param>
/// <param name="Answer">The right filler.</param>
/// <param name="Choices">The fillers to choose among (four unless asked otherwise), the answer among them.</param>
public sealed record ClozeQuestion(string Speech, string Kind, string Sentence, string Answer, IReadOnlyList<string> Choices)
{
    /// <summary>The placeholder in <see cref="Sentence"/>.</summary>
    public const string Blank = "____";

    /// <summary>The sentence with <paramref name="filler"/> in the blank.</summary>
    public string Filled(string filler) => Sentence.Replace(Blank, filler, StringComparison.Ordinal);

    /// <summary>The sentence's text before the blank, trailing whitespace removed (a generated filler brings its own leading space).</summary>
    public string LeftContext => Sentence[..Sentence.IndexOf(Blank, StringComparison.Ordinal)].TrimEnd();

    /// <summary>
    /// The answer as the word it stands in: the answer and the characters glued to its right up to the
    /// next whitespace ("1960," for "in ____, we"; "89th" for "the ____th Congress"; "1980's"). A
    /// generated filler is the first whitespace-delimited word written, so it is compared with this
    /// (<see cref="CorpusSwapTask.ExactMatch"/>; trailing punctuation is normalised away there). Text
    /// glued to the left ("B-", "$") is already in the prompt.
    /// </summary>
    public string AnswerAsWritten
    {
        get
        {
            int after = Sentence.IndexOf(Blank, StringComparison.Ordinal) + Blank.Length, end = after;
            while (end < Sentence.Length && !char.IsWhiteSpace(Sentence[end])) end++;
            return Answer + Sentence[after..end];
        }
    }

    /// <summary>Words before the blank (0 when the blank opens the sentence).</summary>
    public int LeftWords => LeftContext.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
}

/// <summary>
/// The corpus swap: a model trained on addresses up to a cutoff year answers cloze questions about
/// later addresses, without and with an index of the later addresses, weights unchanged. Questions
/// are generated from the later addresses: a sentence of 12–40 words with one year, number or
/// proper name blanked, and three distractors of the same kind drawn from other questions'
/// answers. The model picks the filler whose completed sentence it finds most likely
/// (sum of token log-probabilities); with the index the top BM25 passage for the blanked sentence
/// is placed before it (In-Context RALM's format: BOS, passage, blank line, sentence). Or, in
/// <see cref="EvaluateGenerated"/>, the model writes the filler after the sentence's left context and
/// is right on an exact match (<see cref="ExactMatch"/>), with no choices to tell apart by fit.
/// </summary>
public static partial class CorpusSwapTask
{
    [GeneratedRegex(@"^=== ((\d{4})_[^ ]*?)(\.txt)? ===$", RegexOptions.Multiline)]
    private static partial Regex Header();

    [GeneratedRegex(@"(?<=[.!?])\s+(?=[A-Z""])")]
    private static partial Regex SentenceEnd();

    [GeneratedRegex(@"\b(19[0-9]{2}|20[0-2][0-9])\b")]
    private static partial Regex YearToken();

    [GeneratedRegex(@"(?<![\w$.,])(\d{1,3}(,\d{3})+|\d{2,})(?![\w,.]\d)")]
    private static partial Regex NumberToken();

    [GeneratedRegex(@"(?<=\w[,;]? )([A-Z][a-z]{3,})(?= )")]
    private static partial Regex NameToken();

    /// <summary>Splits the corpus file (addresses concatenated, each after a <c>=== YYYY_name.txt ===</c> line) into speeches.</summary>
    public static List<Speech> ParseSotu(string text)
    {
        var heads = Header().Matches(text);
        if (heads.Count == 0) throw new InvalidDataException("corpus swap: no `=== YYYY_name.txt ===` headers found; expected the State of the Union corpus (data/corpus/sotu.txt.gz).");
        var list = new List<Speech>();
        for (int i = 0; i < heads.Count; i++)
        {
            int start = heads[i].Index + heads[i].Length, end = i + 1 < heads.Count ? heads[i + 1].Index : text.Length;
            list.Add(new Speech(heads[i].Groups[1].Value, int.Parse(heads[i].Groups[2].Value, CultureInfo.InvariantCulture), text[start..end].Trim()));
        }
        return list;
    }

    /// <summary>The sentences of <paramref name="text"/>, whitespace collapsed (the same split and form <see cref="Questions"/> blanks).</summary>
    public static IEnumerable<string> Sentences(string text)
        => SentenceEnd().Split(text).Select(raw => Regex.Replace(raw.Trim(), @"\s+", " ")).Where(x => x.Length > 0);

    /// <summary>The later speeches as index documents (id = file stem, dated 1 January of the year).</summary>
    public static IEnumerable<SourceDocument> Documents(IEnumerable<Speech> speeches)
        => speeches.Select(s => new SourceDocument(s.Id, s.Text, new DateTimeOffset(s.Year, 1, 1, 0, 0, 0, TimeSpan.Zero)));

    /// <summary>
    /// Up to <paramref name="count"/> questions from <paramref name="speeches"/>, a third of each kind where possible (seeded).
    /// With <paramref name="matched"/>, distractors resemble the answer so that fit alone says less:
    /// years within 20 of the answer, numbers of the same length, names of the same first letter
    /// (each falling back to any answer of the kind when too few match). Each question has
    /// <paramref name="choices"/> fillers (the answer and <paramref name="choices"/> − 1 distractors; a
    /// kind with fewer distinct answers is left out). With <paramref name="minLeftWords"/> &gt; 0 only
    /// blanks with at least that many words before them in their sentence are drawn (a generated
    /// answer is predicted from the left context alone); 0, the default, and 4 choices draw exactly
    /// the questions of earlier runs.
    /// </summary>
    public static List<ClozeQuestion> Questions(IReadOnlyList<Speech> speeches, int count, int seed = 1, bool matched = false, int choices = 4, int minLeftWords = 0)
    {
        if (choices < 2) throw new ArgumentOutOfRangeException(nameof(choices), choices, "corpus swap: a question needs at least 2 choices (the answer and one distractor).");
        if (minLeftWords < 0) throw new ArgumentOutOfRangeException(nameof(minLeftWords), minLeftWords, "corpus swap: the left-context minimum cannot be negative.");
        var rng = new Random(seed);
        var candidates = new Dictionary<string, List<(string Speech, string Sentence, string Answer)>> { ["year"] = [], ["number"] = [], ["name"] = [] };
        var kinds = new (string Kind, Regex Pattern)[] { ("year", YearToken()), ("number", NumberToken()), ("name", NameToken()) };
        foreach (var s in speeches)
            foreach (var sentence in Sentences(s.Text))
            {
                int words = sentence.Split(' ').Length;
                if (words < 12 || words > 40) continue;
                foreach (var (kind, pattern) in kinds)
                {
                    var found = pattern.Matches(sentence);
                    if (found.Count != 1) continue;   // one occurrence, so the blank is unambiguous
                    if (kind == "number" && YearToken().IsMatch(found[0].Value)) continue;
                    if (kind == "name" && sentence.Count(c => c == ' ') < 5) continue;
                    var m = found[0];
                    if (minLeftWords > 0 && sentence[..m.Index].Split(' ', StringSplitOptions.RemoveEmptyEntries).Length < minLeftWords) continue;
                    candidates[kind].Add((s.Id, sentence[..m.Index] + ClozeQuestion.Blank + sentence[(m.Index + m.Length)..], m.Value));
                }
            }
        var questions = new List<ClozeQuestion>();
        for (int k = 0; k < kinds.Length; k++)
        {
            var list = candidates[kinds[k].Kind];
            string kind = kinds[k].Kind;
            Shuffle(list, rng);
            var answers = list.Select(c => c.Answer).Distinct(StringComparer.Ordinal).ToList();
            if (answers.Count < choices) continue;
            int want = (count - questions.Count) / (kinds.Length - k);   // an even share; a short kind's rest goes to the next
            foreach (var c in list.Take(want))
            {
                var pool = matched ? answers.Where(a => Resembles(kind, a, c.Answer)).ToList() : answers;
                if (pool.Count < choices) pool = answers;
                var fillers = Fillers(c.Answer, pool, choices, rng);
                questions.Add(new ClozeQuestion(c.Speech, kind, c.Sentence, c.Answer, fillers));
            }
        }
        return questions;
    }

    /// <summary>The kind of a "which year said …" question (<see cref="AttributionQuestions"/>).</summary>
    public const string WhichYear = "which-year";

    /// <summary>The kind of a "which president said …" question (<see cref="AttributionQuestions"/>).</summary>
    public const string WhichPresident = "which-president";

    /// <summary>Whether <paramref name="kind"/> is an attribution kind (its answer names the address, not a word of the sentence).</summary>
    public static bool IsAttribution(string kind) => kind is WhichYear or WhichPresident;

    /// <summary>
    /// The president's surname in an address's file stem: the last name part before the party letter
    /// (<c>1962_john_f_kennedy_d</c> → "Kennedy", <c>2001_george_w_bush_r</c> → "Bush").
    /// </summary>
    public static string PresidentName(string speechId)
    {
        var parts = speechId.Split('_', StringSplitOptions.RemoveEmptyEntries);
        int last = parts.Length - 1;
        if (last >= 2 && parts[last].Length == 1) last--;                  // the party letter
        if (last < 1) throw new InvalidDataException($"corpus swap: '{speechId}' is not a YYYY_first_last_party address name.");
        string name = parts[last];
        return char.ToUpperInvariant(name[0]) + name[1..];
    }

    /// <summary>
    /// The attribution line that follows a quoted passage: the frame of the attribution questions filled
    /// with the address's president and year, so a reader sees a retrieved passage's source in the words
    /// the questions ask with.
    /// </summary>
    public static string Attribution(string speechId, int year) => $" said President {PresidentName(speechId)} in the State of the Union address of {year}.";

    /// <summary>
    /// A retrieved passage as the attribution questions read it: quoted, then its source
    /// (<see cref="Attribution"/>). When <paramref name="quote"/> (the question's sentence, which is the
    /// query) occurs in the passage (whitespace aside), the passage is cut right after it, so the source
    /// follows the quoted sentence as it does in the question; the answer is never used.
    /// </summary>
    public static string SourcedPassage(string passage, string speechId, int year, string? quote = null)
    {
        string text = passage.Trim();
        if (!string.IsNullOrWhiteSpace(quote))
        {
            var words = quote.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(Regex.Escape);
            var m = Regex.Match(text, string.Join(@"\s+", words));
            if (m.Success) text = text[..(m.Index + m.Length)];
        }
        return "\"" + text + "\"" + Attribution(speechId, year);
    }

    /// <summary>
    /// "Which year / which president said …" questions about <paramref name="speeches"/> (half of each
    /// kind, seeded): a sentence of 12–40 words quoted, and the blank in its attribution —
    /// <c>"S" said President ____ in the State of the Union address.</c> (answer: the surname,
    /// <see cref="PresidentName"/>) or <c>"S" said the President in the State of the Union address of ____.</c>
    /// (answer: the year). Choices: the answer and <paramref name="choices"/> − 1 other presidents or
    /// years of these addresses; with <paramref name="matched"/>, years within 20 of the answer. A
    /// sentence that occurs in more than one address is never drawn. The answer is not a word of the
    /// address, so a reader gets it only from a passage's source (<see cref="SourcedPassage"/>) or from its prior.
    /// </summary>
    public static List<ClozeQuestion> AttributionQuestions(IReadOnlyList<Speech> speeches, int count, int seed = 1, bool matched = false, int choices = 4)
    {
        if (choices < 2) throw new ArgumentOutOfRangeException(nameof(choices), choices, "corpus swap: a question needs at least 2 choices (the answer and one distractor).");
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "corpus swap: the question count cannot be negative.");
        var rng = new Random(seed);
        var owners = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var drawn = new List<(Speech Speech, string Sentence)>();
        foreach (var sp in speeches)
            foreach (var sentence in Sentences(sp.Text))
            {
                if (sentence.Contains('"')) continue;                         // the quote marks delimit it
                int words = sentence.Split(' ').Length;
                if (words < 12 || words > 40) continue;
                if (!owners.TryGetValue(sentence, out var set)) owners[sentence] = set = new HashSet<string>(StringComparer.Ordinal);
                if (set.Add(sp.Id)) drawn.Add((sp, sentence));
            }
        drawn.RemoveAll(d => owners[d.Sentence].Count > 1);
        Shuffle(drawn, rng);
        var years = speeches.Select(x => x.Year.ToString(CultureInfo.InvariantCulture)).Distinct(StringComparer.Ordinal).ToList();
        var names = speeches.Select(x => PresidentName(x.Id)).Distinct(StringComparer.Ordinal).ToList();
        var questions = new List<ClozeQuestion>();
        int at = 0;
        foreach (string kind in new[] { WhichYear, WhichPresident })
        {
            var answers = kind == WhichYear ? years : names;
            int want = kind == WhichYear ? count / 2 : count - questions.Count;
            if (answers.Count < choices) continue;
            for (int n = 0; n < want && at < drawn.Count; n++, at++)
            {
                var (sp, sentence) = drawn[at];
                string answer = kind == WhichYear ? sp.Year.ToString(CultureInfo.InvariantCulture) : PresidentName(sp.Id);
                string frame = kind == WhichYear
                    ? $"\"{sentence}\" said the President in the State of the Union address of {ClozeQuestion.Blank}."
                    : $"\"{sentence}\" said President {ClozeQuestion.Blank} in the State of the Union address.";
                var pool = matched && kind == WhichYear ? answers.Where(a => Resembles("year", a, answer)).ToList() : answers;
                if (pool.Count < choices) pool = answers;
                questions.Add(new ClozeQuestion(sp.Id, kind, frame, answer, Fillers(answer, pool, choices, rng)));
            }
        }
        return questions;
    }

    /// <summary>The quoted sentence of an attribution question (between its first and last quote marks).</summary>
    public static string Quote(ClozeQuestion q)
    {
        int a = q.Sentence.IndexOf('"'), b = q.Sentence.LastIndexOf('"');
        return a >= 0 && b > a ? q.Sentence[(a + 1)..b] : q.Sentence;
    }

    /// <summary>
    /// The choice the model prefers for <paramref name="q"/>: the filled sentence's summed token
    /// log-probability, after <paramref name="passage"/> when one is given, in <paramref name="layout"/>
    /// (see <see cref="Sequence"/>).
    /// </summary>
    public static string Answer(IGenerationEngine engine, ITokenizer tok, int? bos, ClozeQuestion q, string? passage,
        SwapLayout layout = SwapLayout.Ralm, int neighbourTokens = DefaultNeighbourTokens, int ownTextTokens = 0)
        => q.Choices[Best(ChoiceScores(engine, tok, bos, q, passage, layout, neighbourTokens, ownTextTokens))];

    /// <summary>The first choice with the highest summed log-probability.</summary>
    static int Best((double Sum, int Tokens)[] scores)
    {
        int best = 0;
        for (int i = 1; i < scores.Length; i++) if (scores[i].Sum > scores[best].Sum) best = i;
        return best;
    }

    /// <summary>Each choice's summed log-probability over its scored tokens, and how many tokens were scored (the layout of <see cref="Sequence"/>).</summary>
    public static (double Sum, int Tokens)[] ChoiceScores(IGenerationEngine engine, ITokenizer tok, int? bos, ClozeQuestion q, string? passage,
        SwapLayout layout = SwapLayout.Ralm, int neighbourTokens = DefaultNeighbourTokens, int ownTextTokens = 0)
    {
        var scores = new (double, int)[q.Choices.Count];
        for (int c = 0; c < scores.Length; c++) scores[c] = SentenceScore(engine, tok, bos, q, q.Choices[c], passage, layout, neighbourTokens, ownTextTokens);
        return scores;
    }

    /// <summary>The log-likelihood of the sentence completed with <paramref name="filler"/> after <paramref name="passage"/>, and how many tokens it sums.</summary>
    static (double Sum, int Tokens) SentenceScore(IGenerationEngine engine, ITokenizer tok, int? bos, ClozeQuestion q, string filler, string? passage,
        SwapLayout layout, int neighbourTokens, int ownTextTokens)
    {
        var (ids, first) = Sequence(tok, bos, q, filler, passage, layout, engine.Config.ContextLength, neighbourTokens, ownTextTokens);
        var events = engine.Score(ids, 0);
        double sum = 0;
        for (int i = first; i < ids.Count; i++) sum += events[i].Logprob;
        return (sum, ids.Count - first);
    }

    /// <summary>The neighbour length of <c>tessera lab retro</c>'s training layout: a 64-token chunk plus its continuation.</summary>
    public const int DefaultNeighbourTokens = 128;

    /// <summary>
    /// The token sequence scored for one choice, and the index of its first scored token (every
    /// token from there to the end is the completed sentence).
    /// <list type="bullet">
    /// <item><see cref="SwapLayout.Ralm"/> (In-Context RALM): <c>[BOS] encode(passage + "\n\n") encode(sentence)</c>,
    /// the passage cut from the left so the sentence (at most half the context) fits; without a
    /// passage <c>[BOS] encode(sentence)</c>.</item>
    /// <item><see cref="SwapLayout.Retro"/> (the training layout of <c>tessera lab retro</c>, where a
    /// neighbour is exactly <paramref name="neighbourTokens"/> tokens of running text and the text
    /// goes on right after it with no separator): <c>[BOS] window encode(" " + sentence)</c>. The
    /// window is <paramref name="neighbourTokens"/> consecutive tokens of encode(passage), centred on
    /// where the blanked sentence's words sit in the passage (found by the longer of the texts before
    /// and after the blank, else the shorter; else the passage's middle window), or the whole passage
    /// when it is shorter. The sentence gets a leading space because in running text (and in the passage) a
    /// sentence follows one, so its first word is the same token it is inside the window. Without a
    /// passage: <c>[BOS] encode(" " + sentence)</c>. With <paramref name="ownTextTokens"/> = k &gt; 0 the
    /// slot where training has the chunk's own earlier text (chunk u−1) is filled too: after the window
    /// come the k passage tokens just before the located sentence (fewer at the passage's start, none
    /// when the sentence is not found): <c>[BOS] window own " " + sentence</c>. An attribution question's
    /// passage (<see cref="SourcedPassage"/>) ends with its quoted sentence and source line, so its window
    /// is the passage's last <paramref name="neighbourTokens"/> tokens, with no own-text slot.</item>
    /// </list>
    /// Without BOS and passage the first sentence token is context, not scored.
    /// </summary>
    public static (List<int> Ids, int First) Sequence(ITokenizer tok, int? bos, ClozeQuestion q, string choice, string? passage,
        SwapLayout layout, int contextLength, int neighbourTokens = DefaultNeighbourTokens, int ownTextTokens = 0)
    {
        if (ownTextTokens < 0) throw new ArgumentOutOfRangeException(nameof(ownTextTokens), ownTextTokens, "corpus swap: the own-text slot cannot be negative.");
        if (neighbourTokens < 1) throw new ArgumentOutOfRangeException(nameof(neighbourTokens), neighbourTokens, "corpus swap: the neighbour window needs at least one token.");
        var sentence = tok.Encode(layout == SwapLayout.Retro ? " " + q.Filled(choice) : q.Filled(choice));
        if (sentence.Count > contextLength / 2) sentence = sentence.GetRange(0, contextLength / 2);
        var ids = Context(tok, bos, q, passage, layout, contextLength - sentence.Count, sentence.Count, neighbourTokens, ownTextTokens);
        if (ids.Count == 0) { ids.Add(sentence[0]); sentence = sentence.GetRange(1, sentence.Count - 1); }
        int first = ids.Count;
        ids.AddRange(sentence);
        return (ids, first);
    }

    /// <summary>
    /// What precedes the scored or generated text in <paramref name="layout"/> (<see cref="Sequence"/>):
    /// BOS and the passage part, in at most <paramref name="room"/> tokens; the retro window is centred
    /// as if a text of <paramref name="centreTokens"/> tokens followed it.
    /// </summary>
    static List<int> Context(ITokenizer tok, int? bos, ClozeQuestion q, string? passage, SwapLayout layout, int room, int centreTokens,
        int neighbourTokens, int ownTextTokens)
    {
        var ids = new List<int>();
        if (bos is { } b) ids.Add(b);
        if (passage is not null)
        {
            room -= ids.Count;
            List<int> p;
            if (layout == SwapLayout.Ralm) p = tok.Encode(passage + "\n\n");
            else if (IsAttribution(q.Kind))
            {
                // The sourced passage ends with the quoted sentence and its source line: the window is its last tokens.
                p = tok.Encode(passage);
                int w = Math.Min(neighbourTokens, room);
                if (p.Count > w) p = p.GetRange(p.Count - w, w);
            }
            else
            {
                p = tok.Encode(passage);
                int w = Math.Min(neighbourTokens, room);
                int at = p.Count > w || ownTextTokens > 0 ? SentenceTokenOffset(tok, q, passage) : -1;
                var own = ownTextTokens > 0 && at > 0 ? p.GetRange(Math.Max(0, at - ownTextTokens), Math.Min(at, ownTextTokens)) : [];
                if (p.Count > w)
                {
                    int start = at < 0 ? (p.Count - w) / 2 : Math.Clamp(at - (w - Math.Min(centreTokens, w)) / 2, 0, p.Count - w);
                    p = p.GetRange(start, w);
                }
                p.AddRange(own);
            }
            if (p.Count > room) p = p.GetRange(p.Count - Math.Max(0, room), Math.Max(0, room));
            ids.AddRange(p);
        }
        return ids;
    }

    /// <summary>Tokens a generated filler may take (<see cref="GenerateFiller"/>): the longest answers, numbers such as 1,000,000,000, take about a dozen.</summary>
    public const int DefaultFillerTokens = 16;

    /// <summary>
    /// The prompt a generated answer continues: the layout of <see cref="Sequence"/> with the sentence
    /// cut at the blank, i.e. the passage part (if any), then the sentence's text before the blank
    /// (<see cref="ClozeQuestion.LeftContext"/>, with a leading space in the retro layout; trailing
    /// whitespace removed, so the filler's first token carries its own space as in running text). The
    /// retro window is centred for the blanked sentence's length (never the answer's). The left context
    /// is cut from its start when it and <paramref name="fillerTokens"/> would take over half the context.
    /// </summary>
    public static List<int> Prompt(ITokenizer tok, int? bos, ClozeQuestion q, string? passage, SwapLayout layout, int contextLength,
        int fillerTokens = DefaultFillerTokens, int neighbourTokens = DefaultNeighbourTokens, int ownTextTokens = 0)
    {
        if (ownTextTokens < 0) throw new ArgumentOutOfRangeException(nameof(ownTextTokens), ownTextTokens, "corpus swap: the own-text slot cannot be negative.");
        if (neighbourTokens < 1) throw new ArgumentOutOfRangeException(nameof(neighbourTokens), neighbourTokens, "corpus swap: the neighbour window needs at least one token.");
        if (fillerTokens < 1 || fillerTokens >= contextLength / 2) throw new ArgumentOutOfRangeException(nameof(fillerTokens), fillerTokens, $"corpus swap: a generated filler needs 1 to {contextLength / 2 - 1} tokens (half the context, {contextLength}, less one).");
        string left = q.LeftContext, space = layout == SwapLayout.Retro ? " " : "";
        var prefix = left.Length == 0 ? [] : tok.Encode(space + left);
        int keep = contextLength / 2 - fillerTokens;
        if (prefix.Count > keep) prefix = prefix.GetRange(prefix.Count - keep, keep);
        int centre = tok.Encode(space + q.Sentence).Count;
        var ids = Context(tok, bos, q, passage, layout, contextLength - prefix.Count - fillerTokens, centre, neighbourTokens, ownTextTokens);
        ids.AddRange(prefix);
        if (ids.Count == 0) throw new ArgumentException($"corpus swap: nothing to generate the filler from (no BOS, no passage, and the blank opens the sentence: \"{q.Sentence}\"); draw questions with a left-context minimum.");
        return ids;
    }

    /// <summary>
    /// The model's own filler for the blank: greedy decoding after <paramref name="prompt"/> (see
    /// <see cref="Prompt"/>) until the text has a complete first word (whitespace after it) or
    /// <paramref name="fillerTokens"/> tokens are spent; returns that first whitespace-delimited word
    /// as generated (<see cref="FirstWord"/>), to be compared by <see cref="ExactMatch"/>. Every answer
    /// the questions blank (a year, a number such as 1,250, a capitalised name) is one such word.
    /// </summary>
    public static string GenerateFiller(IGenerationEngine engine, ITokenizer tok, IReadOnlyList<int> prompt, int fillerTokens = DefaultFillerTokens)
    {
        var output = new List<int>();
        string text = "";
        foreach (var ev in engine.GenerateAsync(new GenerationRequest(prompt, fillerTokens, SamplingOptions.Greedy)).ToBlockingEnumerable())
        {
            output.Add(ev.Id);
            text = tok.Decode(output.ToArray());
            if (WordComplete(text)) break;   // the engine frees the sequence when the caller stops early
        }
        return FirstWord(text);
    }

    static bool WordComplete(string text)
    {
        var t = text.AsSpan().TrimStart();
        return t.Length > 0 && t.IndexOfAny(" \t\r\n") > 0;
    }

    /// <summary>The first whitespace-delimited word of <paramref name="generated"/> ("" when it is all whitespace).</summary>
    public static string FirstWord(string generated)
    {
        var t = generated.TrimStart();
        int end = t.AsSpan().IndexOfAny(" \t\r\n");
        return end < 0 ? t : t[..end];
    }

    /// <summary>
    /// An answer in the form exact match compares: surrounding whitespace removed, inner whitespace
    /// collapsed to one space, lower case (invariant culture), and punctuation and quotes stripped from
    /// both ends (<c>.,;:!?'"()[]</c>), so "Korea," and "korea" agree while "1960s" and "1960" do not.
    /// </summary>
    public static string NormaliseAnswer(string answer)
    {
        var s = string.Join(' ', answer.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).ToLowerInvariant();
        return s.Trim(AnswerPunctuation);
    }

    static readonly char[] AnswerPunctuation = ['.', ',', ';', ':', '!', '?', '\'', '"', '(', ')', '[', ']', ' ', '\u2018', '\u2019', '\u201C', '\u201D'];

    /// <summary>Whether a generated filler is the gold one after <see cref="NormaliseAnswer"/> of both; an empty generation never matches.</summary>
    public static bool ExactMatch(string generated, string gold)
    {
        string g = NormaliseAnswer(generated);
        return g.Length > 0 && g == NormaliseAnswer(gold);
    }

    /// <summary>
    /// Token offset in encode(<paramref name="passage"/>) where the question's sentence starts: located
    /// by the longer of the texts before and after the blank, else the shorter (found by the text after
    /// it, the sentence starts after the last sentence end before that text);
    /// −1 when neither occurs in it. Uses only the blanked sentence, never the answer.
    /// </summary>
    static int SentenceTokenOffset(ITokenizer tok, ClozeQuestion q, string passage)
    {
        int blank = q.Sentence.IndexOf(ClozeQuestion.Blank, StringComparison.Ordinal);
        string before = q.Sentence[..blank].TrimEnd(), after = q.Sentence[(blank + ClozeQuestion.Blank.Length)..].TrimStart();
        int TokensBefore(int charIndex) => charIndex <= 0 ? 0 : tok.Encode(passage[..charIndex].TrimEnd()).Count;
        // The longer side first: a short one ("In") may also occur elsewhere in the passage.
        foreach (bool useBefore in before.Length >= after.Length ? new[] { true, false } : [false, true])
        {
            if (useBefore && before.Length > 0 && passage.IndexOf(before, StringComparison.Ordinal) is >= 0 and var b) return TokensBefore(b);
            if (!useBefore && after.Length > 0 && passage.IndexOf(after, StringComparison.Ordinal) is >= 0 and var a)
            {
                // The blank holds one year, number or name (no sentence end inside), so the sentence starts after
                // the last sentence end before the text that follows the blank (the split of Sentences).
                var ends = SentenceEnd().Matches(passage[..a]);
                return TokensBefore(ends.Count == 0 ? 0 : ends[^1].Index + ends[^1].Length);
            }
        }
        return -1;
    }

    /// <summary>Accuracy per kind and overall, without and with retrieval; also whether the retrieved passage came from the question's own address.</summary>
    /// <remarks>
    /// With <paramref name="oracle"/> (a diagnostic probe, not a swap figure) the passage is not the
    /// search hit but text known to hold the answer (<see cref="OraclePassage"/>): a model that copies
    /// from its context should then answer nearly every question; if it does not, the layout, the
    /// scoring or the model's reading is at fault, and the nats per token say which.
    /// </remarks>
    public static CorpusSwapScore Evaluate(IGenerationEngine engine, ITokenizer tok, int? bos, Bm25Index index, IReadOnlyList<ClozeQuestion> questions, Action<string>? progress = null,
        SwapLayout layout = SwapLayout.Ralm, int neighbourTokens = DefaultNeighbourTokens, SwapOracle oracle = SwapOracle.None, IReadOnlyList<Speech>? speeches = null,
        int ownTextTokens = 0)
    {
        var rows = new List<CorpusSwapRow>();
        int done = 0;
        foreach (var q in questions)
        {
            var (hit, passage) = PassageFor(index, q, oracle, speeches);
            var plain = ChoiceScores(engine, tok, bos, q, null, layout, neighbourTokens, ownTextTokens);
            var with = ChoiceScores(engine, tok, bos, q, passage, layout, neighbourTokens, ownTextTokens);
            int answer = IndexOf(q.Choices, q.Answer);
            static bool Right((double Sum, int Tokens)[] s, int a) => Best(s) == a;
            bool holds = Holds(q, hit, passage);
            rows.Add(new CorpusSwapRow(q.Kind, Right(plain, answer), Right(with, answer), hit?.Passage.DocumentId == q.Speech, holds)
            {
                AnswerNatsPerToken = -plain[answer].Sum / plain[answer].Tokens,
                AnswerNatsPerTokenWithPassage = -with[answer].Sum / with[answer].Tokens,
            });
            if (++done % 25 == 0) progress?.Invoke($"corpus swap: {done}/{questions.Count} questions");
        }
        return Summarise(rows);
    }

    /// <summary>
    /// The top BM25 hit for the blanked sentence (the blank removed; for an attribution question its
    /// quote), and the passage to read: the hit's text (an attribution question reads it quoted with its
    /// source, <see cref="SourcedPassage"/>, the year taken from the hit's date), or the probe's (<see cref="OraclePassage"/>).
    /// </summary>
    static (SearchHit? Hit, string? Passage) PassageFor(Bm25Index index, ClozeQuestion q, SwapOracle oracle, IReadOnlyList<Speech>? speeches)
    {
        bool attribution = IsAttribution(q.Kind);
        if (attribution && oracle != SwapOracle.None) throw new ArgumentException("corpus swap: the oracle probes apply to cloze questions, not to which-year / which-president ones.");
        var hit = index.Search(attribution ? Quote(q) : q.Sentence.Replace(ClozeQuestion.Blank, " ", StringComparison.Ordinal), 1).FirstOrDefault();
        if (attribution)
            return (hit, hit is null ? null : SourcedPassage(hit.Passage.Text, hit.Passage.DocumentId,
                hit.Passage.Date?.Year ?? throw new InvalidDataException($"corpus swap: passage of '{hit.Passage.DocumentId}' has no date, so its year cannot be cited."), Quote(q)));
        return (hit, oracle == SwapOracle.None ? hit?.Passage.Text : OraclePassage(q, oracle, speeches));
    }

    /// <summary>
    /// Whether the passage read holds the answer: for a cloze question, the completed sentence is in it;
    /// for an attribution question, it is a passage of the question's own address (its source line then names the answer).
    /// </summary>
    static bool Holds(ClozeQuestion q, SearchHit? hit, string? passage) => IsAttribution(q.Kind)
        ? hit?.Passage.DocumentId == q.Speech
        : passage is not null && passage.Contains(q.Filled(q.Answer), StringComparison.Ordinal);

    /// <summary>
    /// The corpus swap with generated answers (<c>eval swap --answer generate</c>): for each question the
    /// model greedily writes the blank's filler after the sentence's left context (<see cref="Prompt"/>,
    /// <see cref="GenerateFiller"/>), without and then with the passage, in <paramref name="layout"/>;
    /// an answer is right when it is the gold filler, as the word it stands in (<see cref="ClozeQuestion.AnswerAsWritten"/>), by <see cref="ExactMatch"/>. No choices are shown,
    /// so the no-index floor is what the model can produce from the left context alone, not what it
    /// can tell apart by fit among distractors. Rows carry the generated fillers and, as in
    /// <see cref="Evaluate"/>, the right sentence's nats per token without and with the passage.
    /// </summary>
    public static CorpusSwapScore EvaluateGenerated(IGenerationEngine engine, ITokenizer tok, int? bos, Bm25Index index, IReadOnlyList<ClozeQuestion> questions,
        Action<string>? progress = null, SwapLayout layout = SwapLayout.Ralm, int neighbourTokens = DefaultNeighbourTokens, SwapOracle oracle = SwapOracle.None,
        IReadOnlyList<Speech>? speeches = null, int ownTextTokens = 0, int fillerTokens = DefaultFillerTokens)
    {
        int ctx = engine.Config.ContextLength;
        var rows = new List<CorpusSwapRow>();
        int done = 0;
        foreach (var q in questions)
        {
            var (hit, passage) = PassageFor(index, q, oracle, speeches);
            string plain = GenerateFiller(engine, tok, Prompt(tok, bos, q, null, layout, ctx, fillerTokens, neighbourTokens, ownTextTokens), fillerTokens);
            string with = GenerateFiller(engine, tok, Prompt(tok, bos, q, passage, layout, ctx, fillerTokens, neighbourTokens, ownTextTokens), fillerTokens);
            double Nats(string? p)
            {
                var (sum, tokens) = SentenceScore(engine, tok, bos, q, q.Answer, p, layout, neighbourTokens, ownTextTokens);
                return -sum / tokens;
            }
            bool holds = Holds(q, hit, passage);
            rows.Add(new CorpusSwapRow(q.Kind, ExactMatch(plain, q.AnswerAsWritten), ExactMatch(with, q.AnswerAsWritten), hit?.Passage.DocumentId == q.Speech, holds)
            {
                AnswerNatsPerToken = Nats(null),
                AnswerNatsPerTokenWithPassage = Nats(passage),
                GeneratedWithout = plain,
                GeneratedWith = with,
            });
            if (++done % 25 == 0) progress?.Invoke($"corpus swap: {done}/{questions.Count} questions");
        }
        return Summarise(rows);
    }

    /// <summary>Per-kind rows and the row over all questions.</summary>
    static CorpusSwapScore Summarise(List<CorpusSwapRow> rows)
    {
        CorpusSwapKind Of(string kind, IEnumerable<CorpusSwapRow> r)
        {
            var l = r.ToList();
            var right = l.Where(x => x.WithIndex).ToList();
            return new CorpusSwapKind(kind, l.Count, l.Count(x => x.Plain) / (double)Math.Max(1, l.Count), l.Count(x => x.WithIndex) / (double)Math.Max(1, l.Count),
                l.Count(x => x.RetrievedOwnSpeech) / (double)Math.Max(1, l.Count), l.Count(x => x.PassageHoldsSentence) / (double)Math.Max(1, l.Count))
            {
                CitedPassageHoldsAnswerWhenRight = right.Count == 0 ? double.NaN : right.Count(x => x.PassageHoldsSentence) / (double)right.Count,
                AnswerNatsPerToken = l.Count == 0 ? double.NaN : l.Average(x => x.AnswerNatsPerToken),
                AnswerNatsPerTokenWithPassage = l.Count == 0 ? double.NaN : l.Average(x => x.AnswerNatsPerTokenWithPassage),
            };
        }
        return new CorpusSwapScore([.. rows.GroupBy(r => r.Kind).Select(g => Of(g.Key, g)), Of("all", rows)]) { Rows = rows };
    }

    /// <summary>
    /// The probe's passage: <see cref="SwapOracle.Sentence"/>, the completed sentence alone;
    /// <see cref="SwapOracle.Address"/>, the completed sentence with the three sentences before and
    /// after it in its own address (running text about as long as a training neighbour, whitespace collapsed).
    /// </summary>
    public static string OraclePassage(ClozeQuestion q, SwapOracle oracle, IReadOnlyList<Speech>? speeches)
    {
        string filled = q.Filled(q.Answer);
        if (oracle == SwapOracle.Sentence) return filled;
        var speech = speeches?.FirstOrDefault(s => s.Id == q.Speech) ?? throw new ArgumentException($"corpus swap: the address oracle needs the question's address '{q.Speech}'.");
        var sentences = Sentences(speech.Text).ToList();
        int at = sentences.IndexOf(filled);
        if (at < 0) throw new InvalidDataException($"corpus swap: the completed sentence is not a sentence of {q.Speech}.");
        return string.Join(" ", sentences.Skip(Math.Max(0, at - 3)).Take(at - Math.Max(0, at - 3) + 4));
    }

    static int IndexOf(IReadOnlyList<string> choices, string answer)
    {
        for (int i = 0; i < choices.Count; i++) if (choices[i] == answer) return i;
        throw new ArgumentException($"corpus swap: the answer '{answer}' is not among the choices.");
    }

    static bool Resembles(string kind, string candidate, string answer) => kind switch
    {
        "year" => Math.Abs(int.Parse(candidate, CultureInfo.InvariantCulture) - int.Parse(answer, CultureInfo.InvariantCulture)) <= 20,
        "number" => candidate.Length == answer.Length,
        _ => candidate[0] == answer[0],
    };

    /// <summary>
    /// The answer and <paramref name="choices"/> − 1 distinct distractors drawn from <paramref name="pool"/>
    /// (which holds at least that many distinct answers), in shuffled order.
    /// </summary>
    static List<string> Fillers(string answer, List<string> pool, int choices, Random rng)
    {
        var fillers = new List<string> { answer };
        while (fillers.Count < choices)
        {
            var d = pool[rng.Next(pool.Count)];
            if (!fillers.Contains(d, StringComparer.Ordinal)) fillers.Add(d);
        }
        Shuffle(fillers, rng);
        return fillers;
    }

    static void Shuffle<T>(List<T> list, Random rng)
    {
        for (int i = list.Count - 1; i > 0; i--) { int j = rng.Next(i + 1); (list[i], list[j]) = (list[j], list[i]); }
    }
}

/// <summary>How <c>eval swap</c> lays out the retrieved passage and the sentence it scores (<see cref="CorpusSwapTask.Sequence"/>).</summary>
public enum SwapLayout
{
    /// <summary>In-Context RALM: BOS, the whole passage, a blank line, the sentence.</summary>
    Ralm,
    /// <summary><c>tessera lab retro</c>'s training layout: BOS, a fixed-length window of the passage around the sentence, the sentence running on with no separator.</summary>
    Retro,
}

/// <summary>What <c>eval swap --oracle-passage</c> puts in place of the search hit (a probe of whether the model reads its context).</summary>
public enum SwapOracle
{
    /// <summary>No probe: the top BM25 passage.</summary>
    None,
    /// <summary>The completed sentence alone.</summary>
    Sentence,
    /// <summary>The completed sentence inside its own address's text (three sentences either side).</summary>
    Address,
}

/// <summary>One question's outcome.</summary>
/// <param name="Kind">Question kind.</param>
/// <param name="Plain">Right without the index.</param>
/// <param name="WithIndex">Right with the index.</param>
/// <param name="RetrievedOwnSpeech">The top passage came from the question's address.</param>
/// <param name="PassageHoldsSentence">The top passage contains the completed sentence.</param>
public sealed record CorpusSwapRow(string Kind, bool Plain, bool WithIndex, bool RetrievedOwnSpeech, bool PassageHoldsSentence)
{
    /// <summary>Nats per scored token of the sentence completed with the right answer, without the passage.</summary>
    public double AnswerNatsPerToken { get; init; }
    /// <summary>The same after the passage: far below <see cref="AnswerNatsPerToken"/> when the model copies from a passage that holds the sentence.</summary>
    public double AnswerNatsPerTokenWithPassage { get; init; }
    /// <summary>With generated answers: the filler the model wrote without the passage (null when it chose among fillers).</summary>
    public string? GeneratedWithout { get; init; }
    /// <summary>With generated answers: the filler the model wrote with the passage.</summary>
    public string? GeneratedWith { get; init; }
}

/// <summary>Accuracy of one kind of question (or of all).</summary>
/// <param name="Kind">year, number, name or all.</param>
/// <param name="Questions">How many.</param>
/// <param name="AccuracyWithout">Accuracy without the index (chance: 0.25).</param>
/// <param name="AccuracyWith">Accuracy with the index.</param>
/// <param name="RetrievedOwnSpeech">Fraction whose top passage came from the question's address.</param>
/// <param name="PassageHoldsSentence">Fraction whose top passage contains the completed sentence.</param>
public sealed record CorpusSwapKind(string Kind, int Questions, double AccuracyWithout, double AccuracyWith, double RetrievedOwnSpeech, double PassageHoldsSentence)
{
    /// <summary>
    /// Among the questions answered right with the index, the fraction whose passage (the one a
    /// <c>serve --index</c> reply cites for the same query) contains the completed sentence; NaN when none was right.
    /// </summary>
    public double CitedPassageHoldsAnswerWhenRight { get; init; }
    /// <summary>Mean over the questions of <see cref="CorpusSwapRow.AnswerNatsPerToken"/>.</summary>
    public double AnswerNatsPerToken { get; init; }
    /// <summary>Mean over the questions of <see cref="CorpusSwapRow.AnswerNatsPerTokenWithPassage"/>.</summary>
    public double AnswerNatsPerTokenWithPassage { get; init; }
}

/// <summary>Per-kind rows, the last one over all questions.</summary>
/// <param name="Kinds">The rows.</param>
public sealed record CorpusSwapScore(IReadOnlyList<CorpusSwapKind> Kinds)
{
    /// <summary>The per-question outcomes the rows summarise, in question order.</summary>
    public IReadOnlyList<CorpusSwapRow> Rows { get; init; } = [];
}
