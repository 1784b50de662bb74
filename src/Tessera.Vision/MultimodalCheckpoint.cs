using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Model.Checkpoints;

namespace Tessera.Vision;

/// <summary>
/// A multimodal model as a Hugging Face-style folder: config.json is the decoder's config plus a
/// <c>vision_config</c> object (how images are tokenized), model.safetensors holds the decoder's
/// tensors under their family names and the embedder's under <c>vision_*</c> names. A text-only
/// loader (<see cref="HfFolder"/>) reads the same folder as the decoder alone.
/// </summary>
public static class MultimodalCheckpoint
{
    /// <summary>True when <paramref name="dir"/> is a model folder whose config.json has a vision_config.</summary>
    public static bool IsMultimodal(string dir)
        => HfFolder.IsModelFolder(dir) && JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))?["vision_config"] is not null;

    /// <summary>Writes config.json and model.safetensors into <paramref name="dir"/> (atomically, each).</summary>
    public static void Save(MultimodalModel model, string dir)
    {
        Directory.CreateDirectory(dir);
        var config = JsonNode.Parse(model.Decoder.Config.ToHuggingFaceJson())!.AsObject();
        config["vision_config"] = model.Embedder.Config.ToJson();
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        var tensors = model.AllParameters
            .Select(p => SafetensorsTensor.F32(p.Name!, [.. p.Shape.ToArray().Select(d => (long)d)], p.AsSpan("MultimodalCheckpoint")))
            .ToList();
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Loads a folder written by <see cref="Save"/>; the error names a missing vision tensor and its expected shape.</summary>
    public static MultimodalModel Load(string dir)
    {
        var decoder = HfFolder.Load(dir);
        try { return new MultimodalModel(decoder, LoadEmbedder(dir, decoder.Config.Dim)); }
        catch { decoder.Dispose(); throw; }
    }

    /// <summary>
    /// The patch embedder alone (for an inference engine that runs the decoder from its own weights):
    /// <c>vision_config</c> from config.json, the <c>vision_*</c> tensors from model.safetensors.
    /// </summary>
    public static PatchEmbedder LoadEmbedder(string dir, int dim)
    {
        var node = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        var vision = VisionConfig.FromJson(node["vision_config"] ?? throw new InvalidDataException($"{dir}/config.json: no vision_config (a text-only model)."));
        var embedder = new PatchEmbedder(vision, dim);
        try
        {
            using var reader = SafetensorsReader.Open(Path.Combine(dir, "model.safetensors"));
            foreach (var p in embedder.Parameters.All)
            {
                if (!reader.Contains(p.Name!)) throw new InvalidDataException($"{dir}/model.safetensors: no tensor '{p.Name}' (the vision_config expects {p.ShapeString}).");
                var e = reader.Entry(p.Name!);
                if (!e.Shape.SequenceEqual(p.Shape.ToArray().Select(d => (long)d)))
                    throw new InvalidDataException($"{dir}/model.safetensors: '{p.Name}' has shape [{string.Join(", ", e.Shape)}], expected {p.ShapeString}.");
                reader.ReadFloat32(e, p.AsSpan("MultimodalCheckpoint"));
            }
        }
        catch { embedder.Dispose(); throw; }
        return embedder;
    }
}
