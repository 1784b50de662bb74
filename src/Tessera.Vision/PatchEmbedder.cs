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
/// </summary>
public sealed class PatchEmbedder : IDisposable
{
    /// <summary>Parameter names.</summary>
    public const string WeightName = "vision_embed_tokens.weight", BiasName = "vision_embed_tokens.bias",
        RowName = "vision_row_embed.weight", ColName = "vision_col_embed.weight";

    readonly Tensor weight, bias, rowTable, colTable;

    /// <summary>An embedder from <paramref name="config"/> patches to <paramref name="dim"/>-wide vectors, initialised from <paramref name="seed"/>.</summary>
    public PatchEmbedder(VisionConfig config, int dim, ulong seed = 0)
    {
        Config = config.Validate();
        Dim = dim;
        var p = Parameters = new ModelParameters();
        weight = p.Add(WeightName, ParameterKind.Linear, dim, config.PatchValues);
        bias = p.Add(BiasName, ParameterKind.Bias, dim);
        rowTable = p.Add(RowName, ParameterKind.Embedding, config.GridSide, dim);
        colTable = p.Add(ColName, ParameterKind.Embedding, config.GridSide, dim);
        p.Initialize(seed, 1);
    }

    /// <summary>The image geometry.</summary>
    public VisionConfig Config { get; }

    /// <summary>Width of the vectors (the model's D).</summary>
    public int Dim { get; }

    /// <summary>The embedder's weights, under their HF-style names.</summary>
    public ModelParameters Parameters { get; }

    /// <summary>
    /// Vectors (images·TokensPerImage, D) for <paramref name="patches"/> (whole images of patch rows,
    /// as <see cref="PatchGrid.Patches(RgbImage, VisionConfig)"/> makes them, concatenated).
    /// </summary>
    public Tensor Forward(Graph g, float[] patches)
    {
        int pv = Config.PatchValues, per = Config.TokensPerImage;
        if (patches.Length % (pv * per) != 0)
            throw new ArgumentException($"PatchEmbedder: {patches.Length} values are not whole images of {per} patches × {pv} values.");
        int n = patches.Length / pv;
        var x = g.Custom("ImagePatches", [n, pv], [], y => patches.CopyTo(y), static (_, _) => { });   // (M, P·P·C), a constant
        var rows = new int[n]; var cols = new int[n];
        for (int i = 0; i < n; i++) { int k = i % per; rows[i] = k / Config.GridSide; cols[i] = k % Config.GridSide; }
        var v = g.AddBias(g.Linear(x, weight), bias);                                  // (M, D)
        return g.Add(v, g.Add(g.Embedding(rowTable, rows), g.Embedding(colTable, cols)));   // (M, D)
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
