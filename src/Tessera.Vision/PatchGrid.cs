namespace Tessera.Vision;

/// <summary>Cuts normalised images into patch rows and names each patch's grid row and column.</summary>
public static class PatchGrid
{
    /// <summary>
    /// The image, decoded and resized to the config's square, as patch rows (TokensPerImage, PatchValues):
    /// patch (r, c) in raster order holds pixels [r·P, r·P + P) × [c·P, c·P + P), values (py, px, channel).
    /// </summary>
    public static float[] Patches(RgbImage image, VisionConfig config)
    {
        ArgumentNullException.ThrowIfNull(image);
        var hwc = image.Resize(config.ImageSize, config.ImageSize).Normalize();
        return Patches(hwc, config);
    }

    /// <summary>Patch rows of an (S, S, 3) normalised image (S = ImageSize); one channel takes the mean of RGB.</summary>
    public static float[] Patches(ReadOnlySpan<float> hwc, VisionConfig config)
    {
        int s = config.ImageSize, p = config.PatchSize, g = config.GridSide, ch = config.Channels;
        if (hwc.Length != s * s * 3) throw new ArgumentException($"PatchGrid: a {s}×{s} RGB image has {s * s * 3} values, got {hwc.Length}.");
        var rows = new float[config.TokensPerImage * config.PatchValues];
        int o = 0;
        for (int r = 0; r < g; r++)
            for (int c = 0; c < g; c++)
                for (int py = 0; py < p; py++)
                    for (int px = 0; px < p; px++)
                    {
                        int src = ((r * p + py) * s + c * p + px) * 3;
                        if (ch == 3) { rows[o++] = hwc[src]; rows[o++] = hwc[src + 1]; rows[o++] = hwc[src + 2]; }
                        else rows[o++] = (hwc[src] + hwc[src + 1] + hwc[src + 2]) / 3f;
                    }
        return rows;
    }
}
