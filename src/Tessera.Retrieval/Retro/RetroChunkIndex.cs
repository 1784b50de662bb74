using System.Globalization;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Retro;

/// <summary>A tokenized document for RETRO-style chunking: its id and its token ids (no BOS).</summary>
/// <param name="Id">Document id; a chunk takes a neighbour from the document with its own id only from its own past (see <see cref="RetroChunkIndex.Search"/>).</param>
/// <param name="Tokens">The document's tokens.</param>
public sealed record RetroDocument(string Id, int[] Tokens)
{
    /// <summary>
    /// A held-out document: its chunks are indexed, but a search returns them only to a query from
    /// the same document (its own past), never to another document's query, so training queries and
    /// other held-out documents cannot see its text.
    /// </summary>
    public bool HeldOut { get; init; }
}

/// <summary>One retrieved neighbour: a chunk and its continuation, and where it came from.</summary>
/// <param name="Tokens">The neighbour's tokens (<see cref="RetroChunkIndex.NeighbourTokens"/> long).</param>
/// <param name="DocumentId">The document it was taken from; null for a filler slot (nothing usable found).</param>
/// <param name="Chunk">Its chunk number in that document (−1 for a filler slot).</param>
public sealed record RetroNeighbour(int[] Tokens, string? DocumentId, int Chunk);

/// <summary>
/// RETRO's retrieval database at our scale: every document cut into chunks of
/// <see cref="ChunkTokens"/> tokens, each chunk that has a full continuation indexed in a sharded
/// Lucene BM25 index as the decoded text of the chunk. A neighbour is a retrieved chunk followed by
/// its continuation (the next chunk of its document), <c>2 × ChunkTokens</c> tokens, so a model
/// can read what came after text that resembles its own. Neighbours of a chunk come from other
/// documents only (<see cref="Neighbours"/> takes the id to exclude), so a training chunk cannot
/// retrieve itself or the text around it; <see cref="Search"/> with <c>ownPast</c> may also return
/// the querying document's own chunks that end before the example's context begins.
/// Documents marked <see cref="RetroDocument.HeldOut"/> are returned only to their own queries.
/// </summary>
public sealed class RetroChunkIndex : IDisposable
{
    readonly Bm25Index index;
    readonly List<RetroDocument> documents;
    readonly Dictionary<string, int> byId;
    readonly ITokenizer tokenizer;

    RetroChunkIndex(Bm25Index index, List<RetroDocument> documents, ITokenizer tokenizer, int chunkTokens)
    {
        this.index = index;
        this.documents = documents;
        this.tokenizer = tokenizer;
        ChunkTokens = chunkTokens;
        byId = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < documents.Count; i++) byId[documents[i].Id] = i;
    }

    /// <summary>Tokens per chunk (RETRO: 64).</summary>
    public int ChunkTokens { get; }
    /// <summary>Tokens per neighbour: a chunk and its continuation.</summary>
    public int NeighbourTokens => 2 * ChunkTokens;
    /// <summary>Chunks in the index.</summary>
    public long Chunks => index.Passages;
    /// <summary>Neighbour searches that found nothing usable (the slot was filled with the filler id).</summary>
    public long EmptySearches { get; private set; }

    /// <summary>
    /// Indexes the chunks of <paramref name="documents"/> into <paramref name="folder"/> (a new,
    /// empty folder; <paramref name="shards"/> Lucene shards) and opens the result.
    /// </summary>
    public static RetroChunkIndex Build(string folder, IReadOnlyList<RetroDocument> documents, ITokenizer tokenizer, int chunkTokens = 64, int shards = 4, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(documents);
        if (chunkTokens < 2) throw new ArgumentOutOfRangeException(nameof(chunkTokens), chunkTokens, "RETRO chunks need at least 2 tokens.");
        if (File.Exists(Path.Combine(folder, IndexManifest.FileName)))
            throw new ArgumentException($"{folder}: already holds an index; the RETRO chunk index is built into a new folder (its chunk numbering must match the documents given).");
        var list = documents.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in list)
            if (!seen.Add(d.Id)) throw new ArgumentException($"RETRO chunk index: document id '{d.Id}' appears twice; ids must be unique.");
        IEnumerable<SourceDocument> Chunked()
        {
            for (int i = 0; i < list.Count; i++)
            {
                var t = list[i].Tokens;
                for (int c = 0; (c + 2) * chunkTokens <= t.Length; c++)   // a chunk with a whole continuation
                    yield return new SourceDocument(Key(i, c), tokenizer.Decode(t.AsSpan(c * chunkTokens, chunkTokens)));
            }
        }
        // One passage per chunk: a 64-token chunk has far fewer than 10,000 words.
        Bm25IndexBuilder.Build(folder, Chunked(), new IndexBuildOptions { Shards = shards, PassageWords = 10_000, Progress = progress });
        return new RetroChunkIndex(Bm25Index.Open(folder), list, tokenizer, chunkTokens);
    }

    static string Key(int document, int chunk) => string.Create(CultureInfo.InvariantCulture, $"{document}:{chunk}");

    /// <summary>
    /// The <paramref name="k"/> best neighbours of <paramref name="chunk"/> (BM25 over its decoded
    /// text), each <see cref="NeighbourTokens"/> tokens, skipping every chunk of the document
    /// <paramref name="excludeDocument"/> and of every held-out document. A query with no searchable
    /// term, or too few hits, fills the missing neighbours with <paramref name="filler"/> ids
    /// (counted in <see cref="EmptySearches"/>).
    /// </summary>
    public int[][] Neighbours(ReadOnlySpan<int> chunk, string? excludeDocument, int k, int filler)
        => [.. Search(chunk, excludeDocument, 0, k, filler, ownPast: false).Select(n => n.Tokens)];

    /// <summary>
    /// The <paramref name="k"/> best neighbours of <paramref name="chunk"/>, chunk number
    /// <paramref name="queryChunk"/> of document <paramref name="queryDocument"/> (null: a query from
    /// no document). A hit from another document is kept unless that document is held out; a hit
    /// from the querying document itself is kept only with <paramref name="ownPast"/> and only if the
    /// neighbour (the chunk and its continuation) ends at or before the start of chunk
    /// <paramref name="queryChunk"/> − 1, the first chunk of the example's context: retrieval from the
    /// document's own earlier text, never from the context or what follows it. Missing neighbours are
    /// filler slots, as in <see cref="Neighbours"/>.
    /// </summary>
    public RetroNeighbour[] Search(ReadOnlySpan<int> chunk, string? queryDocument, int queryChunk, int k, int filler, bool ownPast)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "At least one neighbour.");
        int self = queryDocument is not null && byId.TryGetValue(queryDocument, out int e) ? e : -1;
        string text = tokenizer.Decode(chunk);
        var found = new List<RetroNeighbour>(k);
        // Filtered hits (the own document's later chunks, held-out documents) can crowd the top of the
        // list, so a short list is searched again deeper.
        for (int depth = 2 * k + 8; ; depth *= 4)
        {
            IReadOnlyList<SearchHit> hits;
            try { hits = index.Search(text, depth); }
            catch (ArgumentException) { hits = []; }   // only stop words, punctuation or an unknown script: nothing to search for
            found.Clear();
            foreach (var h in hits)
            {
                var parts = h.Passage.DocumentId.Split(':');
                int d = int.Parse(parts[0], CultureInfo.InvariantCulture), c = int.Parse(parts[1], CultureInfo.InvariantCulture);
                if (!Allowed(d, c, self, queryChunk, ownPast)) continue;
                found.Add(new RetroNeighbour(documents[d].Tokens.AsSpan(c * ChunkTokens, NeighbourTokens).ToArray(), documents[d].Id, c));
                if (found.Count == k) break;
            }
            if (found.Count == k || hits.Count < depth || depth >= MaxDepth) break;
        }
        if (found.Count < k) EmptySearches++;
        while (found.Count < k) found.Add(new RetroNeighbour(Enumerable.Repeat(filler, NeighbourTokens).ToArray(), null, -1));
        return [.. found];
    }

    const int MaxDepth = 1024;

    /// <summary>The one rule for which indexed chunk (document <paramref name="d"/>, chunk <paramref name="c"/>) a query may see.</summary>
    bool Allowed(int d, int c, int self, int queryChunk, bool ownPast)
    {
        if (d == self) return ownPast && (c + 2) * ChunkTokens <= (queryChunk - 1) * ChunkTokens;
        return !documents[d].HeldOut;
    }

    /// <summary>
    /// RETRO's leakage measure for one evaluated chunk: the fraction of its token n-grams
    /// (<paramref name="n"/> = 13) that occur anywhere in <paramref name="neighbours"/>; 0 when the
    /// chunk is shorter than n.
    /// </summary>
    public static double NGramOverlap(ReadOnlySpan<int> chunk, IReadOnlyList<int[]> neighbours, int n = 13)
    {
        if (chunk.Length < n) return 0;
        var grams = new HashSet<string>(StringComparer.Ordinal);
        foreach (var nb in neighbours)
            for (int i = 0; i + n <= nb.Length; i++) grams.Add(string.Join(',', nb.AsSpan(i, n).ToArray()));
        int hit = 0, total = chunk.Length - n + 1;
        for (int i = 0; i < total; i++) if (grams.Contains(string.Join(',', chunk.Slice(i, n).ToArray()))) hit++;
        return hit / (double)total;
    }

    /// <summary>Closes the Lucene shards.</summary>
    public void Dispose() => index.Dispose();
}
