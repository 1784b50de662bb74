using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Retro;

/// <summary>
/// The token 13-grams of some text (hashed), for the "same text" rule of <see cref="PassageNeighbours"/>:
/// which share of a passage's 13-grams occur in a document, or in a set of held-out documents.
/// </summary>
public sealed class TextGrams
{
    /// <summary>The n-gram length (RETRO's 13, as in its leakage measure).</summary>
    public const int N = 13;
    readonly HashSet<ulong> grams = [];

    /// <summary>The 13-grams of <paramref name="documents"/> (token ids).</summary>
    public static TextGrams Of(IEnumerable<int[]> documents)
    {
        var g = new TextGrams();
        foreach (var d in documents)
            for (int i = 0; i + N <= d.Length; i++) g.grams.Add(Hash(d.AsSpan(i, N)));
        return g;
    }

    /// <summary>True when no document gave a 13-gram.</summary>
    public bool IsEmpty => grams.Count == 0;

    /// <summary>Share of <paramref name="tokens"/>' 13-grams found here; 0 when the tokens are shorter than 13.</summary>
    public double Share(ReadOnlySpan<int> tokens)
    {
        int n = tokens.Length - N + 1, hit = 0;
        if (n <= 0) return 0;
        for (int i = 0; i < n; i++) if (grams.Contains(Hash(tokens.Slice(i, N)))) hit++;
        return hit / (double)n;
    }

    static ulong Hash(ReadOnlySpan<int> t)
    {
        ulong h = 14695981039346656037UL;   // FNV-1a over the ids
        foreach (int x in t) { h ^= (uint)x; h *= 1099511628211UL; }
        return h;
    }
}

/// <summary>
/// RETRO neighbours from a passage index (<c>tessera index build</c>): the best BM25 passages for a
/// chunk's decoded text, each cut or padded (with the filler id) to a chunk and its continuation,
/// <c>2C</c> tokens. The index knows its own document ids, not the caller's, so "other documents only"
/// is decided by text: a neighbour (the part of the passage the model reads) at least half of whose
/// 13-grams occur in the querying document (<c>own</c>) is that document and is passed over, and so is
/// one at least half held-out text. A
/// passage shorter than 13 tokens is passed over too. A short list is searched again deeper (up to
/// 512 hits); slots still empty are filler. Used by <c>tessera train --index</c>
/// (<see cref="RetroTrainingData"/>) and <c>tessera eval ralm --layout retro</c>, so both read the same
/// neighbours by the same rule.
/// </summary>
public sealed class PassageNeighbours(Bm25Index index, ITokenizer tokenizer, int chunkTokens, int neighbours, int filler, TextGrams heldOut)
{
    /// <summary>A hit with at least this share of its 13-grams in the querying document (or in held-out text) is passed over.</summary>
    public const double SameTextShare = 0.5;
    const int MaxDepth = 512;
    const int MaxCached = 200_000;   // encoded passages kept (about 120 MB at 150 tokens each)
    readonly Dictionary<long, int[]> encoded = [];   // passage key → tokens (the same passages come back often)

    /// <summary>BM25 searches run (deeper repeats included).</summary>
    public long Searches { get; private set; }
    /// <summary>Neighbour slots left as filler.</summary>
    public long FillerSlots { get; private set; }
    /// <summary>Hits passed over as the querying document's own text.</summary>
    public long SkippedOwnText { get; private set; }
    /// <summary>Hits passed over as held-out text.</summary>
    public long SkippedHeldOutText { get; private set; }
    /// <summary>Hits passed over as shorter than 13 tokens.</summary>
    public long SkippedShort { get; private set; }

    /// <summary>The neighbours of <paramref name="chunk"/>, a chunk of the document whose 13-grams are <paramref name="own"/>.</summary>
    public int[][] Search(ReadOnlySpan<int> chunk, TextGrams own)
    {
        int C = chunkTokens, k = neighbours;
        string query = tokenizer.Decode(chunk);
        var found = new List<int[]>(k);
        long skippedOwn = 0, skippedHeld = 0, skippedShort = 0;
        for (int depth = 4 * (k + 1); ; depth *= 8)
        {
            IReadOnlyList<SearchHit> hits;
            Searches++;
            try { hits = index.Search(query, depth); }
            catch (ArgumentException) { hits = []; }   // only stop words, punctuation or an unknown script: nothing to search for
            found.Clear();
            skippedOwn = skippedHeld = skippedShort = 0;
            foreach (var h in hits)
            {
                if (!encoded.TryGetValue(h.Passage.Key, out var t))
                {
                    if (encoded.Count >= MaxCached) encoded.Clear();
                    encoded[h.Passage.Key] = t = [.. tokenizer.Encode(h.Passage.Text)];
                }
                if (t.Length < TextGrams.N) { skippedShort++; continue; }
                // The rule judges the part the model reads: the passage's first 2C tokens.
                var read = t.AsSpan(0, Math.Min(2 * C, t.Length));
                if (own.Share(read) >= SameTextShare) { skippedOwn++; continue; }
                if (!heldOut.IsEmpty && heldOut.Share(read) >= SameTextShare) { skippedHeld++; continue; }
                var n = new int[2 * C];
                read.CopyTo(n);
                int m = read.Length;
                n.AsSpan(m).Fill(filler);
                found.Add(n);
                if (found.Count == k) break;
            }
            if (found.Count == k || hits.Count < depth || depth >= MaxDepth) break;
        }
        SkippedOwnText += skippedOwn; SkippedHeldOutText += skippedHeld; SkippedShort += skippedShort;
        while (found.Count < k) { found.Add(Enumerable.Repeat(filler, 2 * C).ToArray()); FillerSlots++; }
        return [.. found];
    }
}
