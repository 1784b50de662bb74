using System.Diagnostics;
using Tessera.Retrieval.Sparse;

namespace Tessera.Retrieval.Dense;

/// <summary>
/// The dense stage of an index folder: every passage's embedding in an HNSW file beside the Lucene
/// shards, recorded in the manifest with the embedder's name and width. Opening it with an
/// embedder of another width is refused with a message naming both widths.
/// </summary>
public static class DenseStage
{
    /// <summary>Name of the vector file inside the index folder.</summary>
    public const string FileName = "vectors.usearch";

    /// <summary>Embeds every passage of <paramref name="sparse"/> and publishes the vector file and the updated manifest.</summary>
    public static DenseManifest Build(Bm25Index sparse, ModelEmbeddingGenerator embedder, Action<string>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        using var hnsw = new HnswVectorIndex(embedder.Dimensions);
        var keys = new List<long>();
        var vectors = new List<float[]>();
        foreach (var p in sparse.AllPassages())
        {
            keys.Add(p.Key); vectors.Add(embedder.Embed(p.Text));
            if (keys.Count % 1000 == 0) progress?.Invoke($"index build: embedded {keys.Count:N0}/{sparse.Passages:N0} passages ({keys.Count / clock.Elapsed.TotalSeconds:F0}/s)");
        }
        hnsw.Add([.. keys], [.. vectors]);
        long n = keys.Count;
        hnsw.Save(Path.Combine(sparse.Folder, FileName));
        var dense = new DenseManifest(embedder.ModelId, embedder.Dimensions, n, FileName);
        (sparse.Manifest with { Dense = dense, Updated = DateTimeOffset.UtcNow }).Save(sparse.Folder);
        return dense;
    }

    /// <summary>Opens the vector file of an index for queries whose embeddings are <paramref name="embedderDimensions"/> wide.</summary>
    public static HnswVectorIndex Open(string folder, IndexManifest manifest, int embedderDimensions)
    {
        var dense = manifest.Dense ?? throw new InvalidDataException($"{folder}: the index has no dense stage (build it with `tessera index build --input ... --out {folder} --model MODEL`)");
        if (dense.Dimensions != embedderDimensions)
            throw new InvalidDataException($"{folder}: embedding-dimension mismatch: the index holds {dense.Dimensions}-dimensional vectors from {dense.Embedder}, the query model produces {embedderDimensions}");
        return HnswVectorIndex.Load(Path.Combine(folder, dense.File), dense.Dimensions);
    }
}
