using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Vision;

/// <summary>
/// Fuyu-style patch embedder: a patch row (P·P·C values) becomes one model input vector
/// v = W·patch + b + row[r] + col[c], with learned row and column embeddings giving the 2-D
/// position (the decoder's RoPE still numbers the rows 1-D, in raster order).
/// <para>Why learned row/column embeddings rather than Fuyu's row-break token: images here have one
/// fixed square size, so a table of GridSide rows and columns covers every position; it costs no
/// sequence positions (a break token adds GridSide rows per image), and the column of a patch is
/// given directly instead of having to be counted from the last break through causal... attention.</para>
/// Parameters carry HF-style names (<c>vision_embed_tokens.*</c> as in Fuyu, plus
/// <c>vision_row_embed.weight</c>, <c>vision_col_embed.weight</c>); it is composed of existing
/// graph ops (Linear, AddBias, Embedding, Add), so its backward is theirs and the vectors it makes
/// train end to end through <see cref="Graph.EmbedInputs"/>.
/// <para>With <see cref="VisionConfig.EmbedderHidden"/> = H &gt; 0 the projection is a per-patch MLP,
/// v = W·GELU(W₁·patch + b₁) + b + row[r] + col[c] (W₁, b₁ named <c>vision_patch_mlp.fc1.*</c>, W now D × H):
/// a linear map sees a coloured shape as colour ⊗ mask and cannot give its kind apart from its colour.</para>
/// <para>With <see cref="VisionConfig.PatchNorm"/> the projection is RMS-normalised with a learned gain
/// (<c>vision_embed_norm.weight</c>) before the positions are added: v = g ⊙ u/rms(u) + row[r] + col[c], u = W·patch + b.</para>
/// <para>With <see cref="VisionConfig.Frames"/> = N &gt; 0 (video) every patch of frame t also gets
/// frame[t] (<c>vision_frame_embed.weight</c>, N × D): the time position of a clip's frames.</para>
/// </summary>
public sealed class PatchEmbedder : IDisposable
{
    /// <summary>Parameter names.</summary>
    public const string WeightName = "vision_embed_tokens.weight", BiasName = "vision_embed_tokens.bias",
        RowName = "vision_row_embed.weight", ColName = "vision_col_embed.weight",
        HiddenWeightName = "vision_patch_mlp.fc1.weight", HiddenBiasName = "vision_patch_mlp.fc1.bias", FrameName = "vision_frame_embed.weight",
        NormName = "vision_embed_norm.weight";

    readonly Tensor weight, bias, rowTable, colTable;
    readonly Tensor? hiddenWeight, hiddenBias, frameTable, normGain;

    /// <summary>An embedder from <paramref name="config"/> patches to <paramref name="dim"/>-wide vectors, initialised from <paramref name="seed"/>.</summary>
    public PatchEmbedder(VisionConfig config, int dim, ulong seed = 0)
    {
        Config = config.Validate();
        Dim = dim;
        var p = Parameters = new ModelParameters();
        int h = config.EmbedderHidden;
        if (h > 0)
        {
            hiddenWeight = p.Add(HiddenWeightName, ParameterKind.Linear, h, config.PatchValues);
            hiddenBias = p.Add(HiddenBiasName, ParameterKind.Bias, h);
        }
        weight = p.Add(WeightName, ParameterKind.Linear, dim, h > 0 ? h : config.PatchValues);
        bias = p.Add(BiasName, ParameterKind.Bias, dim);
        if (config.PatchNorm) normGain = p.Add(NormName, ParameterKind.NormGain, dim);
        rowTable = p.Add(RowName, ParameterKind.Embedding, config.GridSide, dim);
        colTable = p.Add(ColName, ParameterKind.Embedding, config.GridSide, dim);
        if (config.Frames > 0) frameTable = p.Add(FrameName, ParameterKind.Embedding, config.Frames, dim);
        p.Initialize(seed, 1);
    }

    /// <summary>Epsilon of the patch norm (<see cref="VisionConfig.PatchNorm"/>).</summary>
    public const float NormEps = 1e-5f;

    /// <summary>The image geometry.</summary>
    public VisionConfig Config { get; }

    /// <summary>Width of the vectors (the model's D).</summary>
    public int Dim { get; }

    /// <summary>The embedder's weights, under their HF-style names.</summary>
    public ModelParameters Parameters { get; }

    /// <summary>
    /// Vectors (images·TokensPerImage, D) for <paramref name="patches"/> (whole images of patch rows,
    /// as <see cref="PatchGrid.Patches(RgbImage, VisionConfig)"/> makes them, concatenated).
    /// For a video model, <paramref name="frames"/> gives each image's frame index (0-based, &lt; Frames);
    /// null numbers the images 0, 1, 2, … (one clip, in order). Still-image models ignore it.
    /// </summary>
    public Tensor Forward(Graph g, float[] patches, IReadOnlyList<int>? frames = null)
    {
        int pv = Config.PatchValues, per = Config.TokensPerImage;
        if (patches.Length % (pv * per) != 0)
            throw new ArgumentException($"PatchEmbedder: {patches.Length} values are not whole images of {per} patches × {pv} values.");
        int n = patches.Length / pv;
        var x = g.Custom("ImagePatches", [n, pv], [], y => patches.CopyTo(y), static (_, _) => { });   // (M, P·P·C), a constant
        var rows = new int[n]; var cols = new int[n];
        for (int i = 0; i < n; i++) { int k = i % per; rows[i] = k / Config.GridSide; cols[i] = k % Config.GridSide; }
        if (hiddenWeight is not null) x = g.Gelu(g.AddBias(g.Linear(x, hiddenWeight), hiddenBias!));   // (M, H)
        var v = g.AddBias(g.Linear(x, weight), bias);                                  // (M, D)
        if (normGain is not null) v = g.RmsNorm(v, normGain, NormEps);                 // (M, D), unit RMS × gain
        var position = g.Add(g.Embedding(rowTable, rows), g.Embedding(colTable, cols));   // (M, D)
        if (frameTable is not null)
        {
            int images = n / per;
            if (frames is not null && frames.Count != images)
                throw new ArgumentException($"PatchEmbedder: {frames.Count} frame indices for {images} images.");
            var time = new int[n];
            for (int i = 0; i < n; i++)
            {
                int f = frames?[i / per] ?? i / per;
                if ((uint)f >= (uint)Config.Frames)
                    throw new ArgumentException($"PatchEmbedder: frame {f} of a clip, but this model takes clips of at most {Config.Frames} frames (vision_config max_frames).");
                time[i] = f;
            }
            position = g.Add(position, g.Embedding(frameTable, time));
        }
        return g.Add(v, position);   // (M, D)
    }

    /// <summary>The vectors as a plain array, without recording gradients (inference).</summary>
    public float[] Embed(float[] patches)
    {
        using var g = new Graph(recordGradients: false);
        return Forward(g, patches).ToArray();
    }

    /// <summary>Frees the weights.</summary>
    public void Dispose() => Parameters.Dispose();
}
