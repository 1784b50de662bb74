using Lucene.Net.Analysis;
using Lucene.Net.Analysis.En;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Search.Similarities;
using Lucene.Net.Store;
using Lucene.Net.Util;
using Tessera.Kernels;

namespace Tessera.Retrieval.Sparse;

/// <summary>
/// The sparse stage: a Lucene.Net index with <see cref="BM25Similarity"/>, split into N shards
/// (folders <c>shard-0 … shard-N-1</c>, a document's passages all in the shard its id hashes to).
/// Each shard is opened at the commit the manifest names, searched on the worker pool, and the
/// per-shard top lists are merged. Term and collection statistics are summed over all shards, so
/// scores — and therefore the merged ranking — equal those of one unsharded index.
/// Thread-safe for searching.
/// </summary>
public sealed class Bm25Index : IDisposable
{
    /// <summary>Field holding the passage text.</summary>
    public const string TextField = "text";
    internal const string KeyField = "key", DocField = "doc_id", StartField = "start", LengthField = "length", DateField = "date";

    /// <summary>The analyzer's name recorded in the manifest.</summary>
    public const string AnalyzerName = "lucene-english-4.8";

    readonly DirectoryReader[] readers;
    readonly Lucene.Net.Store.Directory[] dirs;
    readonly IndexSearcher[] searchers;
    readonly Stats stats;

    Bm25Index(string folder, IndexManifest manifest, DirectoryReader[] readers, Lucene.Net.Store.Directory[] dirs)
    {
        Folder = folder; Manifest = manifest; this.readers = readers; this.dirs = dirs;
        stats = new Stats(readers);
        searchers = readers.Select(r => (IndexSearcher)new GlobalStatsSearcher(r, stats)).ToArray();
    }

    /// <summary>The index folder.</summary>
    public string Folder { get; }

    /// <summary>The manifest this view was opened at.</summary>
    public IndexManifest Manifest { get; }

    /// <summary>Passages searchable in this view.</summary>
    public long Passages => readers.Sum(r => (long)r.NumDocs);

    /// <summary>The analyzer every index and query uses (English: standard tokenizer, lower case, stop words, Porter stems).</summary>
    public static Analyzer CreateAnalyzer() => new EnglishAnalyzer(LuceneVersion.LUCENE_48);

    internal static string ShardPath(string folder, int shard) => Path.Combine(folder, $"shard-{shard}");

    /// <summary>Opens an index at the state its manifest vouches for; a missing or corrupt index is a clear error.</summary>
    public static Bm25Index Open(string folder)
    {
        var manifest = IndexManifest.Load(folder);
        if (manifest.Analyzer != AnalyzerName)
            throw new InvalidDataException($"{folder}: built with analyzer \"{manifest.Analyzer}\"; this build reads \"{AnalyzerName}\" (rebuild the index)");
        var readers = new DirectoryReader[manifest.Shards];
        var dirs = new Lucene.Net.Store.Directory[manifest.Shards];
        try
        {
            for (int s = 0; s < manifest.Shards; s++)
            {
                string path = ShardPath(folder, s);
                if (!System.IO.Directory.Exists(path)) throw new InvalidDataException($"{folder}: shard folder shard-{s} is missing (the manifest names {manifest.Shards} shards)");
                dirs[s] = FSDirectory.Open(path);
                readers[s] = DirectoryReader.Open(Commit(dirs[s], manifest.ShardGenerations[s], path));
            }
        }
        catch (Exception e)
        {
            foreach (var r in readers) r?.Dispose();
            foreach (var d in dirs) d?.Dispose();
            if (e is InvalidDataException) throw;
            throw new InvalidDataException($"{folder}: the index is corrupt or partly deleted ({e.GetType().Name}: {e.Message}); rebuild it with `tessera index build`", e);
        }
        return new Bm25Index(folder, manifest, readers, dirs);
    }

    /// <summary>The commit of generation <paramref name="generation"/> in a shard, or a clear error.</summary>
    internal static IndexCommit Commit(Lucene.Net.Store.Directory dir, long generation, string path)
    {
        IList<IndexCommit> commits;
        try { commits = DirectoryReader.ListCommits(dir); }
        catch (IndexNotFoundException) { throw new InvalidDataException($"{path}: no Lucene commit found (the shard's files are missing)"); }
        return commits.FirstOrDefault(c => c.Generation == generation)
            ?? throw new InvalidDataException($"{path}: the manifest's commit (generation {generation}) is missing; found {string.Join(", ", commits.Select(c => c.Generation))}");
    }

    /// <summary>BM25 top-<paramref name="k"/> passages for query text.</summary>
    public IReadOnlyList<SearchHit> Search(string query, int k)
    {
        using var analyzer = CreateAnalyzer();
        return Search(QueryTerms.Analyze(analyzer, query), k);
    }

    /// <summary>BM25 top-<paramref name="k"/> passages for analysed terms with weights (query boosts).</summary>
    public IReadOnlyList<SearchHit> Search(IReadOnlyDictionary<string, float> terms, int k)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "index search: k must be ≥ 1");
        if (terms.Count == 0) throw new ArgumentException("index search: no terms to search for.");
        if (terms.Count > QueryTerms.MaxTerms) throw new ArgumentException($"index search: {terms.Count} terms; at most {QueryTerms.MaxTerms}.");
        var query = new BooleanQuery();
        foreach (var (t, w) in terms.OrderBy(p => p.Key, StringComparer.Ordinal))
            query.Add(new TermQuery(new Term(TextField, t)) { Boost = w }, Occur.SHOULD);
        var perShard = new TopDocs[readers.Length];
        WorkerPool.Shared.For(readers.Length, readers.Length, (a, b) =>
        {
            for (int s = a; s < b; s++) perShard[s] = searchers[s].Search(query, k);
        });
        var merged = new List<(float Score, long Key, int Shard, int Doc)>();
        for (int s = 0; s < perShard.Length; s++)
            foreach (var sd in perShard[s].ScoreDocs)
                merged.Add((sd.Score, KeyOf(s, sd.Doc), s, sd.Doc));
        merged.Sort((x, y) => x.Score != y.Score ? y.Score.CompareTo(x.Score) : x.Key.CompareTo(y.Key));
        var hits = new List<SearchHit>(Math.Min(k, merged.Count));
        for (int i = 0; i < merged.Count && i < k; i++) hits.Add(new SearchHit(Read(merged[i].Shard, merged[i].Doc), merged[i].Score));
        return hits;
    }

    long KeyOf(int shard, int doc) => readers[shard].Document(doc, KeyOnly).GetField(KeyField).GetInt64Value()!.Value;
    static readonly ISet<string> KeyOnly = new HashSet<string> { KeyField };

    Passage Read(int shard, int doc)
    {
        var d = readers[shard].Document(doc);
        long? date = d.GetField(DateField)?.GetInt64Value();
        return new Passage(d.GetField(KeyField).GetInt64Value()!.Value, d.Get(DocField), d.GetField(StartField).GetInt32Value()!.Value,
            d.GetField(LengthField).GetInt32Value()!.Value, d.Get(TextField), date is { } t ? DateTimeOffset.FromUnixTimeSeconds(t) : null);
    }

    /// <summary>
    /// The passages of the same document just before and just after <paramref name="passage"/> (by
    /// start offset); null where it is the document's first or last.
    /// </summary>
    public (Passage? Previous, Passage? Next) Adjacent(Passage passage)
    {
        var id = new BytesRef(passage.DocumentId);
        (int Start, int Shard, int Doc)? previous = null, next = null;
        for (int s = 0; s < readers.Length; s++)
        {
            var docs = MultiFields.GetTermDocsEnum(readers[s], MultiFields.GetLiveDocs(readers[s]), DocField, id);
            if (docs is null) continue;
            for (int d = docs.NextDoc(); d != DocIdSetIterator.NO_MORE_DOCS; d = docs.NextDoc())
            {
                int start = readers[s].Document(d, StartOnly).GetField(StartField).GetInt32Value()!.Value;
                if (start > passage.Start && (next is null || start < next.Value.Start)) next = (start, s, d);
                if (start < passage.Start && (previous is null || start > previous.Value.Start)) previous = (start, s, d);
            }
        }
        return (previous is { } p ? Read(p.Shard, p.Doc) : null, next is { } n ? Read(n.Shard, n.Doc) : null);
    }
    static readonly ISet<string> StartOnly = new HashSet<string> { StartField };

    /// <summary>Every passage in key order (for building the dense stage and for evaluation).</summary>
    public IEnumerable<Passage> AllPassages()
    {
        var all = new List<(long Key, int Shard, int Doc)>();
        for (int s = 0; s < readers.Length; s++)
        {
            var live = MultiFields.GetLiveDocs(readers[s]);
            for (int d = 0; d < readers[s].MaxDoc; d++)
                if (live is null || live.Get(d)) all.Add((KeyOf(s, d), s, d));
        }
        all.Sort();
        foreach (var (_, s, d) in all) yield return Read(s, d);
    }

    /// <summary>The ids of the indexed documents (each once), read from the stored id field only, not the passages' text.</summary>
    public IReadOnlySet<string> DocumentIds()
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (int s = 0; s < readers.Length; s++)
        {
            var live = MultiFields.GetLiveDocs(readers[s]);
            for (int d = 0; d < readers[s].MaxDoc; d++)
                if (live is null || live.Get(d)) ids.Add(readers[s].Document(d, DocIdOnly).Get(DocField));
        }
        return ids;
    }
    static readonly ISet<string> DocIdOnly = new HashSet<string> { DocField };

    /// <summary>Number of passages containing the analysed term (summed over shards).</summary>
    public long DocFreq(string term) => stats.DocFreq(new Term(TextField, term));

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var r in readers) r.Dispose();
        foreach (var d in dirs) d.Dispose();
    }

    /// <summary>Index-wide statistics, so every shard scores as if it were the whole index.</summary>
    sealed class Stats(DirectoryReader[] readers)
    {
        readonly Dictionary<string, CollectionStatistics> fields = new();

        public long DocFreq(Term t) { long n = 0; foreach (var r in readers) n += r.DocFreq(t); return n; }

        public TermStatistics Term(Term t)
        {
            long df = 0, ttf = 0;
            foreach (var r in readers) { df += r.DocFreq(t); long f = r.TotalTermFreq(t); ttf = ttf < 0 || f < 0 ? -1 : ttf + f; }
            return new TermStatistics(t.Bytes, df, ttf);
        }

        public CollectionStatistics Field(string field)
        {
            lock (fields)
            {
                if (fields.TryGetValue(field, out var c)) return c;
                long maxDoc = 0, docCount = 0, sumTtf = 0, sumDf = 0;
                foreach (var r in readers)
                {
                    maxDoc += r.MaxDoc;
                    var terms = MultiFields.GetTerms(r, field);
                    if (terms is null) continue;
                    docCount += terms.DocCount; sumTtf += terms.SumTotalTermFreq; sumDf += terms.SumDocFreq;
                }
                return fields[field] = new CollectionStatistics(field, maxDoc, docCount, sumTtf, sumDf);
            }
        }
    }

    sealed class GlobalStatsSearcher : IndexSearcher
    {
        readonly Stats stats;
        public GlobalStatsSearcher(IndexReader reader, Stats stats) : base(reader) { this.stats = stats; Similarity = new BM25Similarity(); }
        public override TermStatistics TermStatistics(Term term, TermContext context) => stats.Term(term);
        public override CollectionStatistics CollectionStatistics(string field) => stats.Field(field);
    }
}
