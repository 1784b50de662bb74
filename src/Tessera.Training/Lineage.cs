using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Kernels.IO;

namespace Tessera.Training;

/// <summary>
/// Where a run's weights started: <c>lineage.json</c> in every checkpoint of a run started with
/// <c>tessera train --init-from</c> (and in upcycled or merged checkpoints). It names the base
/// checkpoint and the SHA-256 of its <c>model.safetensors</c>, taken from the base's manifest, so
/// branch-train-mix can refuse branches that did not start from the same weights.
/// </summary>
/// <param name="Base">The checkpoint folder the weights came from (absolute path at the time).</param>
/// <param name="BaseWeightsSha256">SHA-256 of the base's <c>model.safetensors</c>.</param>
/// <param name="How">How the weights were derived: <c>init-from</c>, <c>upcycle</c> or <c>btm-merge</c>.</param>
public sealed record Lineage(string Base, string BaseWeightsSha256, string How)
{
    /// <summary>File name inside a checkpoint folder.</summary>
    public const string FileName = "lineage.json";

    /// <summary>The lineage of weights taken from the (verified) checkpoint folder <paramref name="checkpoint"/>.</summary>
    public static Lineage Of(string checkpoint, string how)
    {
        string manifest = Path.Combine(checkpoint, Checkpoint.ManifestFile);
        var files = JsonNode.Parse(File.ReadAllText(manifest))?["files"] as JsonArray
            ?? throw new InvalidDataException($"{manifest}: no file list.");
        foreach (var f in files)
            if (f?["path"]?.GetValue<string>() == Checkpoint.ModelFile)
                return new Lineage(Path.GetFullPath(checkpoint), f["sha256"]?.GetValue<string>() ?? throw new InvalidDataException($"{manifest}: {Checkpoint.ModelFile} has no sha256."), how);
        throw new InvalidDataException($"{manifest}: does not list {Checkpoint.ModelFile}.");
    }

    /// <summary>Writes this lineage into a (staging) checkpoint folder.</summary>
    public void WriteTo(string folder) => AtomicFile.WriteAllText(Path.Combine(folder, FileName), JsonNaming.Serialize(this));

    /// <summary>The lineage stored in checkpoint folder <paramref name="checkpoint"/>, or null when it has none.</summary>
    public static Lineage? Read(string checkpoint)
    {
        string path = Path.Combine(checkpoint, FileName);
        if (!File.Exists(path)) return null;
        try { return JsonNaming.Deserialize<Lineage>(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path}: empty."); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a lineage file ({e.Message})."); }
    }
}
