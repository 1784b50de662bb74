using System.Globalization;

namespace Tessera.Retrieval.Expansion;

/// <summary>One WordNet synset: its lemmas (spaces for underscores), its definition and its usage examples.</summary>
/// <param name="Id">Part of speech and byte offset, e.g. <c>n00001740</c>.</param>
/// <param name="Words">Lemmas in this synset, lower case.</param>
/// <param name="Definition">The gloss's definition part.</param>
/// <param name="Examples">The gloss's quoted examples.</param>
public sealed record Synset(string Id, IReadOnlyList<string> Words, string Definition, IReadOnlyList<string> Examples);

/// <summary>
/// A reader of the WordNet 3 database files that Debian's <c>wordnet-base</c> installs
/// (<c>/usr/share/wordnet/index.*</c> and <c>data.*</c>): lemma → synsets in sense order, and each
/// synset's words, definition and examples. Used for query expansion (synonyms) and to generate
/// the reverse-dictionary retrieval task.
/// </summary>
public sealed class WordNet
{
    /// <summary>Where Debian's wordnet-base puts the database.</summary>
    public const string DefaultFolder = "/usr/share/wordnet";

    static readonly (string File, char Pos)[] Parts = [("noun", 'n'), ("verb", 'v'), ("adj", 'a'), ("adv", 'r')];

    readonly Dictionary<string, List<Synset>> senses = new(StringComparer.Ordinal);
    readonly Dictionary<string, Synset> synsets = new(StringComparer.Ordinal);

    WordNet() { }

    /// <summary>True when the database files are present in <paramref name="folder"/>.</summary>
    public static bool IsInstalled(string folder = DefaultFolder) => File.Exists(Path.Combine(folder, "data.noun")) && File.Exists(Path.Combine(folder, "index.noun"));

    /// <summary>Every lemma with at least one sense (lower case, spaces for underscores).</summary>
    public IEnumerable<string> Lemmas => senses.Keys;

    /// <summary>Synsets loaded.</summary>
    public int SynsetCount => synsets.Count;

    /// <summary>Loads the database; a missing one is a clear error naming the Debian package.</summary>
    public static WordNet Load(string folder = DefaultFolder)
    {
        if (!IsInstalled(folder)) throw new FileNotFoundException($"WordNet not found in {folder} (install the Debian package wordnet-base)");
        var wn = new WordNet();
        foreach (var (file, pos) in Parts)
        {
            char ssPos = pos;
            foreach (var line in File.ReadLines(Path.Combine(folder, "data." + file)))
            {
                if (line.Length == 0 || line[0] == ' ') continue;   // licence header
                int bar = line.IndexOf(" | ", StringComparison.Ordinal);
                var head = (bar < 0 ? line : line[..bar]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
                int wcnt = int.Parse(head[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                var words = new List<string>(wcnt);
                for (int i = 0; i < wcnt; i++) words.Add(CleanWord(head[4 + 2 * i]));
                string gloss = bar < 0 ? "" : line[(bar + 3)..].Trim();
                var (definition, examples) = SplitGloss(gloss);
                wn.synsets[ssPos + head[0]] = new Synset(ssPos + head[0], words, definition, examples);
            }
            foreach (var line in File.ReadLines(Path.Combine(folder, "index." + file)))
            {
                if (line.Length == 0 || line[0] == ' ') continue;
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                int count = int.Parse(f[2], CultureInfo.InvariantCulture);
                string lemma = f[0].Replace('_', ' ');
                if (!wn.senses.TryGetValue(lemma, out var list)) wn.senses[lemma] = list = [];
                for (int i = f.Length - count; i < f.Length; i++)
                    if (wn.synsets.TryGetValue(pos + f[i], out var s)) list.Add(s);
            }
        }
        return wn;
    }

    /// <summary>The synsets of <paramref name="lemma"/> in WordNet's sense order (nouns, verbs, adjectives, adverbs); empty when unknown.</summary>
    public IReadOnlyList<Synset> Senses(string lemma) => senses.TryGetValue(lemma.ToLowerInvariant(), out var l) ? l : [];

    /// <summary>Synonyms of <paramref name="word"/> from its first <paramref name="maxSenses"/> senses, most common sense first, without the word itself.</summary>
    public List<string> Synonyms(string word, int maxSenses = 2)
    {
        var result = new List<string>();
        foreach (var s in Senses(word).Take(maxSenses))
            foreach (var w in s.Words)
                if (w != word && !result.Contains(w)) result.Add(w);
        return result;
    }

    static string CleanWord(string raw)
    {
        int paren = raw.IndexOf('(');   // adjective markers such as "(a)", "(p)"
        return (paren > 0 ? raw[..paren] : raw).Replace('_', ' ').ToLowerInvariant();
    }

    /// <summary>Splits a gloss into its definition and its double-quoted examples.</summary>
    public static (string Definition, List<string> Examples) SplitGloss(string gloss)
    {
        var examples = new List<string>();
        int q = gloss.IndexOf('"');
        string definition = (q < 0 ? gloss : gloss[..q]).Trim().TrimEnd(';').Trim();
        while (q >= 0)
        {
            int end = gloss.IndexOf('"', q + 1);
            if (end < 0) break;
            examples.Add(gloss[(q + 1)..end]);
            q = gloss.IndexOf('"', end + 1);
        }
        return (definition, examples);
    }
}
