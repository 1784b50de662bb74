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
/// <c>2C</c> tokens. "Neighbours from other documents only" is decided one of two ways:
/// <list type="bullet">
/// <item><b>By document id</b>, when the caller's documents carry the ids the index gives its passages
/// (<see cref="IdsMatch"/>; <c>data prepare</c> and <c>index build</c> over the same folder): a passage
/// of the querying document or of a held-out document is passed over. A document that quotes another
/// (a mail reply) still reads the quoted one, as RETRO's data did.</item>
/// <item><b>By text</b>, otherwise: a neighbour (the part of the passage the model reads) at least half
/// of whose 13-grams occur in the querying document is that document and is passed over, and so is one
/// at least half held-out text. A quoting reply is passed over too; the price of needing no ids.</item>
/// </list>
/// A passage shorter than 13 tokens is passed over. A short list is searched again deeper (up to 512
/// hits); slots still empty are filler. Used by <c>tessera train --index</c>
/// (<see cref="RetroTrainingData"/>) and <c>tessera eval ralm --layout retro</c>, so both read the same
/// neighbours by the same rule.
/// </summary>
public sealed class PassageNeighbours
{
    /// <summary>A hit with at least this share of its 13-grams in the querying document (or in held-out text) is passed over (the text rule).</summary>
    public const double SameTextShare = 0.5;
    /// <summary>The id rule is used when at least this share of the caller's documents are found in the index.</summary>
    public const double IdCoverageNeeded = 0.99;
    const int MaxDepth = 512;
    const int MaxCached = 200_000;   // encoded passages kept (about 120 MB at 150 tokens each)
    readonly Dictionary<long, int[]> encoded = [];   // passage key → tokens (the same passages come back often)
    readonly Bm25Index index;
    readonly ITokenizer tokenizer;
    readonly int chunkTokens, neighbours, filler;
    readonly TextGrams? heldOutText;
    readonly IReadOnlySet<string>? heldOutIds;

    /// <summary>The text rule: <paramref name="heldOut"/> is the text no neighbour may mostly be.</summary>
    public PassageNeighbours(Bm25Index index, ITokenizer tokenizer, int chunkTokens, int neighbours, int filler, TextGrams heldOut)
        : this(index, tokenizer, chunkTokens, neighbours, filler) => heldOutText = heldOut;

    /// <summary>The id rule: <paramref name="heldOut"/> are the ids of the documents no neighbour may come from.</summary>
    public PassageNeighbours(Bm25Index index, ITokenizer tokenizer, int chunkTokens, int neighbours, int filler, IReadOnlySet<string> heldOut)
        : this(index, tokenizer, chunkTokens, neighbours, filler) => heldOutIds = heldOut;

    PassageNeighbours(Bm25Index index, ITokenizer tokenizer, int chunkTokens, int neighbours, int filler)
    {
        this.index = index; this.tokenizer = tokenizer; this.chunkTokens = chunkTokens; this.neighbours = neighbours; this.filler = filler;
    }

    /// <summary>True for the id rule, false for the text rule.</summary>
    public bool ByDocumentId => heldOutIds is not null;
    /// <summary>BM25 searches run (deeper repeats included).</summary>
    public long Searches { get; private set; }
    /// <summary>Neighbour slots left as filler.</summary>
    public long FillerSlots { get; private set; }
    /// <summary>Hits passed over as the querying document's own (by id or by text).</summary>
    public long SkippedOwnText { get; private set; }
    /// <summary>Hits passed over as held-out (by id or by text).</summary>
    public long SkippedHeldOutText { get; private set; }
    /// <summary>Hits passed over as shorter than 13 tokens.</summary>
    public long SkippedShort { get; private set; }

    /// <summary>
    /// The share of <paramref name="ids"/> that name documents of <paramref name="index"/>; the id rule
    /// applies when it reaches <see cref="IdCoverageNeeded"/>.
    /// </summary>
    public static double IdsMatch(Bm25Index index, IReadOnlyCollection<string> ids)
    {
        if (ids.Count == 0) return 0;
        var indexed = index.DocumentIds();
        return ids.Count(indexed.Contains) / (double)ids.Count;
    }

    /// <summary>
    /// The neighbours of <paramref name="chunk"/>, a chunk of the document with id <paramref name="ownId"/>
    /// (the id rule) or with 13-grams <paramref name="ownText"/> (the text rule).
    /// </summary>
    public int[][] Search(ReadOnlySpan<int> chunk, string? ownId, TextGrams? ownText)
    {
        if (ByDocumentId) ArgumentNullException.ThrowIfNull(ownId);
        else ArgumentNullException.ThrowIfNull(ownText);
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
                if (heldOutIds is not null)
                {
                    if (h.Passage.DocumentId == ownId) { skippedOwn++; continue; }
                    if (heldOutIds.Contains(h.Passage.DocumentId)) { skippedHeld++; continue; }
                }
                if (!encoded.TryGetValue(h.Passage.Key, out var t))
                {
                    if (encoded.Count >= MaxCached) encoded.Clear();
                    encoded[h.Passage.Key] = t = [.. tokenizer.Encode(h.Passage.Text)];
                }
                if (t.Length < TextGrams.N) { skippedShort++; continue; }
                // The text rule judges the part the model reads: the passage's first 2C tokens.
                var read = t.AsSpan(0, Math.Min(2 * C, t.Length));
                if (heldOutText is not null)
                {
                    if (ownText!.Share(read) >= SameTextShare) { skippedOwn++; continue; }
                    if (!heldOutText.IsEmpty && heldOutText.Share(read) >= SameTextShare) { skippedHeld++; continue; }
                }
                var n = new int[2 * C];
                read.CopyTo(n);
                n.AsSpan(read.Length).Fill(filler);
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
