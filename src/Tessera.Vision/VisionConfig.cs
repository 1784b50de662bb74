using System.Text.Json.Nodes;

namespace Tessera.Vision;

/// <summary>
/// How images become input rows: every image is resized to <see cref="ImageSize"/>² and cut into
/// non-overlapping <see cref="PatchSize"/>² patches in raster order, one input row per patch
/// (<see cref="TokensPerImage"/> rows where <c>&lt;|image|&gt;</c> stands). Written to config.json
/// as <c>vision_config</c> so a model card says how images are tokenized.
/// </summary>
public sealed record VisionConfig(int ImageSize = 64, int PatchSize = 8, int Channels = 3)
{
    /// <summary>
    /// Trained with prefix-LM attention (bidirectional over image + prompt, causal after); false: causal
    /// throughout. Servers use it to pick the prompt's prefix length.
    /// </summary>
    public bool PrefixLm { get; init; } = true;

    /// <summary>
    /// Width of the patch embedder's hidden layer: 0 is the Fuyu-style linear projection; H &gt; 0 a
    /// per-patch MLP (patch → H, GELU, → D), which can separate a patch's shape from its colour
    /// before the decoder sees it (a linear map of colour × mask cannot).
    /// </summary>
    public int EmbedderHidden { get; init; }

    /// <summary>
    /// Longest clip, in frames, for video: N &gt; 0 adds a learned frame (time) embedding of N rows to
    /// every patch of frame t (0-based), as the row and column embeddings add the 2-D position; the
    /// images of one prompt are one clip's frames, in order. 0: still images only, no time position.
    /// </summary>
    public int Frames { get; init; }

    /// <summary>
    /// RMS-normalise the projected patch (with a learned gain, <c>vision_embed_norm.weight</c>) before the
    /// row, column and frame embeddings are added. Without it, AdamW grows W·patch about fan-in times
    /// faster than a table row (every one of the patch's values moves it), so after a few hundred steps
    /// the 2-D position is about 1% of the input row and the decoder cannot read it (measured: docs/multimodal.md).
    /// </summary>
    public bool PatchNorm { get; init; }

    /// <summary>Patches per side.</summary>
    public int GridSide => ImageSize / PatchSize;

    /// <summary>Input rows per image.</summary>
    public int TokensPerImage => GridSide * GridSide;

    /// <summary>Values per patch, (py, px, channel) order.</summary>
    public int PatchValues => PatchSize * PatchSize * Channels;

    /// <summary>Throws naming the field when the sizes do not tile.</summary>
    public VisionConfig Validate()
    {
        if (ImageSize <= 0 || PatchSize <= 0 || ImageSize % PatchSize != 0)
            throw new ArgumentException($"vision_config: image_size ({ImageSize}) must be a positive multiple of patch_size ({PatchSize}).");
        if (Frames < 0) throw new ArgumentException($"vision_config: max_frames must be ≥ 0, got {Frames}.");
        if (EmbedderHidden < 0) throw new ArgumentException($"vision_config: embedder_hidden must be ≥ 0, got {EmbedderHidden}.");
        if (Channels is not (1 or 3)) throw new ArgumentException($"vision_config: num_channels must be 1 or 3, got {Channels}.");
        return this;
    }

    /// <summary>The <c>vision_config</c> object (snake_case, HF-style keys).</summary>
    public JsonObject ToJson() => new()
    {
        ["image_size"] = ImageSize,
        ["patch_size"] = PatchSize,
        ["num_channels"] = Channels,
        ["tokens_per_image"] = TokensPerImage,
        ["image_token"] = "<|image|>",
        ["patch_order"] = "raster (row-major), values (py, px, channel), pixels v/255",
        ["embedder"] = (EmbedderHidden > 0 ? "per-patch MLP (linear, GELU, linear)" : "linear (Fuyu-style)") + (PatchNorm ? ", RMS-normalised," : "") + " + learned row and column embeddings",
        ["embedder_hidden"] = EmbedderHidden,
        ["patch_norm"] = PatchNorm,
        ["max_frames"] = Frames,
        ["attention"] = PrefixLm ? PrefixLmAttention : CausalAttention,
    };

    const string PrefixLmAttention = "prefix-lm: bidirectional over image + prompt, causal after", CausalAttention = "causal";

    /// <summary>Reads a <c>vision_config</c> object written by <see cref="ToJson"/>.</summary>
    public static VisionConfig FromJson(JsonNode node)
    {
        int Get(string key) => node[key]?.GetValue<int>() ?? throw new ArgumentException($"vision_config: missing '{key}'.");
        string attention = node["attention"]?.GetValue<string>() ?? PrefixLmAttention;
        if (attention != PrefixLmAttention && attention != CausalAttention)
            throw new ArgumentException($"vision_config: attention is '{attention}'; expected '{PrefixLmAttention}' or '{CausalAttention}'.");
        int hidden = node["embedder_hidden"]?.GetValue<int>() ?? 0;   // absent in folders written before the MLP option: linear
        int frames = node["max_frames"]?.GetValue<int>() ?? 0;        // absent before video: still images
        bool norm = node["patch_norm"]?.GetValue<bool>() ?? false;    // absent before the option: no norm
        return new VisionConfig(Get("image_size"), Get("patch_size"), Get("num_channels")) { PrefixLm = attention == PrefixLmAttention, EmbedderHidden = hidden, Frames = frames, PatchNorm = norm }.Validate();
    }
}
