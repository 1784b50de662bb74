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

/// <summary>How <see cref="PassageNeighbours"/> cuts a neighbour's <c>2C</c> tokens from a passage (<c>--retro-window</c>).</summary>
public enum NeighbourWindow
{
    /// <summary>
    /// RETRO's chunk and continuation, found in the passage: the <c>C</c> tokens lined up with the
    /// querying chunk by their shared 4-grams (the offset most of them agree on; the first
    /// <see cref="PassageNeighbours.RerankPool"/> usable hits are reranked by how many agree), then the <c>C</c>
    /// tokens that follow, read on into the document's passage before or after where the window leaves
    /// the passage. A passage sharing no 4-gram with the chunk is read from its start. Where the text continues as in the querying document, the
    /// neighbour's token sits a fixed distance before the token it predicts.
    /// </summary>
    Aligned,
    /// <summary>The passage's first <c>2C</c> tokens (the sixteenth session's rows).</summary>
    Start,
}

/// <summary>The command-line names of <see cref="NeighbourWindow"/>.</summary>
public static class NeighbourWindows
{
    /// <summary>"aligned" or "start".</summary>
    public static string Name(NeighbourWindow w) => w == NeighbourWindow.Aligned ? "aligned" : "start";

    /// <summary>The window named <paramref name="name"/>; anything else is a clear error.</summary>
    public static NeighbourWindow Parse(string name) => name switch
    {
        "aligned" => NeighbourWindow.Aligned,
        "start" => NeighbourWindow.Start,
        _ => throw new ArgumentException($"--retro-window: expected aligned or start, got '{name}'."),
    };
}

/// <summary>
/// RETRO neighbours from a passage index (<c>tessera index build</c>): the best BM25 passages for a
/// chunk's decoded text, each cut or padded (with the filler id) to a chunk and its continuation,
/// <c>2C</c> tokens, as <see cref="Window"/> says. "Neighbours from other documents only" is decided one of two ways:
/// <list type="bullet">
/// <item><b>By document id</b>, when the caller's documents carry the ids the index gives its passages
/// (<see cref="IdsMatch"/>; <c>data prepare</c> and <c>index build</c> over the same folder): a passage
/// of the querying document or of a held-out document is passed over. A document that quotes another
/// (a mail reply) still reads the quoted one, as RETRO's data did.</item>
/// <item><b>By text</b>, otherwise: a neighbour (the part of the passage the model reads) at least half
/// of whose 13-grams occur in the querying document is that document and is passed over, and so is one
/// at least half held-out text. A quoting reply is passed over too; the price of needing no ids.</item>
/// </list>
/// A neighbour with fewer than 13 tokens of text (filler aside) is passed over. A short list is searched again deeper (up to 512
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
    readonly Dictionary<long, int[]> extended = [];  // passage key → tokens of the document's passages before, at and after it
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

    /// <summary>How a neighbour is cut from its passage (default: lined up with the querying chunk).</summary>
    public NeighbourWindow Window { get; init; } = NeighbourWindow.Aligned;
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
        int pool = Window == NeighbourWindow.Aligned ? Math.Max(k, RerankPool) : k;
        string query = tokenizer.Decode(chunk);
        var found = new List<(int[] Tokens, int Votes)>(pool);
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
                var (n, votes) = Read(chunk, h.Passage, t);
                // The text rule judges the part the model reads, filler left out (it would dilute the share).
                var read = Text(n, filler);
                if (read.Length < TextGrams.N) { skippedShort++; continue; }
                if (heldOutText is not null)
                {
                    if (ownText!.Share(read) >= SameTextShare) { skippedOwn++; continue; }
                    if (!heldOutText.IsEmpty && heldOutText.Share(read) >= SameTextShare) { skippedHeld++; continue; }
                }
                found.Add((n, votes));
                if (found.Count == pool) break;
            }
            if (found.Count >= k || hits.Count < depth || depth >= MaxDepth) break;
        }
        SkippedOwnText += skippedOwn; SkippedHeldOutText += skippedHeld; SkippedShort += skippedShort;
        // Aligned: the candidates in order of the 4-grams lining them up with the chunk, BM25's order on a tie (a stable sort).
        var chosen = found.Select((f, i) => (f.Tokens, f.Votes, i)).OrderByDescending(f => f.Votes).ThenBy(f => f.i).Take(k).Select(f => f.Tokens).ToList();
        while (chosen.Count < k) { chosen.Add(Enumerable.Repeat(filler, 2 * C).ToArray()); FillerSlots++; }
        return [.. chosen];
    }

    /// <summary>
    /// Under <see cref="NeighbourWindow.Aligned"/>, the usable hits that BM25 ranks first (up to this
    /// many) are reranked by the shared 4-grams that line them up with the chunk: a passage that
    /// repeats the chunk's text comes before one that only shares its words.
    /// </summary>
    public const int RerankPool = 8;

    /// <summary>Tokens of the document's passage before <paramref name="passage"/>, the passage and the one after (cached); <paramref name="own"/> when it is the document's only one.</summary>
    int[] Extended(Passage passage, int[] own)
    {
        if (extended.TryGetValue(passage.Key, out var t)) return t;
        if (extended.Count >= MaxCached) extended.Clear();
        var (previous, next) = index.Adjacent(passage);
        if (previous is null && next is null) return extended[passage.Key] = own;
        // The gap between passages is whitespace the index does not keep: a space, or a paragraph break when longer.
        static string Gap(Passage a, Passage b) => b.Start - (a.Start + a.Length) <= 1 ? " " : "\n\n";
        string text = (previous is null ? "" : previous.Text + Gap(previous, passage)) + passage.Text + (next is null ? "" : Gap(passage, next) + next.Text);
        return extended[passage.Key] = [.. tokenizer.Encode(text)];
    }

    /// <summary>
    /// The <c>2C</c> tokens read from passage tokens <paramref name="t"/>: under
    /// <see cref="NeighbourWindow.Aligned"/>, from where <paramref name="chunk"/> lines up, read on into
    /// the passages before and after when the window leaves the passage; else (or when the two share no
    /// 4-gram) from the passage's start.
    /// </summary>
    (int[] Window, int Votes) Read(ReadOnlySpan<int> chunk, Passage passage, int[] t)
    {
        int C = chunkTokens;
        if (Window != NeighbourWindow.Aligned) return (Cut(t, 0, 2 * C, filler), 0);
        var (from, votes) = Align(chunk, t);
        if (votes == 0) return (Cut(t, 0, 2 * C, filler), 0);
        if (from < 0 || from + 2 * C > t.Length)
        {
            var wider = Extended(passage, t);
            var there = Align(chunk, wider);
            if (there.Votes > 0) (t, from, votes) = (wider, there.Offset, there.Votes);
        }
        return (Cut(t, from, 2 * C, filler), votes);
    }

    /// <summary>Length of the shared runs that line a passage up with the querying chunk.</summary>
    public const int AlignGram = 4;

    /// <summary>
    /// Where in <paramref name="passage"/> the querying <paramref name="chunk"/> would start: the offset
    /// <c>j − i</c> that the most shared 4-grams (<c>chunk[i..]</c> = <c>passage[j..]</c>) agree on, the
    /// smallest on a tie; null when they share none. May be negative or past the passage's end.
    /// </summary>
    public static int? Offset(ReadOnlySpan<int> chunk, ReadOnlySpan<int> passage) => Align(chunk, passage) is { Votes: > 0 } a ? a.Offset : null;

    /// <summary><see cref="Offset"/> and the number of shared 4-grams that agree on it (0, with offset 0, when none are shared).</summary>
    public static (int Offset, int Votes) Align(ReadOnlySpan<int> chunk, ReadOnlySpan<int> passage)
    {
        const int n = AlignGram;
        if (chunk.Length < n || passage.Length < n) return (0, 0);
        var at = new Dictionary<(int, int, int, int), List<int>>();
        for (int i = 0; i + n <= chunk.Length; i++)
        {
            var key = (chunk[i], chunk[i + 1], chunk[i + 2], chunk[i + 3]);
            if (!at.TryGetValue(key, out var list)) at[key] = list = [];
            list.Add(i);
        }
        var votes = new Dictionary<int, int>();
        for (int j = 0; j + n <= passage.Length; j++)
            if (at.TryGetValue((passage[j], passage[j + 1], passage[j + 2], passage[j + 3]), out var list))
                foreach (int i in list) votes[j - i] = votes.GetValueOrDefault(j - i) + 1;
        int best = 0, most = 0;
        foreach (var (offset, count) in votes)
            if (count > most || (count == most && offset < best)) (best, most) = (offset, count);
        return (best, most);
    }

    /// <summary>The tokens of a neighbour between its leading and trailing <paramref name="filler"/>.</summary>
    public static ReadOnlySpan<int> Text(ReadOnlySpan<int> neighbour, int filler)
    {
        int a = 0, b = neighbour.Length;
        while (a < b && neighbour[a] == filler) a++;
        while (b > a && neighbour[b - 1] == filler) b--;
        return neighbour[a..b];
    }

    /// <summary><paramref name="length"/> tokens of <paramref name="tokens"/> from <paramref name="from"/> (which may be negative); positions outside it are <paramref name="filler"/>.</summary>
    public static int[] Cut(ReadOnlySpan<int> tokens, int from, int length, int filler)
    {
        var n = new int[length];
        for (int i = 0; i < length; i++) { int j = from + i; n[i] = j >= 0 && j < tokens.Length ? tokens[j] : filler; }
        return n;
    }
}
