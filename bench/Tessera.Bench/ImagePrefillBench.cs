using System.Diagnostics;
using Tessera.Inference;
using Tessera.Vision;

namespace Tessera.Bench;

/// <summary>
/// Prefill with images vs text in one run (the <c>bench decode</c> line): the same number of prompt
/// rows through the same packed kernels, once as token ids (causal) and once as patch vectors plus a
/// short question under prefix-LM attention (bidirectional over the whole prompt). The image figure
/// is given twice: engine rows only, and including the patch embedder (patches → vectors).
/// </summary>
/// <param name="Rows">Prompt rows of each prefill.</param>
/// <param name="Images">Images in the image prompt.</param>
/// <param name="TokensPerImage">Patch rows per image.</param>
/// <param name="TextTokensPerSecond">Text prompt, causal.</param>
/// <param name="ImageRowsPerSecond">Image prompt, rows/s of the engine (vectors given).</param>
/// <param name="ImageRowsPerSecondWithEmbedder">Image prompt, rows/s including the patch embedder.</param>
public sealed record ImagePrefillResult(int Rows, int Images, int TokensPerImage, double TextTokensPerSecond, double ImageRowsPerSecond, double ImageRowsPerSecondWithEmbedder)
{
    /// <summary>Image rows/s ÷ text tokens/s (engine only).</summary>
    public double Ratio => ImageRowsPerSecond / TextTokensPerSecond;

    /// <summary>Image rows/s with the embedder ÷ text tokens/s.</summary>
    public double RatioWithEmbedder => ImageRowsPerSecondWithEmbedder / TextTokensPerSecond;
}

/// <summary>Measures <see cref="ImagePrefillResult"/>.</summary>
public static class ImagePrefillBench
{
    /// <summary>
    /// Best of <paramref name="rounds"/> interleaved rounds of each figure, on a prompt of about
    /// <paramref name="targetRows"/> rows (whole images plus 16 text tokens, within the context).
    /// </summary>
    public static ImagePrefillResult Run(InferenceWeights weights, PatchEmbedder embedder, int targetRows = 256, int rounds = 3, Action<string>? progress = null)
    {
        var c = weights.Config;
        var v = embedder.Config;
        if (embedder.Dim != c.Dim) throw new ArgumentException($"ImagePrefillBench: the embedder makes {embedder.Dim}-wide vectors but the model's D is {c.Dim}.");
        const int question = 16;
        int images = Math.Max(1, (Math.Min(targetRows, c.ContextLength - 1) - question - 1) / v.TokensPerImage);
        int n = 1 + images * v.TokensPerImage + question;
        if (n > c.ContextLength) throw new ArgumentException($"ImagePrefillBench: one image of {v.TokensPerImage} patches does not fit the context of {c.ContextLength}.");

        var text = DecodeBench.Prompt(n, c.VocabSize, 3);
        var imageIds = new int[n];
        imageIds[0] = text[0];
        for (int i = 1; i <= images * v.TokensPerImage; i++) imageIds[i] = ImageSpans.VectorId;
        text.AsSpan(n - question).CopyTo(imageIds.AsSpan(n - question));
        var rng = new Random(5);
        var patches = new float[images * v.TokensPerImage * v.PatchValues];
        for (int i = 0; i < patches.Length; i++) patches[i] = (float)rng.NextDouble();

        using var cache = new KvCache(c, 1);
        cache.Ensure(0);
        var pass = new ForwardPass(weights, cache, rows: n);
        var textRows = new TokenRow[n];
        var imageRows = new TokenRow[n];
        for (int i = 0; i < n; i++)
        {
            textRows[i] = new TokenRow(0, i, text[i]);
            imageRows[i] = new TokenRow(0, i, imageIds[i], n);   // prefix-LM over the whole prompt
        }
        int[] last = [n - 1];
        double textRate = 0, imageRate = 0, withEmbedder = 0;
        progress?.Invoke($"prefill of {n} rows: text vs {images} images × {v.TokensPerImage} patches + {question} tokens");
        for (int r = 0; r < rounds; r++)
        {
            var sw = Stopwatch.StartNew();
            pass.Run(textRows, last);
            textRate = Math.Max(textRate, n / sw.Elapsed.TotalSeconds);

            sw.Restart();
            var vectors = embedder.Embed(patches);
            double embed = sw.Elapsed.TotalSeconds;
            sw.Restart();
            pass.Run(imageRows, last, vectors: vectors);
            double run = sw.Elapsed.TotalSeconds;
            imageRate = Math.Max(imageRate, n / run);
            withEmbedder = Math.Max(withEmbedder, n / (run + embed));
        }
        return new ImagePrefillResult(n, images, v.TokensPerImage, textRate, imageRate, withEmbedder);
    }
}
