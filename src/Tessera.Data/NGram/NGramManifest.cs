using Tessera.Kernels.IO;
using System.Text.Json;
using System.Text.Json.Serialization;
using Tessera.Text;

namespace Tessera.Data.NGram;

/// <summary>One shard as listed in <c>index.json</c>: its file, sizes and SHA-256.</summary>
public sealed record NGramShardInfo(string File, long Tokens, long Documents, int PointerBytes, long Bytes, string Sha256);

/// <summary>
/// <c>index.json</c> of an ∞-gram store folder: the format, the tokenizer the ids come from, and
/// every shard with its checksum. It is written last, inside a temporary folder that is then
/// renamed, so a folder with an <c>index.json</c> is always a finished index.
/// </summary>
public sealed record NGramManifest(string Format, int Version, TokenizerIdentity Tokenizer, int TokenBytes, long Tokens, long Documents,
    long ShardTokens, IReadOnlyList<NGramShardInfo> Shards, double BuildSeconds)
{
    /// <summary>File name of the manifest inside an index folder.</summary>
    public const string FileName = "index.json";
    /// <summary>Value of <see cref="Format"/>.</summary>
    public const string FormatName = "tessera-ngram";
    /// <summary>Current <see cref="Version"/>.</summary>
    public const int CurrentVersion = 1;

    /// <summary>snake_case, indented.</summary>
    public static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>Total bytes of the shard files (tokens, suffix arrays, document starts).</summary>
    public long Bytes => Shards.Sum(s => s.Bytes);

    /// <summary>Writes the manifest into <paramref name="directory"/> atomically.</summary>
    public void Save(string directory) => AtomicFile.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Json));

    /// <summary>Reads and validates <c>index.json</c> from <paramref name="directory"/>.</summary>
    public static NGramManifest Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"n-gram index folder not found: {directory}");
        if (!File.Exists(path)) throw new FileNotFoundException($"{directory} is not an n-gram index (no {FileName}); build one with `tessera ngram build`.", path);
        NGramManifest m;
        try { m = JsonSerializer.Deserialize<NGramManifest>(File.ReadAllText(path), Json) ?? throw new JsonException("null"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: malformed ({e.Message})."); }
        if (m.Format != FormatName) throw new InvalidDataException($"{path}: format is '{m.Format}', expected '{FormatName}'.");
        if (m.Version != CurrentVersion) throw new InvalidDataException($"{path}: version {m.Version} is not supported (expected {CurrentVersion}).");
        if (m.Tokenizer is null || m.Shards is null) throw new InvalidDataException($"{path}: missing tokenizer or shards.");
        return m;
    }
}
