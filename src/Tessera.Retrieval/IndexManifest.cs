using Tessera.Kernels.IO;

namespace Tessera.Retrieval;

/// <summary>
/// <c>index.json</c>: the one file that says which state of an index folder is the good one. Each
/// shard's Lucene commit generation is recorded here after every shard has committed, and the file
/// is replaced atomically (<see cref="AtomicFile"/>), so a build that dies at any point leaves the
/// previous manifest naming commits that still exist (see <see cref="Sparse.KeepManifestCommitPolicy"/>).
/// </summary>
public sealed record IndexManifest
{
    /// <summary>File name inside the index folder.</summary>
    public const string FileName = "index.json";

    /// <summary>The format tag this code reads and writes.</summary>
    public const string CurrentFormat = "tessera-index/1";

    /// <summary>Format tag; a different value is refused.</summary>
    public string Format { get; init; } = CurrentFormat;

    /// <summary>Number of Lucene shards (fixed when the index is created).</summary>
    public int Shards { get; init; }

    /// <summary>The committed generation of each shard that this manifest vouches for.</summary>
    public long[] ShardGenerations { get; init; } = [];

    /// <summary>Next passage key to assign.</summary>
    public long NextKey { get; init; }

    /// <summary>Documents indexed.</summary>
    public long Documents { get; init; }

    /// <summary>Passages indexed (live, over all shards).</summary>
    public long Passages { get; init; }

    /// <summary>Maximum words per passage used at build time.</summary>
    public int PassageWords { get; init; }

    /// <summary>The analyzer's name (queries must be analysed the same way).</summary>
    public string Analyzer { get; init; } = "";

    /// <summary>The dense stage, when built: embedder name, dimensions and the vector file.</summary>
    public DenseManifest? Dense { get; init; }

    /// <summary>UTC time of the last successful build.</summary>
    public DateTimeOffset Updated { get; init; }

    /// <summary>Reads the manifest of <paramref name="folder"/>; a missing or unreadable one is a clear error.</summary>
    public static IndexManifest Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"index not found: {folder} (build one with `tessera index build --input DIR --out {folder}`)");
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new InvalidDataException($"{folder} is not a Tessera index: {FileName} is missing (a build that never finished leaves no manifest; rebuild it)");
        IndexManifest? m;
        try { m = JsonNaming.Deserialize<IndexManifest>(File.ReadAllText(path)); }
        catch (Exception e) when (e is System.Text.Json.JsonException or NotSupportedException)
        { throw new InvalidDataException($"{path}: the index manifest is corrupt ({e.Message})"); }
        if (m is null || m.Format != CurrentFormat)
            throw new InvalidDataException($"{path}: expected format \"{CurrentFormat}\", found \"{m?.Format}\"");
        if (m.Shards < 1 || m.ShardGenerations.Length != m.Shards)
            throw new InvalidDataException($"{path}: the manifest names {m.Shards} shard(s) but {m.ShardGenerations.Length} generation(s)");
        return m;
    }

    /// <summary>True when <paramref name="folder"/> holds a manifest.</summary>
    public static bool Exists(string folder) => File.Exists(Path.Combine(folder, FileName));

    /// <summary>Writes the manifest atomically.</summary>
    public void Save(string folder) => AtomicFile.WriteAllText(Path.Combine(folder, FileName), JsonNaming.Serialize(this));
}

/// <summary>What the dense stage of an index was built with.</summary>
/// <param name="Embedder">The embedding model's identity (queries must use the same one).</param>
/// <param name="Dimensions">Vector width.</param>
/// <param name="Count">Vectors stored.</param>
/// <param name="File">The HNSW file name inside the index folder.</param>
public sealed record DenseManifest(string Embedder, int Dimensions, long Count, string File);
