using Tessera.Inference;
using Tessera.Model.Checkpoints;
using Tessera.Text;
using Tessera.Vision;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera generate --image F</c> (repeatable; a video is several frames) and the multimodal side
/// of <c>tessera serve</c>: a model folder written by <see cref="MultimodalCheckpoint"/> carries its
/// patch embedder, and images become patch vectors before the engine sees them. A plain prompt is
/// <c>&lt;|bos|&gt; &lt;|image|&gt;… text</c>: images first, in the order given (the placement the
/// chat endpoint uses after the user marker); under prefix-LM the whole prompt is the prefix.
/// </summary>
internal static class ImagePrompt
{
    /// <summary>Largest image file read (the pixel cap guards decoding; this guards reading).</summary>
    const long MaxFileBytes = 64L << 20;

    /// <summary>The embedder of a multimodal model folder; the error says what a model needs to take images.</summary>
    public static PatchEmbedder LoadEmbedder(string source, int dim)
    {
        if (!Directory.Exists(source) || !HfFolder.IsModelFolder(source) || !MultimodalCheckpoint.IsMultimodal(source))
            throw new ArgumentException($"{source} is not a multimodal model: images need a model folder whose config.json has a vision_config (e.g. from `tessera train --data shapes`).");
        return MultimodalCheckpoint.LoadEmbedder(source, dim);
    }

    /// <summary>The embedder when <paramref name="source"/> is a multimodal model folder, else null (serve takes images only then).</summary>
    public static PatchEmbedder? TryLoadEmbedder(string source, int dim)
        => Directory.Exists(source) && HfFolder.IsModelFolder(source) && MultimodalCheckpoint.IsMultimodal(source) ? MultimodalCheckpoint.LoadEmbedder(source, dim) : null;

    /// <summary>The request for <paramref name="text"/> after <paramref name="files"/>' images: rows with −1 per patch, the vectors, the prefix.</summary>
    public static GenerationRequest Build(PatchEmbedder embedder, ITokenizer tok, int? bos, string text, IReadOnlyList<string> files, int contextLength,
        int maxTokens, SamplingOptions sampling, IReadOnlySet<int>? stops)
    {
        int marker = tok.SpecialTokens.TryGetId(ChatTemplate.Image, out int m) ? m
            : throw new ArgumentException($"tokenizer {tok.Name} has no {ChatTemplate.Image} token; images cannot be placed in its prompts.");
        var config = embedder.Config;
        var ids = new List<int>();
        if (bos is { } b) ids.Add(b);
        for (int i = 0; i < files.Count; i++) ids.Add(marker);
        ids.AddRange(tok.Encode(text));
        // Checked before any file is read: the rows must leave room for a reply.
        long rows = ids.Count + (long)files.Count * (config.TokensPerImage - 1);
        if (rows >= contextLength)
            throw new ArgumentException($"{files.Count} images × {config.TokensPerImage} patches + {ids.Count - files.Count} text tokens = {rows} rows; the model's context is {contextLength}, so nothing could be generated. Give fewer images.");
        var patches = new float[files.Count * config.TokensPerImage * config.PatchValues];
        for (int i = 0; i < files.Count; i++)
        {
            var info = new FileInfo(files[i]);
            if (!info.Exists) throw new FileNotFoundException($"--image {files[i]}: no such file.");
            if (info.Length > MaxFileBytes) throw new ArgumentException($"--image {files[i]}: {info.Length} bytes is more than the {MaxFileBytes >> 20} MiB an image file may have.");
            var image = ImageDecoder.Decode(File.ReadAllBytes(files[i]), "--image " + files[i]);
            PatchGrid.Patches(image, config).CopyTo(patches, i * config.TokensPerImage * config.PatchValues);
        }
        var expanded = ImageSpans.Expand(ids.ToArray(), marker, files.Count, config, contextLength);
        return new GenerationRequest(expanded, maxTokens, sampling, stops)
        {
            InputVectors = files.Count == 0 ? null : embedder.Embed(patches),
            PrefixLength = config.PrefixLm ? expanded.Length : 0,
        };
    }
}
