using Cloud.Unum.USearch;
using Tessera.Kernels.IO;

namespace Tessera.Retrieval.Dense;

/// <summary>
/// Approximate nearest neighbours with USearch's HNSW graph (cosine metric, fp32 vectors), keyed
/// by passage key. Saved as one file beside the Lucene shards. Every add and search checks the
/// vector width against the index's, so a model of another size fails with a clear message
/// instead of returning nonsense.
/// </summary>
public sealed class HnswVectorIndex : IDisposable
{
    readonly USearchIndex index;
    readonly object gate = new();

    /// <summary>A new empty index for <paramref name="dimensions"/>-wide vectors.</summary>
    /// <param name="dimensions">Vector width.</param>
    /// <param name="connectivity">Graph degree M (edges per node per layer).</param>
    /// <param name="expansionAdd">Beam width while inserting (ef_construction).</param>
    /// <param name="expansionSearch">Beam width while searching (ef); larger is slower and more exact.</param>
    public HnswVectorIndex(int dimensions, int connectivity = 16, int expansionAdd = 128, int expansionSearch = 64)
    {
        if (dimensions < 1) throw new ArgumentOutOfRangeException(nameof(dimensions), dimensions, "vector index: dimensions must be ≥ 1");
        index = new USearchIndex(MetricKind.Cos, ScalarKind.Float32, (ulong)dimensions, (ulong)connectivity, (ulong)expansionAdd, (ulong)expansionSearch);
        Dimensions = dimensions;
    }

    HnswVectorIndex(USearchIndex loaded, int dimensions) { index = loaded; Dimensions = dimensions; }

    /// <summary>Loads a saved index; <paramref name="expectedDimensions"/> (when given) must match what was saved.</summary>
    public static HnswVectorIndex Load(string path, int? expectedDimensions = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"vector index not found: {path} (build the dense stage with `tessera index build --model ...`)");
        USearchIndex loaded;
        try { loaded = new USearchIndex(path); }
        catch (USearchException e) { throw new InvalidDataException($"{path}: not a readable USearch index ({e.Message})", e); }
        int dims = checked((int)loaded.Dimensions());
        if (expectedDimensions is { } want && want != dims)
        {
            loaded.Dispose();
            throw new InvalidDataException($"{path}: the vector index holds {dims}-dimensional vectors but the embedding model produces {want} (rebuild the dense stage with this model)");
        }
        return new HnswVectorIndex(loaded, dims);
    }

    /// <summary>Vector width.</summary>
    public int Dimensions { get; }

    /// <summary>Vectors held.</summary>
    public long Count => (long)index.Size();

    /// <summary>Adds one vector under <paramref name="key"/>.</summary>
    public void Add(long key, float[] vector)
    {
        Check(vector.Length);
        lock (gate) index.Add((ulong)key, vector);
    }

    /// <summary>Adds many vectors; capacity is reserved once for the batch (adding one at a time grows it one slot per call).</summary>
    public void Add(long[] keys, float[][] vectors)
    {
        if (keys.Length != vectors.Length) throw new ArgumentException($"vector index: {keys.Length} keys for {vectors.Length} vectors.");
        foreach (var v in vectors) Check(v.Length);
        var ukeys = new ulong[keys.Length];
        for (int i = 0; i < keys.Length; i++) ukeys[i] = (ulong)keys[i];
        lock (gate) index.Add(ukeys, vectors);
    }

    /// <summary>The stored vector of <paramref name="key"/>, or null.</summary>
    public float[]? Get(long key)
    {
        lock (gate) return index.Get((ulong)key, out float[] v) > 0 ? v : null;
    }

    /// <summary>Removes the vector of <paramref name="key"/> (no-op when absent).</summary>
    public void Remove(long key) { lock (gate) index.Remove((ulong)key); }

    /// <summary>The approximately nearest <paramref name="k"/> keys with cosine similarity, best first.</summary>
    public (long Key, float Similarity)[] Search(float[] query, int k)
    {
        Check(query.Length);
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "vector search: k must be ≥ 1");
        int n = index.Search(query, k, out ulong[] keys, out float[] distances);
        var r = new (long, float)[n];
        for (int i = 0; i < n; i++) r[i] = ((long)keys[i], 1f - distances[i]);
        return r;
    }

    /// <summary>Writes the index to <paramref name="path"/> atomically. The native library writes by path, so it saves to a scratch file whose bytes the one atomic writer then publishes.</summary>
    public void Save(string path)
    {
        string scratch = Path.Combine(Path.GetTempPath(), $"tessera-hnsw-{Environment.ProcessId}-{Guid.NewGuid():N}.usearch");
        try
        {
            lock (gate) index.Save(scratch);
            AtomicFile.Write(path, fs => { using var src = File.OpenRead(scratch); src.CopyTo(fs); });
        }
        finally { File.Delete(scratch); }
    }

    void Check(int width)
    {
        if (width != Dimensions) throw new ArgumentException($"vector index: got a {width}-dimensional vector; this index holds {Dimensions}-dimensional vectors (embedding model mismatch).");
    }

    /// <inheritdoc/>
    public void Dispose() => index.Dispose();
}
