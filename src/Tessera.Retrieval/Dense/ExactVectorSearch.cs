using System.Numerics.Tensors;

namespace Tessera.Retrieval.Dense;

/// <summary>
/// Exact nearest neighbours by scanning every vector (cosine on L2-normalised vectors = dot
/// product). The reference the HNSW index is measured against, and the rerank scorer of the
/// funnel's dense stage, where only a few hundred candidates are scored.
/// </summary>
public sealed class ExactVectorSearch
{
    readonly float[] data;
    readonly long[] keys;

    /// <summary>Row i of <paramref name="vectors"/> (row-major, <paramref name="dimensions"/> wide) has key <paramref name="keys"/>[i].</summary>
    public ExactVectorSearch(float[] vectors, long[] keys, int dimensions)
    {
        if (dimensions < 1 || vectors.Length != (long)keys.Length * dimensions)
            throw new ArgumentException($"exact search: {keys.Length} keys × {dimensions} dimensions needs {(long)keys.Length * dimensions} values; {vectors.Length} were given.");
        data = vectors; this.keys = keys; Dimensions = dimensions;
    }

    /// <summary>Vector width.</summary>
    public int Dimensions { get; }

    /// <summary>Vectors held.</summary>
    public int Count => keys.Length;

    /// <summary>The <paramref name="k"/> keys with the largest dot product with <paramref name="query"/>, best first (ties: smaller key first).</summary>
    public (long Key, float Similarity)[] Search(ReadOnlySpan<float> query, int k)
    {
        if (query.Length != Dimensions) throw new ArgumentException($"exact search: the query has {query.Length} dimensions; the vectors have {Dimensions}.");
        k = Math.Min(k, keys.Length);
        if (k <= 0) return [];
        // A min-heap of the best k so far: O(N log k) without sorting all N scores.
        var heap = new PriorityQueue<int, (float, long)>(k + 1, HeapOrder.Instance);
        for (int i = 0; i < keys.Length; i++)
        {
            float s = TensorPrimitives.Dot(query, data.AsSpan(i * Dimensions, Dimensions));
            if (heap.Count < k) heap.Enqueue(i, (s, keys[i]));
            else if (heap.TryPeek(out _, out var worst) && HeapOrder.Instance.Compare((s, keys[i]), worst) > 0) heap.EnqueueDequeue(i, (s, keys[i]));
        }
        var result = new (long, float)[heap.Count];
        for (int j = result.Length - 1; j >= 0; j--) { heap.TryDequeue(out int i, out var p); result[j] = (keys[i], p.Item1); }
        return result;
    }

    /// <summary>Orders (similarity, key) so the worst is the heap's minimum: lower similarity, then larger key, is worse.</summary>
    sealed class HeapOrder : IComparer<(float, long)>
    {
        public static readonly HeapOrder Instance = new();
        public int Compare((float, long) a, (float, long) b) => a.Item1 != b.Item1 ? a.Item1.CompareTo(b.Item1) : b.Item2.CompareTo(a.Item2);
    }
}
