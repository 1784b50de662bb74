using System.Globalization;
using Tessera.Data;
using Tessera.Evals;

namespace Tessera.Cli.Commands;

/// <summary>
/// How much of a held-out split given as a file also occurs in the training file: the documents
/// that share at least one <see cref="N"/>-gram of tokens with the training split. Measured with
/// the n-gram index of the eval contamination report (<see cref="NGramIndex"/>, the check behind
/// <c>tessera eval --contamination</c>), over the shards just written, so the numbers are the
/// ones that report would give.
/// </summary>
public sealed record SplitOverlap(string Split, int N, int Documents, int Overlapping, int TooShort)
{
    /// <summary>The default n for subword tokenizers, the same as <c>tessera eval --ngram</c>.</summary>
    public const int DefaultN = 13;
    /// <summary>
    /// The default n for byte-level tokens: 13 bytes is a phrase such as " of the whale", shared by
    /// any two English texts, while 50 bytes is about what 13 subword tokens span.
    /// </summary>
    public const int DefaultByteN = 50;

    /// <summary><see cref="DefaultByteN"/> for a byte vocabulary (at most 512 ids), else <see cref="DefaultN"/>.</summary>
    public static int DefaultFor(int vocabSize) => vocabSize <= 512 ? DefaultByteN : DefaultN;

    /// <summary>Share of the split's documents that overlap training.</summary>
    public double Fraction => Documents == 0 ? 0 : (double)Overlapping / Documents;

    /// <summary>The one-line warning printed when any document overlaps.</summary>
    public string Warning() => string.Create(CultureInfo.InvariantCulture,
        $"warning: {Overlapping} of {Documents} {Split} documents ({100 * Fraction:F1}%) share a {N}-token n-gram with the training split; held-out scores on them will be optimistic (same check as `tessera eval --contamination`).");

    /// <summary>Indexes the training shard of <paramref name="data"/> and checks every validation and test document against it.</summary>
    public static IReadOnlyList<SplitOverlap> Measure(PreparedData data, int n)
    {
        using var train = TokenShard.Open(data.ShardPath(Tessera.Data.Split.Train));
        var index = NGramIndex.Build([train], n, data.BosId);
        var result = new List<SplitOverlap>();
        foreach (var (split, name) in new[] { (Tessera.Data.Split.Validation, "validation"), (Tessera.Data.Split.Test, "test") })
        {
            using var shard = TokenShard.Open(data.ShardPath(split));
            if (shard.DocumentCount == 0) continue;
            int overlapping = 0, tooShort = 0;
            for (int i = 0; i < shard.DocumentCount; i++)
            {
                var doc = shard.ReadDocument(i).AsSpan(1);              // BOS first
                if (doc.Length < n) tooShort++;
                else if (index.Overlaps(doc)) overlapping++;
            }
            result.Add(new SplitOverlap(name, n, shard.DocumentCount, overlapping, tooShort));
        }
        return result;
    }
}
