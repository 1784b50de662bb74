namespace Tessera.Vision;

/// <summary>
/// Places images in a token stream: every <c>&lt;|image|&gt;</c> id becomes TokensPerImage rows with
/// id −1, the rows that take the image's patch vectors (the embeddings-as-inputs path:
/// negative ids read the next caller-supplied vector, in order).
/// </summary>
public static class ImageSpans
{
    /// <summary>The id the model's input rows use for a patch vector.</summary>
    public const int VectorId = -1;

    /// <summary>
    /// <paramref name="ids"/> with each <paramref name="imageToken"/> expanded to the image's span;
    /// throws when the number of image tokens differs from <paramref name="images"/> or the result
    /// would not fit <paramref name="contextLength"/>.
    /// </summary>
    public static int[] Expand(ReadOnlySpan<int> ids, int imageToken, int images, VisionConfig config, int contextLength)
    {
        int found = 0;
        foreach (int id in ids) if (id == imageToken) found++;
        if (found != images)
            throw new ImageDecodeException($"the prompt has {found} <|image|> markers for {images} images; expected one marker per image.");
        long length = ids.Length + (long)found * (config.TokensPerImage - 1);
        if (length > contextLength)
            throw new ImageDecodeException($"{images} images × {config.TokensPerImage} patches + {ids.Length - found} text tokens = {length} rows exceed the context of {contextLength}.");
        var result = new int[length];
        int o = 0;
        foreach (int id in ids)
        {
            if (id != imageToken) { result[o++] = id; continue; }
            for (int i = 0; i < config.TokensPerImage; i++) result[o++] = VectorId;
        }
        return result;
    }
}
