using Tessera.Model;

namespace Tessera.Training.Labs;

/// <summary>
/// The model family the labs sweep: Llama-style blocks with 16-wide heads, a SwiGLU width of
/// about 8/3 of the residual width (a multiple of 32) and depth growing with width, so the
/// non-embedding parameter count climbs in steps of about ×1.5–3 from 4 K to 3 M.
/// </summary>
public static class LabModels
{
    /// <summary>(layers, dim) of each rung, smallest first.</summary>
    public static IReadOnlyList<(int Layers, int Dim)> Ladder { get; } =
    [
        (1, 16), (1, 32), (1, 48), (1, 64), (2, 64), (2, 96), (3, 96), (3, 128), (4, 128), (4, 160), (5, 192), (6, 224),
    ];

    /// <summary>Dense config of rung <paramref name="rung"/> for a vocabulary and context length.</summary>
    public static ModelConfig Rung(int rung, int vocabSize, int contextLength)
    {
        if ((uint)rung >= (uint)Ladder.Count)
            throw new ArgumentOutOfRangeException(nameof(rung), rung, $"The lab model ladder has rungs 0..{Ladder.Count - 1}.");
        var (layers, dim) = Ladder[rung];
        return Shape(layers, dim, vocabSize, contextLength);
    }

    /// <summary>
    /// A dense config of the family's shape for any (layers, dim) with dim a multiple of 16. Heads are
    /// 16 wide, so the head count grows with width. (With 32-wide heads (1, 64) had 2 heads to
    /// (1, 48)'s 3 and lost to it at every budget tried, a kink the scaling fit cannot describe;
    /// with 16-wide heads it wins at 1e12 FLOPs.)
    /// </summary>
    public static ModelConfig Shape(int layers, int dim, int vocabSize, int contextLength)
    {
        if (dim < 16 || dim % 16 != 0) throw new ArgumentException($"Lab models need a width that is a positive multiple of 16, got {dim}.");
        int heads = dim / 16;
        int hidden = (dim * 8 / 3 + 31) / 32 * 32;
        return new ModelConfig
        {
            VocabSize = vocabSize, Dim = dim, Layers = layers, Heads = heads, KvHeads = heads, HiddenDim = hidden,
            ContextLength = contextLength,
        }.Validate();
    }

    /// <summary>
    /// N for the scaling fits: active parameters minus the token embedding (and the untied
    /// lm_head), Kaplan et al.'s choice. With tiny models the embedding is a large share of the
    /// total, and counting it bends the power law; its compute still counts in the FLOPs.
    /// </summary>
    public static long NonEmbeddingParameters(ModelConfig c)
        => c.ActiveParameterCount - (long)c.VocabSize * c.Dim * (c.TiedEmbeddings ? 1 : 2);

    /// <summary>Short name for reports and run folders, e.g. <c>L2-d96</c> or <c>L2-d96-e4k1</c>.</summary>
    public static string Name(ModelConfig c)
        => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"L{c.Layers}-d{c.Dim}{(c.IsMoe ? $"-e{c.Experts}k{c.TopK}" : "")}{(c.Dropout > 0 ? $"-p{c.Dropout:0.###}" : "")}");
}
