using Tessera.Data;

namespace Tessera.Retrieval.Retro;

/// <summary>
/// The one row layout of RETRO-style training in context, shared by <c>tessera lab retro</c> and
/// <c>tessera train --index</c>: BOS, then the neighbours of chunk u (each a chunk and its
/// continuation, <c>2C</c> tokens), then the document's chunks u−1, u and u+1. The loss trains chunks
/// u and u+1 only, so a run with neighbours and one without (k = 0) learn the same targets from the
/// same examples and differ only in what they read first. Held out, chunk u+1 alone is scored.
/// </summary>
public static class RetroLayout
{
    /// <summary>Tokens a row feeds the model (BOS not counted): <c>k·2C + 3C</c>.</summary>
    public static int SequenceLength(int chunkTokens, int neighbours) => neighbours * 2 * chunkTokens + 3 * chunkTokens;

    /// <summary>Tokens of a training row that the loss trains: chunks u and u+1, the row's last <c>2C</c>.</summary>
    public static int TrainedTokens(int chunkTokens) => 2 * chunkTokens;

    /// <summary>
    /// Tokens of a held-out row that are scored: chunk u+1, the row's last <c>C</c> (RETRO's measure).
    /// Chunk u is not scored: its neighbours were found with chunk u itself, so they may hold it.
    /// </summary>
    public static int ScoredTokens(int chunkTokens) => chunkTokens;

    /// <summary>
    /// The row of example (<paramref name="document"/>, <paramref name="u"/>) without its BOS: the
    /// neighbours in order, then tokens <c>[(u−1)C, (u+2)C)</c> of the document.
    /// </summary>
    public static int[] Row(ReadOnlySpan<int> document, int u, int chunkTokens, IReadOnlyList<int[]>? neighbours)
    {
        int C = chunkTokens;
        if (u < 1 || (u + 2) * C > document.Length)
            throw new ArgumentOutOfRangeException(nameof(u), u, $"a RETRO example needs chunks u−1, u, u+1 of {C} tokens inside a document of {document.Length} tokens.");
        int k = neighbours?.Count ?? 0;
        var row = new int[k * 2 * C + 3 * C];
        for (int i = 0; i < k; i++)
        {
            if (neighbours![i].Length != 2 * C) throw new ArgumentException($"neighbour {i} has {neighbours[i].Length} tokens; the layout takes 2 × {C}.", nameof(neighbours));
            neighbours[i].CopyTo(row, i * 2 * C);
        }
        document.Slice((u - 1) * C, 3 * C).CopyTo(row.AsSpan(k * 2 * C));
        return row;
    }

    /// <summary>The random stream of a seeded example draw (<see cref="Examples"/>).</summary>
    public static Random Seeded(ulong seed) => new(unchecked((int)seed ^ (int)(seed >> 32)));

    /// <summary>
    /// Every example (document, u) with chunks u−1, u, u+1 inside its document; a draw of at most
    /// <paramref name="max"/> (0: all) from <paramref name="rng"/>, returned in document order.
    /// <paramref name="what"/> names the documents in the error when none is long enough.
    /// </summary>
    public static List<(int Doc, int U)> Examples(IReadOnlyList<int[]> documents, int chunkTokens, int max, Random rng, string what)
    {
        int C = chunkTokens;
        var all = new List<(int, int)>();
        for (int d = 0; d < documents.Count; d++)
            for (int u = 1; (u + 2) * C <= documents[d].Length; u++) all.Add((d, u));
        if (all.Count == 0)
            throw new ArgumentException($"no {what} document has 3 chunks of {C} tokens ({3 * C} tokens); use a smaller --retro-chunk or longer documents.");
        for (int i = all.Count - 1; i > 0; i--) { int j = rng.Next(i + 1); (all[i], all[j]) = (all[j], all[i]); }
        if (max > 0 && all.Count > max) all.RemoveRange(max, all.Count - max);
        all.Sort();
        return all;
    }

    /// <summary>
    /// Writes <paramref name="rows"/> as a token shard (BOS before each row) with its loss mask: 1 on
    /// each row's last <paramref name="masked"/> tokens (<see cref="TrainedTokens"/> for training rows,
    /// <see cref="ScoredTokens"/> for held-out ones), 0 elsewhere, BOS included. Both files are written
    /// atomically.
    /// </summary>
    public static void WriteShard(string path, IReadOnlyList<int[]> rows, int masked, int vocabSize, int bos)
    {
        TokenShard.Write(path, rows, vocabSize, bos);
        long total = rows.Sum(r => (long)r.Length + 1);
        var mask = new byte[total];
        long at = 0;
        foreach (var r in rows)
        {
            at++;   // BOS: 0
            for (int i = 0; i < r.Length; i++, at++) mask[at] = i >= r.Length - masked ? (byte)1 : (byte)0;
        }
        TokenShard.WriteLossMask(path, mask);
    }
}
