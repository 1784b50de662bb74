using Tessera.Inference;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Retro;

/// <summary>What <see cref="RetroEvaluation.Run"/> measured.</summary>
/// <param name="Documents">Held-out documents read.</param>
/// <param name="Examples">Examples scored (chunks u−1, u, u+1 of a document).</param>
/// <param name="ScoredBytes">UTF-8 bytes of the scored chunks u+1.</param>
/// <param name="BitsPerByteWithout">Bits per byte of chunk u+1 after <c>[BOS] u−1 u</c>.</param>
/// <param name="BitsPerByteWith">Bits per byte of chunk u+1 after <c>[BOS] neighbours u−1 u</c>.</param>
/// <param name="OverlapMean">RETRO's leakage measure: mean 13-gram overlap of chunk u+1 with its neighbours.</param>
/// <param name="OverlapOverHalf">Share of examples whose overlap is above 0.5.</param>
/// <param name="Searches">BM25 searches run.</param>
/// <param name="FillerSlots">Neighbour slots left as filler.</param>
/// <param name="SkippedOwnText">Hits passed over as the document's own text.</param>
/// <param name="SkippedHeldOutText">Hits passed over as another evaluated document.</param>
/// <param name="ExclusionRule">"document ids" when the evaluated documents' ids are the index's (it holds them), else "text" (<see cref="PassageNeighbours"/>).</param>
/// <param name="Buckets">The same figures by the examples' 13-gram overlap (none, up to half, over half), as RETRO broke its gains down, so leakage is visible.</param>
public sealed record RetroEvalResult(int Documents, int Examples, long ScoredBytes, double BitsPerByteWithout, double BitsPerByteWith,
    double OverlapMean, double OverlapOverHalf, long Searches, long FillerSlots, long SkippedOwnText, long SkippedHeldOutText, string ExclusionRule,
    IReadOnlyList<OverlapBucket> Buckets);

/// <summary>Examples of one 13-gram overlap range and their bits per byte without and with neighbours (NaN when empty).</summary>
/// <param name="Range">"0", "(0, 0.5]" or "(0.5, 1]".</param>
/// <param name="Examples">Examples in the range.</param>
/// <param name="ScoredBytes">Their chunks u+1's UTF-8 bytes.</param>
/// <param name="BitsPerByteWithout">Without neighbours.</param>
/// <param name="BitsPerByteWith">With neighbours.</param>
public sealed record OverlapBucket(string Range, int Examples, long ScoredBytes, double BitsPerByteWithout, double BitsPerByteWith);

/// <summary>
/// Held-out bits per byte in the RETRO layout (<c>tessera eval ralm --layout retro</c>): the layout a
/// model trained by <c>tessera train --index</c> (or <c>lab retro</c>) reads. Every example is chunks
/// u−1, u, u+1 of a held-out document; chunk u+1 is scored after <c>[BOS] u−1 u</c> and after
/// <c>[BOS] neighbours u−1 u</c>, the neighbours found for chunk u by <see cref="PassageNeighbours"/>
/// with every evaluated document held out (a document never reads itself or another evaluated
/// document): by id when the index holds the evaluated documents under their ids, else by text. Same
/// weights, same examples, same scored tokens.
/// </summary>
public static class RetroEvaluation
{
    /// <summary>
    /// Scores up to <paramref name="maxExamples"/> examples (a seeded draw; 0: all) of
    /// <paramref name="documents"/> (ids as the index would name them, token ids without BOS) with <paramref name="engine"/>.
    /// </summary>
    public static RetroEvalResult Run(IGenerationEngine engine, ITokenizer tokenizer, int bos, Bm25Index index, IReadOnlyList<(string Id, int[] Tokens)> documents,
        int chunkTokens, int neighbours, int maxExamples, ulong seed, NeighbourWindow window = NeighbourWindow.Aligned, CancellationToken cancel = default)
    {
        int C = chunkTokens;
        if (C < TextGrams.N) throw new ArgumentOutOfRangeException(nameof(chunkTokens), chunkTokens, $"--retro-chunk: at least {TextGrams.N} tokens.");
        if (neighbours is < 1 or > 16) throw new ArgumentOutOfRangeException(nameof(neighbours), neighbours, "--neighbours: 1 to 16.");
        int rowTokens = RetroLayout.SequenceLength(C, neighbours) + 1;
        if (rowTokens > engine.Config.ContextLength)
            throw new ArgumentException($"a RETRO row with its BOS is {rowTokens} tokens (k·2C + 3C + 1), more than the model's context length {engine.Config.ContextLength}; use a smaller --retro-chunk or --neighbours.");
        var examples = RetroLayout.Examples([.. documents.Select(d => d.Tokens)], C, maxExamples, RetroLayout.Seeded(seed), "held-out");

        var ids = documents.Select(d => d.Id).ToHashSet(StringComparer.Ordinal);
        bool byId = ids.Count == documents.Count && PassageNeighbours.IdsMatch(index, ids) >= PassageNeighbours.IdCoverageNeeded;
        var search = byId ? new PassageNeighbours(index, tokenizer, C, neighbours, bos, ids) { Window = window }
            : new PassageNeighbours(index, tokenizer, C, neighbours, bos, TextGrams.Of(documents.Select(d => d.Tokens))) { Window = window };
        double natsWith = 0, natsWithout = 0, overlapSum = 0;
        int overHalf = 0, ownDoc = -1;
        long bytes = 0;
        var buckets = new (int Examples, long Bytes, double Without, double With)[3];
        TextGrams? own = null;
        foreach (var (d, u) in examples)
        {
            cancel.ThrowIfCancellationRequested();
            var doc = documents[d].Tokens;
            if (d != ownDoc) { own = byId ? null : TextGrams.Of([doc]); ownDoc = d; }
            var found = search.Search(doc.AsSpan(u * C, C), documents[d].Id, own);
            double without = Nats(engine, [bos, .. RetroLayout.Row(doc, u, C, null)], C);
            double with = Nats(engine, [bos, .. RetroLayout.Row(doc, u, C, found)], C);
            int b = tokenizer.DecodeBytes(doc.AsSpan((u + 1) * C, C)).Length;
            natsWithout += without; natsWith += with; bytes += b;
            double overlap = RetroChunkIndex.NGramOverlap(doc.AsSpan((u + 1) * C, C), found, TextGrams.N);
            overlapSum += overlap;
            if (overlap > 0.5) overHalf++;
            ref var bucket = ref buckets[overlap == 0 ? 0 : overlap <= 0.5 ? 1 : 2];
            bucket = (bucket.Examples + 1, bucket.Bytes + b, bucket.Without + without, bucket.With + with);
        }
        static double Bpb(double nats, long bytes) => bytes == 0 ? double.NaN : nats / Math.Log(2) / bytes;
        string[] ranges = ["0", "(0, 0.5]", "(0.5, 1]"];
        return new RetroEvalResult(documents.Count, examples.Count, bytes, Bpb(natsWithout, bytes), Bpb(natsWith, bytes), overlapSum / examples.Count,
            overHalf / (double)examples.Count, search.Searches, search.FillerSlots, search.SkippedOwnText, search.SkippedHeldOutText, byId ? "document ids" : "text",
            [.. buckets.Select((x, i) => new OverlapBucket(ranges[i], x.Examples, x.Bytes, Bpb(x.Without, x.Bytes), Bpb(x.With, x.Bytes)))]);
    }

    /// <summary>Summed nats of the row's last <paramref name="scored"/> tokens.</summary>
    static double Nats(IGenerationEngine engine, int[] row, int scored)
    {
        var events = engine.Score(row, 0);
        double nats = 0;
        for (int i = row.Length - scored; i < row.Length; i++) nats -= events[i].Logprob;
        return nats;
    }
}
