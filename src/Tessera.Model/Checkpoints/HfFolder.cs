using System.Text.Json.Nodes;

namespace Tessera.Model.Checkpoints;

/// <summary>
/// A Hugging Face model folder: config.json plus the weights as one <c>model.safetensors</c> or
/// shards listed by <c>model.safetensors.index.json</c> (F32, F16, BF16 or F64 tensors, converted to
/// fp32). The family comes from config.json's model_type; tensor names from its table. A
/// Tessera checkpoint folder is such a folder too.
/// </summary>
public static class HfFolder
{
    /// <summary>The weights file name of a single-file model.</summary>
    public const string WeightsFile = "model.safetensors";

    /// <summary>The shard index of a sharded model.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>True when <paramref name="dir"/> looks like an HF model folder (config.json and safetensors weights).</summary>
    public static bool IsModelFolder(string dir)
        => File.Exists(Path.Combine(dir, "config.json")) && (File.Exists(Path.Combine(dir, WeightsFile)) || File.Exists(Path.Combine(dir, IndexFile)));

    /// <summary>The config of the folder.</summary>
    public static ModelConfig ReadConfig(string dir)
    {
        string path = Path.Combine(dir, "config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"{dir}: no config.json (not a model folder).", path);
        return ModelConfig.FromHuggingFaceJson(File.ReadAllText(path), path);
    }

    /// <summary>
    /// Loads the folder as an fp32 <see cref="Transformer"/>. Every parameter the family's table
    /// names must be present with the config's shape (the error names the file, the tensor and the
    /// expected shape); an <c>lm_head.weight</c> beside tied embeddings is ignored.
    /// </summary>
    public static Transformer Load(string dir, ModelConfig? config = null)
    {
        config ??= ReadConfig(dir);
        var shards = ShardFiles(dir);
        var readers = new List<SafetensorsReader>();
        var model = new Transformer(config);
        try
        {
            foreach (var f in shards) readers.Add(SafetensorsReader.Open(f));
            foreach (var p in model.Parameters.All)
            {
                var reader = readers.FirstOrDefault(r => r.Contains(p.Name))
                    ?? throw new InvalidDataException($"{dir}: no tensor named '{p.Name}' in {string.Join(", ", shards.Select(Path.GetFileName))} (the {config.Architecture} config expects it, shape {p.ShapeString}).");
                var e = reader.Entry(p.Name);
                if (!SafetensorsDTypes.IsFloat(e.DType)) throw new InvalidDataException($"{reader.Path}: tensor '{p.Name}' is {e.DType}; expected a float type.");
                bool same = e.Shape.Length == p.Rank;
                for (int d = 0; same && d < e.Shape.Length; d++) same = e.Shape[d] == p.Shape[d];
                if (!same) throw new InvalidDataException($"{reader.Path}: tensor '{p.Name}' has shape [{string.Join(", ", e.Shape)}], the config expects {p.ShapeString}.");
                reader.ReadFloat32(e, p.AsSpan("HfFolder.Load"));
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            foreach (var r in readers) r.Dispose();
        }
        return model;
    }

    /// <summary>The safetensors files of a folder: model.safetensors, or the shards its index names.</summary>
    public static IReadOnlyList<string> ShardFiles(string dir)
    {
        string single = Path.Combine(dir, WeightsFile);
        if (File.Exists(single)) return [single];
        string index = Path.Combine(dir, IndexFile);
        if (!File.Exists(index)) throw new FileNotFoundException($"{dir}: neither {WeightsFile} nor {IndexFile} is there.", single);
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(index)); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{index}: not valid JSON ({e.Message})."); }
        if (root?["weight_map"] is not JsonObject map) throw new InvalidDataException($"{index}: no 'weight_map' object.");
        var files = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (_, v) in map)
        {
            string name = v?.GetValue<string>() ?? throw new InvalidDataException($"{index}: a weight_map value is not a file name.");
            if (name.Contains('/') || name.Contains('\\') || name.Contains("..", StringComparison.Ordinal)) throw new InvalidDataException($"{index}: shard '{name}' is not a file in the folder.");
            string path = Path.Combine(dir, name);
            if (!File.Exists(path)) throw new FileNotFoundException($"{index}: shard '{name}' is missing.", path);
            files.Add(path);
        }
        return [.. files];
    }
}
