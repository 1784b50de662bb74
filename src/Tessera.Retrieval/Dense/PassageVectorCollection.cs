using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace Tessera.Retrieval.Dense;

/// <summary>A passage with its embedding, as records of <see cref="PassageVectorCollection"/>.</summary>
public sealed class PassageRecord
{
    /// <summary>Passage key (the index-wide key).</summary>
    [VectorStoreKey] public long Key { get; set; }

    /// <summary>The owning document's id.</summary>
    [VectorStoreData(IsIndexed = true)] public string DocumentId { get; set; } = "";

    /// <summary>Character offset of the passage in its document.</summary>
    [VectorStoreData] public int Start { get; set; }

    /// <summary>Passage length in characters.</summary>
    [VectorStoreData] public int Length { get; set; }

    /// <summary>Passage text.</summary>
    [VectorStoreData(IsFullTextIndexed = true)] public string Text { get; set; } = "";

    /// <summary>The embedding (L2-normalised).</summary>
    public ReadOnlyMemory<float> Vector { get; set; }
}

/// <summary>
/// The HNSW index as a Microsoft.Extensions.VectorData collection: upsert, get, delete and
/// nearest-neighbour search over <see cref="PassageRecord"/>s. A search value may be a vector
/// (<c>float[]</c>, <c>ReadOnlyMemory&lt;float&gt;</c>, <see cref="Embedding{T}"/>) or, when the
/// collection has an embedding generator, a string. Scores are cosine similarities.
/// </summary>
public sealed class PassageVectorCollection : VectorStoreCollection<long, PassageRecord>
{
    readonly HnswVectorIndex index;
    readonly Dictionary<long, PassageRecord> records = new();
    readonly IEmbeddingGenerator<string, Embedding<float>>? generator;
    readonly object gate = new();
    bool exists = true;

    /// <summary>An empty collection of <paramref name="dimensions"/>-wide vectors.</summary>
    public PassageVectorCollection(string name, int dimensions, IEmbeddingGenerator<string, Embedding<float>>? generator = null)
    {
        Name = name; this.generator = generator;
        index = new HnswVectorIndex(dimensions);
    }

    /// <summary>A collection over an index folder's passages and their stored vectors (the dense stage must exist).</summary>
    public static PassageVectorCollection FromIndex(Sparse.Bm25Index sparse, HnswVectorIndex vectors, IEmbeddingGenerator<string, Embedding<float>>? generator = null)
    {
        var c = new PassageVectorCollection(Path.GetFileName(Path.GetFullPath(sparse.Folder)), vectors.Dimensions, generator);
        foreach (var p in sparse.AllPassages())
            if (vectors.Get(p.Key) is { } v)
                c.Put(new PassageRecord { Key = p.Key, DocumentId = p.DocumentId, Start = p.Start, Length = p.Length, Text = p.Text, Vector = v });
        return c;
    }

    /// <inheritdoc/>
    public override string Name { get; }

    /// <summary>Records held.</summary>
    public int Count { get { lock (gate) return records.Count; } }

    void Put(PassageRecord r)
    {
        var v = r.Vector.ToArray();
        AnnBenchmark.Normalise(v);
        lock (gate)
        {
            if (records.ContainsKey(r.Key)) index.Remove(r.Key);
            index.Add(r.Key, v);
            records[r.Key] = r;
        }
    }

    /// <inheritdoc/>
    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) => Task.FromResult(exists);

    /// <inheritdoc/>
    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default) { exists = true; return Task.CompletedTask; }

    /// <inheritdoc/>
    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default)
    {
        lock (gate) { foreach (var k in records.Keys) index.Remove(k); records.Clear(); exists = false; }
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public override Task<PassageRecord?> GetAsync(long key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        lock (gate) return Task.FromResult(records.GetValueOrDefault(key));
    }

    /// <inheritdoc/>
    public override async IAsyncEnumerable<PassageRecord> GetAsync(Expression<Func<PassageRecord, bool>> filter, int top, FilteredRecordRetrievalOptions<PassageRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var predicate = filter.Compile();
        List<PassageRecord> matches;
        lock (gate) matches = records.Values.Where(predicate).OrderBy(r => r.Key).Skip(options?.Skip ?? 0).Take(top).ToList();
        foreach (var r in matches) { cancellationToken.ThrowIfCancellationRequested(); yield return r; }
        await Task.CompletedTask;
    }

    /// <inheritdoc/>
    public override Task DeleteAsync(long key, CancellationToken cancellationToken = default)
    {
        lock (gate) if (records.Remove(key)) index.Remove(key);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public override Task UpsertAsync(PassageRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Vector.Length != index.Dimensions)
            throw new ArgumentException($"vector collection {Name}: record {record.Key} has a {record.Vector.Length}-dimensional vector; the collection holds {index.Dimensions}-dimensional vectors.");
        Put(record);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public override async Task UpsertAsync(IEnumerable<PassageRecord> records, CancellationToken cancellationToken = default)
    {
        foreach (var r in records) await UpsertAsync(r, cancellationToken);
    }

    /// <inheritdoc/>
    public override async IAsyncEnumerable<VectorSearchResult<PassageRecord>> SearchAsync<TInput>(TInput searchValue, int top, VectorSearchOptions<PassageRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (top < 1) throw new ArgumentOutOfRangeException(nameof(top), top, "vector search: top must be ≥ 1");
        float[] query = searchValue switch
        {
            float[] a => (float[])a.Clone(),
            ReadOnlyMemory<float> m => m.ToArray(),
            Embedding<float> e => e.Vector.ToArray(),
            string s when generator is not null => (await generator.GenerateAsync([s], cancellationToken: cancellationToken))[0].Vector.ToArray(),
            string => throw new NotSupportedException($"vector collection {Name}: searching by text needs an embedding generator."),
            _ => throw new NotSupportedException($"vector collection {Name}: search values of type {typeof(TInput).Name} are not supported (give float[], ReadOnlyMemory<float>, Embedding<float> or string)."),
        };
        if (query.Length != index.Dimensions)
            throw new ArgumentException($"vector collection {Name}: embedding-dimension mismatch: the query has {query.Length} dimensions, the collection {index.Dimensions}.");
        AnnBenchmark.Normalise(query);
        int skip = options?.Skip ?? 0;
        var filter = options?.Filter?.Compile();
        // Over-fetch when filtering, since filtered-out neighbours do not count towards top.
        int fetch = filter is null ? top + skip : Math.Max(4 * (top + skip), 100);
        var hits = index.Search(query, fetch);
        int produced = 0, skipped = 0;
        foreach (var (key, sim) in hits)
        {
            PassageRecord? r;
            lock (gate) r = records.GetValueOrDefault(key);
            if (r is null || (filter is not null && !filter(r))) continue;
            if (skipped++ < skip) continue;
            yield return new VectorSearchResult<PassageRecord>(r, sim);
            if (++produced == top) yield break;
        }
    }

    /// <inheritdoc/>
    public override object? GetService(Type serviceType, object? serviceKey = null)
        => serviceKey is null && serviceType == typeof(VectorStoreCollectionMetadata) ? new VectorStoreCollectionMetadata { VectorStoreSystemName = "usearch", CollectionName = Name }
         : serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) index.Dispose();
        base.Dispose(disposing);
    }
}
