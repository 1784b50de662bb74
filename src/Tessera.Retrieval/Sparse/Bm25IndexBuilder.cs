using System.Diagnostics;
using System.Text;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search.Similarities;
using Lucene.Net.Store;
using Lucene.Net.Util;

namespace Tessera.Retrieval.Sparse;

/// <summary>Options of <see cref="Bm25IndexBuilder.Build"/>.</summary>
public sealed record IndexBuildOptions
{
    /// <summary>Shards of a new index (null: 1; an existing index keeps its own and refuses a different explicit value).</summary>
    public int? Shards { get; init; }

    /// <summary>Maximum words per passage (new index; an existing one keeps its value).</summary>
    public int PassageWords { get; init; } = 120;

    /// <summary>Progress lines (null: silent).</summary>
    public Action<string>? Progress { get; init; }

    /// <summary>Test hook: called after shard i has committed and before the manifest is written; throwing here simulates a crash.</summary>
    public Action<int>? AfterShardCommit { get; init; }
}

/// <summary>What a build did.</summary>
/// <param name="Manifest">The manifest now in force.</param>
/// <param name="AddedDocuments">Documents new to the index.</param>
/// <param name="ReplacedDocuments">Documents whose id was already indexed (their old passages were removed).</param>
/// <param name="AddedPassages">Passages written by this build.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record IndexBuildResult(IndexManifest Manifest, long AddedDocuments, long ReplacedDocuments, long AddedPassages, double Seconds);

/// <summary>
/// Builds or extends a <see cref="Bm25Index"/> on disk. Documents are added to the shard their id
/// hashes to (re-adding an id replaces its passages); every shard commits, and only then is the
/// manifest naming the new commits written atomically. A build that fails or is killed at any
/// point leaves the previous manifest and the commits it names, so the last good index stays
/// usable; the next build starts from that state and discards the orphaned work.
/// </summary>
public static class Bm25IndexBuilder
{
    /// <summary>Builds (or incrementally extends) the index in <paramref name="folder"/> from <paramref name="documents"/>.</summary>
    public static IndexBuildResult Build(string folder, IEnumerable<SourceDocument> documents, IndexBuildOptions? options = null)
    {
        options ??= new IndexBuildOptions();
        var clock = Stopwatch.StartNew();
        IndexManifest? old = IndexManifest.Exists(folder) ? IndexManifest.Load(folder) : null;
        if (old is not null && old.Analyzer != Bm25Index.AnalyzerName)
            throw new InvalidDataException($"{folder}: built with analyzer \"{old.Analyzer}\"; this build writes \"{Bm25Index.AnalyzerName}\" (build into a new folder)");
        if (old is not null && options.Shards is { } asked && asked != old.Shards)
            throw new ArgumentException($"{folder}: the index has {old.Shards} shard(s); --shards {asked} cannot change that (build into a new folder)");
        int shards = old?.Shards ?? options.Shards ?? 1;
        if (shards < 1 || shards > 256) throw new ArgumentOutOfRangeException(nameof(options), shards, "index build: shards must be in [1, 256]");
        int passageWords = old?.PassageWords ?? options.PassageWords;
        System.IO.Directory.CreateDirectory(folder);

        var dirs = new Lucene.Net.Store.Directory[shards];
        var writers = new IndexWriter[shards];
        var before = new DirectoryReader?[shards];
        using var analyzer = Bm25Index.CreateAnalyzer();
        bool committed = false;
        try
        {
            for (int s = 0; s < shards; s++)
            {
                string path = Bm25Index.ShardPath(folder, s);
                dirs[s] = FSDirectory.Open(path);
                var config = new IndexWriterConfig(LuceneVersion.LUCENE_48, analyzer) { Similarity = new BM25Similarity() };
                if (old is null)
                {
                    config.OpenMode = OpenMode.CREATE;          // a folder without a manifest holds nothing good: start over
                    config.IndexDeletionPolicy = new KeepManifestCommitPolicy(-1);
                }
                else
                {
                    var commit = Bm25Index.Commit(dirs[s], old.ShardGenerations[s], path);
                    config.OpenMode = OpenMode.APPEND;
                    config.IndexCommit = commit;                // roll back anything a failed build committed after the manifest
                    config.IndexDeletionPolicy = new KeepManifestCommitPolicy(old.ShardGenerations[s]);
                    before[s] = DirectoryReader.Open(commit);
                }
                writers[s] = new IndexWriter(dirs[s], config);
            }

            long key = old?.NextKey ?? 0, added = 0, replaced = 0, passages = 0;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var doc in documents)
            {
                if (string.IsNullOrEmpty(doc.Id)) throw new InvalidDataException("index build: a document has an empty id");
                int s = ShardOf(doc.Id, shards);
                var idTerm = new Term(Bm25Index.DocField, doc.Id);
                bool existed = !seen.Add(doc.Id) || (before[s]?.DocFreq(idTerm) ?? 0) > 0;
                if (existed) { writers[s].DeleteDocuments(idTerm); replaced++; } else added++;
                foreach (var (start, length) in DocumentSource.Chunk(doc.Text, passageWords))
                {
                    writers[s].AddDocument(Fields(key++, doc, start, length));
                    passages++;
                }
                if ((added + replaced) % 10_000 == 0) options.Progress?.Invoke($"index build: {added + replaced:N0} documents, {passages:N0} passages");
            }

            for (int s = 0; s < shards; s++)
            {
                writers[s].Commit();
                options.AfterShardCommit?.Invoke(s);
            }
            for (int s = 0; s < shards; s++) { writers[s].Dispose(); before[s]?.Dispose(); }
            committed = true;

            var gens = new long[shards];
            long live = 0;
            for (int s = 0; s < shards; s++)
            {
                var newest = DirectoryReader.ListCommits(dirs[s]).MaxBy(c => c.Generation)!;
                gens[s] = newest.Generation;
                using var r = DirectoryReader.Open(newest);
                live += r.NumDocs;
            }
            var manifest = new IndexManifest
            {
                Shards = shards, ShardGenerations = gens, NextKey = key, Documents = (old?.Documents ?? 0) + added,
                Passages = live, PassageWords = passageWords, Analyzer = Bm25Index.AnalyzerName,
                Dense = old?.Dense is { } d && replaced == 0 && added == 0 ? d : null,   // new passages invalidate the vector index
                Updated = DateTimeOffset.UtcNow,
            };
            manifest.Save(folder);
            return new IndexBuildResult(manifest, added, replaced, passages, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            if (!committed)
            {
                foreach (var w in writers) { try { w?.Rollback(); } catch (Exception) { /* already failing; the manifest still names the good commits */ } }
                foreach (var r in before) r?.Dispose();
            }
            foreach (var d in dirs) d?.Dispose();
        }
    }

    /// <summary>The shard a document id belongs to (FNV-1a of its UTF-8 bytes; stable across runs and machines).</summary>
    public static int ShardOf(string id, int shards)
    {
        uint h = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(id)) { h ^= b; h *= 16777619; }
        return (int)(h % (uint)shards);
    }

    static Document Fields(long key, SourceDocument doc, int start, int length)
    {
        var d = new Document
        {
            new Int64Field(Bm25Index.KeyField, key, Field.Store.YES),
            new StringField(Bm25Index.DocField, doc.Id, Field.Store.YES),
            new StoredField(Bm25Index.StartField, start),
            new StoredField(Bm25Index.LengthField, length),
            new TextField(Bm25Index.TextField, doc.Text.Substring(start, length), Field.Store.YES),
        };
        if (doc.Date is { } date) d.Add(new StoredField(Bm25Index.DateField, date.ToUnixTimeSeconds()));
        return d;
    }
}
