using System.Text;
using Tessera.Text;

namespace Tessera.Evals.LongContext;

/// <summary>The synthetic long-context tasks (after RULER, Hsieh et al. 2024), each with exact answers.</summary>
public enum RulerTask
{
    /// <summary>One needle ("The magic number for KEY is VALUE.") in the haystack; asked for its value.</summary>
    SingleNeedle,
    /// <summary>Four needles with different keys; asked for one of them.</summary>
    MultiKey,
    /// <summary>One key with four values spread through the haystack; asked for all of them.</summary>
    MultiValue,
    /// <summary>Four needles; asked for two keys' values at once.</summary>
    MultiQuery,
    /// <summary>A variable assigned a number, then chained through others ("VAR B = VAR A."); asked for every variable holding it.</summary>
    VariableTracking,
    /// <summary>A long list of words where three recur far more often than the rest; asked for those three.</summary>
    CommonWords,
}

/// <summary>One generated item: the prompt text, the strings the answer must contain, and where the (first) needle sits.</summary>
/// <param name="Task">Which task.</param>
/// <param name="Prompt">Haystack with needles, ending in the question's cue (the answer follows directly).</param>
/// <param name="Answers">Every string a correct answer contains.</param>
/// <param name="Depth">Fraction of the haystack before the first needle (0 = start, 1 = end).</param>
/// <param name="Tokens">Prompt length in tokens under the tokenizer it was built for.</param>
public sealed record RulerItem(RulerTask Task, string Prompt, IReadOnlyList<string> Answers, double Depth, int Tokens)
{
    /// <summary>A training document: the prompt followed by the answers (space-separated) and a full stop.</summary>
    public string WithAnswer => Prompt + " " + string.Join(" ", Answers) + ".";
}

/// <summary>
/// Generates RULER-style items at a target length in tokens of a given tokenizer, deterministically
/// from a seed. The haystack is either repeated neutral sentences (RULER's "noise") or text from a
/// caller-supplied corpus; needles are inserted at sentence boundaries at the requested depth.
/// Keys are two words from fixed lists, values are 7-digit numbers, so an answer is an exact
/// string that cannot occur in the haystack by chance.
/// </summary>
public sealed class RulerTasks
{
    static readonly string[] Adjectives = ["amber", "brisk", "calm", "dusty", "eager", "faint", "gentle", "hollow", "icy", "jolly", "keen", "lively",
        "mellow", "nimble", "olive", "proud", "quiet", "rusty", "silent", "tidy", "upper", "vivid", "wild", "young", "zesty"];
    static readonly string[] Nouns = ["falcon", "harbor", "meadow", "lantern", "river", "canyon", "orchard", "pebble", "glacier", "thicket", "ember",
        "violin", "saddle", "compass", "beacon", "quarry", "willow", "anchor", "marble", "tundra", "cobalt", "ferry", "garnet", "hazel", "juniper"];
    static readonly string[] Noise = ["The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.", "There and back again."];
    static readonly string[] Words = ["apple", "bridge", "candle", "desert", "engine", "forest", "guitar", "hammer", "island", "jacket", "kettle", "ladder",
        "mirror", "needle", "oyster", "pillow", "quiver", "rocket", "shovel", "turtle", "umbrella", "valley", "wagon", "yogurt", "zipper", "basket",
        "carpet", "dragon", "feather", "goblet", "helmet", "insect", "jigsaw", "kitten", "lemon", "magnet", "napkin", "onion", "parrot", "ribbon"];

    readonly ITokenizer tokenizer;
    readonly IReadOnlyList<string> sentences;
    readonly int[] sentenceTokens; // tokens of " " + sentence, measured once (0 = not yet)

    /// <param name="tokenizer">The tokenizer lengths are measured in.</param>
    /// <param name="haystack">Haystack text (split into sentences), or null for RULER's repeated noise sentences.</param>
    public RulerTasks(ITokenizer tokenizer, string? haystack = null)
    {
        this.tokenizer = tokenizer;
        sentences = haystack is null ? Noise : SplitSentences(haystack);
        if (sentences.Count == 0) throw new ArgumentException("The haystack text has no sentences.");
        sentenceTokens = new int[sentences.Count];
    }

    static List<string> SplitSentences(string text)
    {
        var result = new List<string>();
        var sb = new StringBuilder();
        foreach (char c in text)
        {
            sb.Append(char.IsWhiteSpace(c) ? ' ' : c);
            if (c is '.' or '!' or '?' && sb.Length > 1)
            {
                string s = string.Join(' ', sb.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries));
                if (s.Length >= 8 && s.Length <= 400) result.Add(s);
                sb.Clear();
            }
        }
        return result;
    }

    /// <summary>Generates one item of <paramref name="task"/> whose prompt is about <paramref name="tokens"/> tokens (never more).</summary>
    /// <param name="task">The task.</param>
    /// <param name="tokens">Target prompt length in tokens (≥ 64).</param>
    /// <param name="depth">Where the first needle goes, 0..1 (ignored by <see cref="RulerTask.CommonWords"/>).</param>
    /// <param name="seed">Item seed: the same arguments give the same item.</param>
    public RulerItem Generate(RulerTask task, int tokens, double depth, ulong seed)
    {
        if (tokens < 64) throw new ArgumentException($"Long-context items need at least 64 tokens (got {tokens}).");
        if (depth is < 0 or > 1 || double.IsNaN(depth)) throw new ArgumentException($"Needle depth must be in [0, 1] (got {depth}).");
        var rng = new Random(unchecked((int)(seed * 0x9E3779B97F4A7C15UL >> 33)) ^ (int)task * 7919 ^ tokens);
        if (task == RulerTask.CommonWords) return CommonWordsItem(tokens, rng);
        var keys = DistinctKeys(rng, 4);
        string Value() => rng.Next(1_000_000, 10_000_000).ToString(System.Globalization.CultureInfo.InvariantCulture);
        List<string> needles;
        List<string> answers;
        string question;
        switch (task)
        {
            case RulerTask.SingleNeedle:
            {
                string v = Value();
                needles = [$"The magic number for {keys[0]} is {v}."];
                answers = [v];
                question = $"What is the magic number for {keys[0]}? The magic number for {keys[0]} is";
                break;
            }
            case RulerTask.MultiKey:
            {
                var values = keys.Select(_ => Value()).ToArray();
                needles = [.. keys.Select((k, i) => $"The magic number for {k} is {values[i]}.")];
                int asked = rng.Next(keys.Length);
                answers = [values[asked]];
                question = $"What is the magic number for {keys[asked]}? The magic number for {keys[asked]} is";
                break;
            }
            case RulerTask.MultiValue:
            {
                var values = Enumerable.Range(0, 4).Select(_ => Value()).ToArray();
                needles = [.. values.Select(v => $"One of the magic numbers for {keys[0]} is {v}.")];
                answers = [.. values];
                question = $"What are all the magic numbers for {keys[0]}? The magic numbers for {keys[0]} are";
                break;
            }
            case RulerTask.MultiQuery:
            {
                var values = keys.Select(_ => Value()).ToArray();
                needles = [.. keys.Select((k, i) => $"The magic number for {k} is {values[i]}.")];
                int a = rng.Next(4), b = (a + 1 + rng.Next(3)) % 4;
                answers = [values[a], values[b]];
                question = $"What are the magic numbers for {keys[a]} and {keys[b]}? The magic numbers for {keys[a]} and {keys[b]} are";
                break;
            }
            case RulerTask.VariableTracking:
            {
                string v = Value();
                var names = Enumerable.Range(0, 4).Select(_ => new string([.. Enumerable.Range(0, 5).Select(_ => (char)('A' + rng.Next(26)))])).Distinct().ToList();
                needles = [$"VAR {names[0]} = {v}.", .. Enumerable.Range(1, names.Count - 1).Select(i => $"VAR {names[i]} = VAR {names[i - 1]}.")];
                answers = [.. names];
                question = $"Which variables are assigned the value {v}? The variables assigned the value {v} are";
                break;
            }
            default: throw new ArgumentOutOfRangeException(nameof(task));
        }
        return Place(task, needles, answers, question, tokens, depth, rng);
    }

    string[] DistinctKeys(Random rng, int n)
    {
        var set = new HashSet<string>();
        while (set.Count < n) set.Add(Adjectives[rng.Next(Adjectives.Length)] + "-" + Nouns[rng.Next(Nouns.Length)]);
        return [.. set];
    }

    int Count(string text) => tokenizer.Encode(text).Count;

    /// <summary>Fills haystack sentences around the needles until the prompt reaches the target; needles keep their order, the first at the depth.</summary>
    RulerItem Place(RulerTask task, List<string> needles, List<string> answers, string question, int tokens, double depth, Random rng)
    {
        // Budget: target minus the needles and question; sentences are measured one at a time
        // (plus the joining space), so the total is close to the target without re-encoding it.
        int fixedTokens = Count(string.Join(" ", needles) + " " + question) + needles.Count + 2;
        int budget = tokens - fixedTokens;
        if (budget < 8) throw new ArgumentException($"{tokens} tokens leave no room for a haystack around {needles.Count} needle{(needles.Count == 1 ? "" : "s")} and the question ({fixedTokens} tokens); ask for a longer length.");
        var hay = new List<string>();
        int used = 0, start = rng.Next(sentences.Count);
        for (int i = 0; ; i++)
        {
            int at = (start + i) % sentences.Count;
            string s = sentences[at];
            int n = sentenceTokens[at] > 0 ? sentenceTokens[at] : sentenceTokens[at] = Count(" " + s);
            if (used + n > budget) break;
            hay.Add(s);
            used += n;
        }
        // The first needle at the depth; the others spread evenly after it (wrapping to before it).
        int first = (int)Math.Round(depth * hay.Count);
        var slots = new int[needles.Count];
        for (int k = 0; k < needles.Count; k++)
            slots[k] = k == 0 ? first : (first + (int)Math.Round((double)k * hay.Count / needles.Count)) % (hay.Count + 1);
        var order = Enumerable.Range(0, needles.Count).OrderBy(k => slots[k]).ThenBy(k => k).ToArray();
        var sb = new StringBuilder();
        int next = 0;
        for (int i = 0; i <= hay.Count; i++)
        {
            while (next < order.Length && slots[order[next]] == i) { Append(sb, needles[order[next]]); next++; }
            if (i < hay.Count) Append(sb, hay[i]);
        }
        Append(sb, question);
        string prompt = sb.ToString();
        return new RulerItem(task, prompt, answers, depth, Count(prompt));
    }

    static void Append(StringBuilder sb, string s) { if (sb.Length > 0) sb.Append(' '); sb.Append(s); }

    RulerItem CommonWordsItem(int tokens, Random rng)
    {
        var pool = Words.OrderBy(_ => rng.Next()).ToArray();
        var common = pool[..3];
        var rare = pool[3..];
        string question = "What are the three most common words in the list above? The three most common words are";
        int budget = tokens - Count(question) - 4;
        var list = new List<string>();
        var wordTokens = new Dictionary<string, int>();
        int used = 0;
        // Each common word appears in a ratio of 4 : 1 to each rare word (RULER's common-words setting uses 30 : 3).
        for (int i = 0; ; i++)
        {
            string w = i % 11 < 9 ? common[i % 11 % 3] : rare[rng.Next(rare.Length)];
            if (!wordTokens.TryGetValue(w, out int n)) wordTokens[w] = n = Count(" " + w + ",");
            if (used + n > budget) break;
            list.Add(w);
            used += n;
        }
        var shuffled = list.OrderBy(_ => rng.Next()).ToList();
        string prompt = string.Join(", ", shuffled) + ". " + question;
        // The answer is what the list really holds: the three most frequent words (ties broken by name, never hit at these ratios).
        var top = shuffled.GroupBy(w => w).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Take(3).Select(g => g.Key).ToList();
        return new RulerItem(RulerTask.CommonWords, prompt, top, double.NaN, Count(prompt));
    }
}
