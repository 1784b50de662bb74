using System.Text;
using Tessera.Text;

namespace Tessera.Evals;

/// <summary>A context, its candidate endings, and the index of the right one.</summary>
public sealed record MultipleChoiceItem(string Context, IReadOnlyList<string> Endings, int Label);

/// <summary>
/// Accuracy on one multiple-choice set under three rules for picking the ending: the highest
/// summed log-likelihood (<see cref="Accuracy"/>), the highest mean log-likelihood per token
/// (<see cref="AccuracyPerToken"/>, what llama.cpp's --hellaswag reports), and the highest
/// log-likelihood per UTF-8 byte of the ending (<see cref="AccuracyPerByte"/>, lm-evaluation-harness
/// "acc_norm"). Per-item arrays feed the contamination split and are left out of JSON.
/// </summary>
public sealed record MultipleChoiceResult(string Name, int Items, int Correct, int CorrectPerToken, int CorrectPerByte)
{
    /// <summary>Fraction of items where the ending with the highest summed log-likelihood is the label (NaN for an empty set).</summary>
    public double Accuracy => Items > 0 ? (double)Correct / Items : double.NaN;
    /// <summary>Fraction of items where the ending with the highest mean log-likelihood per token is the label (NaN for an empty set).</summary>
    public double AccuracyPerToken => Items > 0 ? (double)CorrectPerToken / Items : double.NaN;
    /// <summary>Fraction of items where the ending with the highest log-likelihood per UTF-8 byte is the label (NaN for an empty set).</summary>
    public double AccuracyPerByte => Items > 0 ? (double)CorrectPerByte / Items : double.NaN;
    /// <summary>Per item: the per-token rule picked the label (the headline rule).</summary>
    [System.Text.Json.Serialization.JsonIgnore] public bool[] ItemCorrect { get; init; } = [];
    /// <summary>Per item: mean log-likelihood per token of the right ending.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public double[] ItemLabelLogProbPerToken { get; init; } = [];
}

/// <summary>
/// Multiple-choice tasks in the llama.cpp <c>--hellaswag</c> text format: six lines per item —
/// the context, the 0-based index of the right ending, then four endings. Each ending is scored
/// as the continuation " " + ending after BOS + context.
/// </summary>
public static class MultipleChoice
{
    /// <summary>Endings per item in the HellaSwag format.</summary>
    public const int Choices = 4;

    /// <summary>
    /// Reads a HellaSwag-format file; throws <see cref="InvalidDataException"/> naming the file and
    /// line for an empty file, a truncated item, or a bad label.
    /// </summary>
    public static IReadOnlyList<MultipleChoiceItem> LoadHellaSwag(string path, int? limit = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Multiple-choice file not found: {path}", path);
        var lines = File.ReadAllLines(path);
        int count = lines.Length;
        while (count > 0 && lines[count - 1].Length == 0) count--;   // tolerate a trailing newline
        if (count == 0) throw new InvalidDataException($"{path}: no multiple-choice items (the file is empty).");
        if (count % (Choices + 2) != 0)
            throw new InvalidDataException($"{path}: {count} lines is not a whole number of {Choices + 2}-line items (context, label, {Choices} endings).");
        var items = new List<MultipleChoiceItem>();
        for (int at = 0; at < count && (limit is not { } l || items.Count < l); at += Choices + 2)
        {
            if (!int.TryParse(lines[at + 1].Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int label) || label >= Choices)
                throw new InvalidDataException($"{path}:{at + 2}: label must be 0..{Choices - 1}, got '{lines[at + 1]}'.");
            var endings = new string[Choices];
            for (int k = 0; k < Choices; k++)
            {
                endings[k] = lines[at + 2 + k];
                if (endings[k].Trim().Length == 0) throw new InvalidDataException($"{path}:{at + 3 + k}: empty ending.");
            }
            if (lines[at].Trim().Length == 0) throw new InvalidDataException($"{path}:{at + 1}: empty context.");
            items.Add(new MultipleChoiceItem(lines[at], endings, label));
        }
        return items;
    }

    /// <summary>Token ids of an item's context as scored: BOS, then the text.</summary>
    public static int[] EncodeContext(ITokenizer tokenizer, int bos, string context) => [bos, .. tokenizer.Encode(context)];

    /// <summary>Token ids of an ending as scored: a space, then the ending.</summary>
    public static int[] EncodeEnding(ITokenizer tokenizer, string ending) => [.. tokenizer.Encode(" " + ending)];

    /// <summary>Scores every ending of every item (batched together).</summary>
    public static MultipleChoiceResult Evaluate(LogLikelihoodScorer scorer, ITokenizer tokenizer, int bos, string name, IReadOnlyList<MultipleChoiceItem> items)
    {
        var requests = new List<ScoringRequest>();
        var bytes = new List<int>();
        foreach (var item in items)
        {
            var ctx = EncodeContext(tokenizer, bos, item.Context);
            foreach (var ending in item.Endings)
            {
                requests.Add(new ScoringRequest(ctx, EncodeEnding(tokenizer, ending)));
                bytes.Add(Encoding.UTF8.GetByteCount(" " + ending));
            }
        }
        var scores = scorer.Score(requests);
        int sum = 0, perToken = 0, perByte = 0, at = 0;
        var correct = new bool[items.Count];
        var labelLp = new double[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            int k = items[i].Endings.Count;
            int bestSum = 0, bestTok = 0, bestByte = 0;
            for (int j = 1; j < k; j++)
            {
                var s = scores[at + j];
                if (s.LogProb > scores[at + bestSum].LogProb) bestSum = j;
                if (s.LogProb / s.Tokens > scores[at + bestTok].LogProb / scores[at + bestTok].Tokens) bestTok = j;
                if (s.LogProb / bytes[at + j] > scores[at + bestByte].LogProb / bytes[at + bestByte]) bestByte = j;
            }
            int label = items[i].Label;
            if (bestSum == label) sum++;
            if (bestTok == label) { perToken++; correct[i] = true; }
            if (bestByte == label) perByte++;
            labelLp[i] = scores[at + label].LogProb / scores[at + label].Tokens;
            at += k;
        }
        return new MultipleChoiceResult(name, items.Count, sum, perToken, perByte) { ItemCorrect = correct, ItemLabelLogProbPerToken = labelLp };
    }
}
