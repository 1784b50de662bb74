using System.Text.Json;
using Tessera.Text;

namespace Tessera.Evals;

/// <summary>A grammatical sentence and its minimally different ungrammatical twin.</summary>
public sealed record MinimalPair(string Good, string Bad);

/// <summary>
/// Accuracy on one minimal-pair set: the share of pairs whose good sentence gets the higher total
/// log-probability (each sentence scored whole after BOS, so a tie counts as wrong). Per-item
/// arrays feed the contamination split and are left out of JSON.
/// </summary>
public sealed record MinimalPairResult(string Name, int Pairs, int Correct, double MeanGoodLogProb, double MeanBadLogProb)
{
    /// <summary>Share of pairs scored correctly.</summary>
    public double Accuracy => Pairs > 0 ? (double)Correct / Pairs : double.NaN;
    /// <summary>Per pair: good scored above bad.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public bool[] ItemCorrect { get; init; } = [];
    /// <summary>Per pair: log p(good sentence).</summary>
    [System.Text.Json.Serialization.JsonIgnore] public double[] ItemGoodLogProb { get; init; } = [];
}

/// <summary>
/// BLiMP-style minimal pairs: JSON lines with <c>sentence_good</c> and <c>sentence_bad</c> (other
/// fields ignored). Scoring compares log p(good) with log p(bad), whole sentences, as in the BLiMP
/// paper's "simple LM method".
/// </summary>
public static class MinimalPairs
{
    /// <summary>
    /// Reads a jsonl file; throws <see cref="InvalidDataException"/> naming the file and line for
    /// an empty file, malformed JSON, or a missing/empty sentence field.
    /// </summary>
    public static IReadOnlyList<MinimalPair> Load(string path, int? limit = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Minimal-pair file not found: {path}", path);
        var pairs = new List<MinimalPair>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (limit is { } l && pairs.Count >= l) break;
            try
            {
                using var doc = JsonDocument.Parse(line);
                string good = Field(doc.RootElement, "sentence_good"), bad = Field(doc.RootElement, "sentence_bad");
                pairs.Add(new MinimalPair(good, bad));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"{path}:{lineNo}: not a minimal pair ({e.Message}).");
            }
        }
        if (pairs.Count == 0) throw new InvalidDataException($"{path}: no minimal pairs (the file is empty).");
        return pairs;

        static string Field(JsonElement e, string name)
        {
            if (!e.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(v.GetString()))
                throw new KeyNotFoundException($"no non-empty \"{name}\" string");
            return v.GetString()!;
        }
    }

    /// <summary>The <c>*.jsonl</c> files of a folder in name order; a clear error when there are none.</summary>
    public static IReadOnlyList<string> ListFiles(string directoryOrFile)
    {
        if (File.Exists(directoryOrFile)) return [directoryOrFile];
        if (!Directory.Exists(directoryOrFile)) throw new DirectoryNotFoundException($"Minimal-pair folder not found: {directoryOrFile}");
        var files = Directory.GetFiles(directoryOrFile, "*.jsonl");
        Array.Sort(files, StringComparer.Ordinal);
        if (files.Length == 0) throw new InvalidDataException($"{directoryOrFile}: no *.jsonl minimal-pair files.");
        return files;
    }

    /// <summary>Token ids of a sentence as scored (after a BOS context).</summary>
    public static int[] Encode(ITokenizer tokenizer, string sentence) => [.. tokenizer.Encode(sentence)];

    /// <summary>Scores every pair (good and bad sentences batched together).</summary>
    public static MinimalPairResult Evaluate(LogLikelihoodScorer scorer, ITokenizer tokenizer, int bos, string name, IReadOnlyList<MinimalPair> pairs)
    {
        var requests = new ScoringRequest[pairs.Count * 2];
        int[] ctx = [bos];
        for (int i = 0; i < pairs.Count; i++)
        {
            requests[2 * i] = new ScoringRequest(ctx, Encode(tokenizer, pairs[i].Good));
            requests[2 * i + 1] = new ScoringRequest(ctx, Encode(tokenizer, pairs[i].Bad));
        }
        var scores = scorer.Score(requests);
        var correct = new bool[pairs.Count];
        var good = new double[pairs.Count];
        int n = 0;
        double sumGood = 0, sumBad = 0;
        for (int i = 0; i < pairs.Count; i++)
        {
            good[i] = scores[2 * i].LogProb;
            correct[i] = scores[2 * i].LogProb > scores[2 * i + 1].LogProb;
            if (correct[i]) n++;
            sumGood += scores[2 * i].LogProb;
            sumBad += scores[2 * i + 1].LogProb;
        }
        return new MinimalPairResult(name, pairs.Count, n, sumGood / pairs.Count, sumBad / pairs.Count) { ItemCorrect = correct, ItemGoodLogProb = good };
    }
}
