namespace Tessera.Vision;

/// <summary>
/// An 8-bit RGB image, rows top to bottom, pixels interleaved (H, W, 3). Immutable by convention:
/// <see cref="Resize"/> and <see cref="Normalize"/> return new buffers.
/// </summary>
public sealed class RgbImage
{
    /// <summary>Wraps <paramref name="rgb"/> (height·width·3 bytes).</summary>
    public RgbImage(int width, int height, byte[] rgb)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (width <= 0 || height <= 0 || rgb.Length != (long)width * height * 3)
            throw new ArgumentException($"RgbImage: {width}×{height} needs {(long)Math.Max(width, 0) * Math.Max(height, 0) * 3} bytes, got {rgb.Length}.");
        Width = width; Height = height; Rgb = rgb;
    }

    /// <summary>Pixels per row.</summary>
    public int Width { get; }

    /// <summary>Rows.</summary>
    public int Height { get; }

    /// <summary>(H, W, 3) bytes.</summary>
    public byte[] Rgb { get; }

    /// <summary>
    /// Resampled to <paramref name="width"/>×<paramref name="height"/> by area averaging: each output
    /// pixel is the mean of the source area it covers, weighted by overlap (exact box filter, so a
    /// downscale by an integer factor averages whole blocks and an upscale repeats pixels). Aspect
    /// ratio is not kept: the model sees a fixed square grid.
    /// </summary>
    public RgbImage Resize(int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"RgbImage.Resize: target {width}×{height} must be positive.");
        if (width == Width && height == Height) return this;
        var dst = new byte[width * height * 3];
        double sx = (double)Width / width, sy = (double)Height / height;
        Span<double> acc = stackalloc double[3];
        for (int y = 0; y < height; y++)
        {
            double y0 = y * sy, y1 = (y + 1) * sy;
            for (int x = 0; x < width; x++)
            {
                double x0 = x * sx, x1 = (x + 1) * sx;
                acc.Clear();
                double area = 0;
                for (int py = (int)y0; py < Math.Min(Height, (int)Math.Ceiling(y1)); py++)
                {
                    double wy = Math.Min(py + 1, y1) - Math.Max(py, y0);
                    if (wy <= 0) continue;
                    for (int px = (int)x0; px < Math.Min(Width, (int)Math.Ceiling(x1)); px++)
                    {
                        double w = wy * (Math.Min(px + 1, x1) - Math.Max(px, x0));
                        if (w <= 0) continue;
                        int o = (py * Width + px) * 3;
                        acc[0] += w * Rgb[o]; acc[1] += w * Rgb[o + 1]; acc[2] += w * Rgb[o + 2];
                        area += w;
                    }
                }
                int d = (y * width + x) * 3;
                for (int c = 0; c < 3; c++) dst[d + c] = (byte)Math.Clamp(Math.Round(acc[c] / area), 0, 255);
            }
        }
        return new RgbImage(width, height, dst);
    }

    /// <summary>
    /// (H, W, 3) floats in [0, 1]: v/255. Black is 0, so an empty patch adds nothing through the
    /// linear embedder but its bias and position. (With SigLIP's [−1, 1] a black background is a
    /// constant −1 input on every weight, and Adam's steps on it moved every image vector at once:
    /// the shapes world did not leave chance level in 800 steps; measured in docs/multimodal.md.)
    /// </summary>
    public float[] Normalize()
    {
        var f = new float[Rgb.Length];
        for (int i = 0; i < f.Length; i++) f[i] = Rgb[i] / 255f;
        return f;
    }
}
