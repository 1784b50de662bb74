using StbImageSharp;

namespace Tessera.Vision;

/// <summary>
/// PNG and JPEG bytes → <see cref="RgbImage"/> through StbImageSharp. The format is recognised by
/// its signature, and the header is read and its size checked against a pixel cap before any pixel
/// is decoded, so a decompression bomb (a small file claiming 20,000×20,000) costs nothing.
/// Anything unusable becomes one <see cref="ImageDecodeException"/> naming the source.
/// </summary>
public static class ImageDecoder
{
    /// <summary>Default cap: 16 megapixels (a 4096×4096 image; 48 MiB decoded).</summary>
    public const long DefaultMaxPixels = 4096L * 4096;

    static ReadOnlySpan<byte> PngSignature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    static ReadOnlySpan<byte> JpegSignature => [0xFF, 0xD8, 0xFF];

    /// <summary>Decodes <paramref name="data"/> (named <paramref name="source"/> in errors) to RGB, refusing more than <paramref name="maxPixels"/> pixels.</summary>
    public static RgbImage Decode(byte[] data, string source, long maxPixels = DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(data);
        var (width, height) = ReadHeader(data, source);
        if (width <= 0 || height <= 0)
            throw new ImageDecodeException($"{source}: the image is {width}×{height}; expected at least 1×1 pixels.");
        if ((long)width * height > maxPixels)
            throw new ImageDecodeException($"{source}: {width}×{height} = {(long)width * height} pixels exceeds the cap of {maxPixels}.");
        ImageResult result;
        try { result = ImageResult.FromMemory(data, ColorComponents.RedGreenBlue); }
        catch (Exception e) when (e is InvalidOperationException or IndexOutOfRangeException or ArgumentException or NullReferenceException or OverflowException)
        {
            throw new ImageDecodeException($"{source}: corrupt or truncated {FormatOf(data)} ({e.Message}).");
        }
        if (result is null || result.Data is null || result.Width != width || result.Height != height || result.Data.Length != (long)width * height * 3)
            throw new ImageDecodeException($"{source}: corrupt or truncated {FormatOf(data)} (decoded data does not match the {width}×{height} header).");
        return new RgbImage(width, height, result.Data);
    }

    /// <summary>Width and height from the header alone (no pixel decoding); throws for anything but PNG or JPEG.</summary>
    public static (int Width, int Height) ReadHeader(byte[] data, string source)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length == 0) throw new ImageDecodeException($"{source}: empty file; expected a PNG or JPEG image.");
        string format = FormatOf(data);
        if (format.Length == 0) throw new ImageDecodeException($"{source}: unsupported image format; expected PNG or JPEG.");
        ImageInfo? info;
        try { info = ImageInfo.FromStream(new MemoryStream(data, writable: false)); }
        catch (Exception e) when (e is InvalidOperationException or IndexOutOfRangeException or ArgumentException or EndOfStreamException or OverflowException)
        {
            throw new ImageDecodeException($"{source}: corrupt or truncated {format} header ({e.Message}).");
        }
        if (info is not { } i) throw new ImageDecodeException($"{source}: corrupt or truncated {format} header.");
        return (i.Width, i.Height);
    }

    static string FormatOf(byte[] data)
    {
        var d = data.AsSpan();
        if (d.StartsWith(PngSignature)) return "PNG";
        if (d.StartsWith(JpegSignature)) return "JPEG";
        return "";
    }
}
