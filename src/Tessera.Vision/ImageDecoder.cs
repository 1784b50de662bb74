using System.Buffers.Binary;
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
        if (FormatOf(data) == "PNG") PngFraming.Check(data, source, width, height);   // before the codec sizes buffers from what the file claims
        ImageResult result;
        try { result = ImageResult.FromMemory(data, ColorComponents.RedGreenBlue); }
        catch (Exception e) when (e is not OutOfMemoryException)   // the codec's failures are all "corrupt" to the caller (seen: InvalidOperation, IO, IndexOutOfRange)
        {
            string why = e.Message.Trim();
            throw new ImageDecodeException($"{source}: corrupt or truncated {FormatOf(data)} ({(why.Length == 0 ? e.GetType().Name : why)}).");
        }
        if (result is null || result.Data is null || result.Width != width || result.Height != height || result.Data.Length != (long)width * height * 3)
            throw new ImageDecodeException($"{source}: corrupt or truncated {FormatOf(data)} (decoded data does not match the {width}×{height} header).");
        return new RgbImage(width, height, result.Data);
    }

    /// <summary>
    /// Width and height from the header alone (no pixel decoding); throws for anything but PNG or
    /// JPEG and for framing that is cut short. The framing is walked here rather than by the codec
    /// because stb's header reader refuses large sizes as "corrupt" (so the cap message would be
    /// lost) and loops on a JPEG that ends inside its headers.
    /// </summary>
    public static (int Width, int Height) ReadHeader(byte[] data, string source)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length == 0) throw new ImageDecodeException($"{source}: empty file; expected a PNG or JPEG image.");
        return FormatOf(data) switch
        {
            "PNG" => PngHeader(data, source),
            "JPEG" => JpegHeader(data, source),
            _ => throw new ImageDecodeException($"{source}: unsupported image format; expected PNG or JPEG."),
        };
    }

    /// <summary>PNG: the IHDR chunk must follow the signature; width and height are its first two big-endian words.</summary>
    static (int, int) PngHeader(byte[] d, string source)
    {
        if (d.Length < 33 || !d.AsSpan(12, 4).SequenceEqual("IHDR"u8) || BinaryPrimitives.ReadInt32BigEndian(d.AsSpan(8)) != 13)
            throw new ImageDecodeException($"{source}: corrupt or truncated PNG header (expected an IHDR chunk after the signature).");
        uint w = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(16)), h = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(20));
        if (w > int.MaxValue || h > int.MaxValue) throw new ImageDecodeException($"{source}: corrupt PNG header (size {w}×{h}).");
        return ((int)w, (int)h);
    }

    /// <summary>
    /// JPEG: walks the marker segments from SOI to the first start-of-frame (SOF0–SOF15 except DHT,
    /// JPG and DAC), whose height and width it reads, then requires a scan (SOS) and an end-of-image
    /// marker after it, so a file cut anywhere is refused before the codec sees it.
    /// </summary>
    static (int, int) JpegHeader(byte[] d, string source)
    {
        int pos = 2, width = -1, height = -1;
        while (true)
        {
            while (pos < d.Length && d[pos] == 0xFF && pos + 1 < d.Length && d[pos + 1] == 0xFF) pos++;   // fill bytes
            if (pos + 4 > d.Length || d[pos] != 0xFF)
                throw new ImageDecodeException($"{source}: corrupt or truncated JPEG (marker segments end at byte {pos} of {d.Length}).");
            byte marker = d[pos + 1];
            int len = BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos + 2));
            if (len < 2 || pos + 2 + len > d.Length)
                throw new ImageDecodeException($"{source}: corrupt or truncated JPEG (segment 0xFF{marker:X2} at byte {pos} runs past the end).");
            if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC && width < 0)
            {
                if (len < 7) throw new ImageDecodeException($"{source}: corrupt JPEG frame header.");
                height = BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos + 5));
                width = BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos + 7));
            }
            pos += 2 + len;
            if (marker == 0xDA) break;   // start of scan: entropy-coded data follows
        }
        if (width < 0) throw new ImageDecodeException($"{source}: corrupt JPEG (no frame header before the scan).");
        if (d.AsSpan(pos).IndexOf([(byte)0xFF, (byte)0xD9]) < 0)
            throw new ImageDecodeException($"{source}: corrupt or truncated JPEG (no end-of-image marker after the scan).");
        return (width, height);
    }

    static string FormatOf(byte[] data)
    {
        var d = data.AsSpan();
        if (d.StartsWith(PngSignature)) return "PNG";
        if (d.StartsWith(JpegSignature)) return "JPEG";
        return "";
    }
}
