using System.Security.Cryptography;
using System.Text;
using Tessera.Kernels.IO;
using Tessera.Model.Checkpoints;

namespace Tessera.Model.Modules;

/// <summary>
/// manifest.json of a module folder: what it is, which base it was built for (SHA-256 over the
/// base's weights, see <see cref="ModuleFile.BaseHash"/>), its data, metrics and the SHA-256 of
/// its weights file (checked by verify and at load).
/// </summary>
public sealed record ModuleManifest
{
    /// <summary>Module id (unique within a registry and on one base).</summary>
    public required string Id { get; init; }
    /// <summary>"experts" or "lora".</summary>
    public required string Kind { get; init; }
    /// <summary>Version of this module (the registry keeps one per id).</summary>
    public int Version { get; init; } = 1;
    /// <summary>SHA-256 (hex) over the base's weights.</summary>
    public required string BaseHash { get; init; }
    /// <summary>Free-text domain name (e.g. "csharp").</summary>
    public string Domain { get; init; } = "";
    /// <summary>SHA-256 (hex) of the training data's token shards, when known.</summary>
    public string DataHash { get; init; } = "";
    /// <summary>Layers the module attaches to.</summary>
    public required int[] Layers { get; init; }
    /// <summary>Experts per layer (experts kind).</summary>
    public int Experts { get; init; }
    /// <summary>Expert width (experts kind).</summary>
    public int HiddenDim { get; init; }
    /// <summary>LoRA rank.</summary>
    public int Rank { get; init; }
    /// <summary>LoRA α (scale α/rank).</summary>
    public float Alpha { get; init; }
    /// <summary>LoRA projections.</summary>
    public string[] Projections { get; init; } = [];
    /// <summary>SHA-256 (hex) of module.safetensors.</summary>
    public required string WeightsSha256 { get; init; }
    /// <summary>Measured figures (e.g. held-out bits per byte), by name.</summary>
    public Dictionary<string, double> Metrics { get; init; } = [];
    /// <summary>Module training step count.</summary>
    public long Steps { get; init; }

    /// <summary>The module shape this manifest describes.</summary>
    public ModuleSpec Spec => new(Id, Kind == "lora" ? ModuleKind.Lora : Kind == "experts" ? ModuleKind.Experts
        : throw new InvalidDataException($"Module '{Id}': unknown kind '{Kind}' in manifest.json (expected experts or lora)."),
        Layers, Experts, HiddenDim, Rank, Alpha, Projections);
}

/// <summary>A module folder: module.safetensors + manifest.json, written atomically as one folder.</summary>
public static class ModuleFile
{
    /// <summary>Weights file name inside a module folder.</summary>
    public const string WeightsName = "module.safetensors";
    /// <summary>Manifest file name inside a module folder.</summary>
    public const string ManifestName = "manifest.json";

    /// <summary>SHA-256 (hex) over every base weight in checkpoint order: name, shape and fp32 bytes.</summary>
    public static string BaseHash(Transformer model)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var t in model.Parameters.All)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(t.Name + "|" + t.ShapeString + "\n"));
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.AsSpan("BaseHash")));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>SHA-256 (hex) of a file's bytes.</summary>
    public static string FileSha256(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }

    /// <summary>Writes <paramref name="module"/> into the folder <paramref name="dir"/> (replaced atomically) and returns its manifest.</summary>
    public static ModuleManifest Save(string dir, ModelModule module, string baseHash, string domain = "", string dataHash = "",
        IReadOnlyDictionary<string, double>? metrics = null, long steps = 0, int version = 1)
    {
        ModuleManifest? manifest = null;
        AtomicFile.PublishDirectory(dir, staging =>
        {
            var tensors = module.Parameters.All.Select(t => SafetensorsTensor.F32(t.Name, t.Shape.ToArray().Select(d => (long)d).ToArray(), t.AsSpan("ModuleFile"))).ToList();
            string weights = Path.Combine(staging, WeightsName);
            SafetensorsWriter.Write(weights, tensors, new Dictionary<string, string> { ["module_id"] = module.Id, ["base_hash"] = baseHash });
            var s = module.Spec;
            manifest = new ModuleManifest
            {
                Id = s.Id, Kind = s.Kind == ModuleKind.Lora ? "lora" : "experts", Version = version, BaseHash = baseHash, Domain = domain, DataHash = dataHash,
                Layers = [.. s.Layers.Order()], Experts = s.Kind == ModuleKind.Experts ? s.Experts : 0, HiddenDim = s.Kind == ModuleKind.Experts ? s.HiddenDim : 0,
                Rank = s.Kind == ModuleKind.Lora ? s.Rank : 0, Alpha = s.Kind == ModuleKind.Lora ? s.Alpha : 0, Projections = s.Kind == ModuleKind.Lora ? s.LoraProjections : [],
                WeightsSha256 = FileSha256(weights), Metrics = metrics is null ? [] : new(metrics), Steps = steps,
            };
            AtomicFile.WriteAllText(Path.Combine(staging, ManifestName), JsonNaming.Serialize(manifest));
        });
        return manifest!;
    }

    /// <summary>Reads a module folder's manifest; a missing or unreadable one is one clear error naming the folder.</summary>
    public static ModuleManifest ReadManifest(string dir)
    {
        string path = Path.Combine(dir, ManifestName);
        if (!File.Exists(path)) throw new InvalidDataException($"Module folder {dir}: no {ManifestName} (incomplete or not a module).");
        ModuleManifest? m;
        try { m = JsonNaming.Deserialize<ModuleManifest>(File.ReadAllText(path)); }
        catch (Exception e) when (e is System.Text.Json.JsonException or NotSupportedException)
        { throw new InvalidDataException($"Module folder {dir}: {ManifestName} is not a valid manifest ({e.Message})."); }
        return m ?? throw new InvalidDataException($"Module folder {dir}: {ManifestName} is empty.");
    }

    /// <summary>
    /// Checks a module folder without a base: the manifest reads, the weights file exists and its
    /// SHA-256 matches the manifest. Returns the manifest; throws one clear error otherwise.
    /// </summary>
    public static ModuleManifest Verify(string dir)
    {
        var m = ReadManifest(dir);
        string weights = Path.Combine(dir, WeightsName);
        if (!File.Exists(weights)) throw new InvalidDataException($"Module '{m.Id}' ({dir}): {WeightsName} is missing (a write interrupted before it finished?).");
        string actual = FileSha256(weights);
        if (!string.Equals(actual, m.WeightsSha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"Module '{m.Id}' ({dir}): {WeightsName} has SHA-256 {actual}, the manifest expects {m.WeightsSha256}: the file was modified or damaged.");
        return m;
    }

    /// <summary>
    /// Loads a verified module folder for <paramref name="baseModel"/>: refuses a module built for another
    /// base hash and any tensor whose shape does not fit this base.
    /// </summary>
    public static ModelModule Load(string dir, Transformer baseModel, string? baseHash = null)
    {
        var m = Verify(dir);
        baseHash ??= BaseHash(baseModel);
        if (!string.Equals(m.BaseHash, baseHash, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"Module '{m.Id}' ({dir}) was built for base {m.BaseHash[..Math.Min(12, m.BaseHash.Length)]}…, " +
                                           $"but this base's weights hash to {baseHash[..12]}…: attach it only to the base it was trained on.");
        ModelModule module;
        try { module = new ModelModule(m.Spec, baseModel.Config); }
        catch (ArgumentException e) { throw new InvalidDataException($"Module '{m.Id}' ({dir}) does not fit this base: {e.Message}"); }
        try
        {
            using var reader = SafetensorsReader.Open(Path.Combine(dir, WeightsName));
            foreach (var t in module.Parameters.All)
            {
                if (!reader.Contains(t.Name)) throw new InvalidDataException($"Module '{m.Id}' ({dir}): {WeightsName} has no tensor '{t.Name}' {t.ShapeString}.");
                var e = reader.Entry(t.Name);
                if (!e.Shape.SequenceEqual(t.Shape.ToArray().Select(d => (long)d)))
                    throw new InvalidDataException($"Module '{m.Id}' ({dir}): tensor '{t.Name}' has shape [{string.Join(", ", e.Shape)}], this base needs {t.ShapeString}.");
                reader.ReadFloat32(e, t.AsSpan("ModuleFile.Load"));
            }
            if (reader.Entries.Count != module.Parameters.Count)
                throw new InvalidDataException($"Module '{m.Id}' ({dir}): {WeightsName} holds {reader.Entries.Count} tensors, the manifest's shape needs {module.Parameters.Count}.");
            return module;
        }
        catch { module.Dispose(); throw; }
    }
}
