using System.Buffers.Binary;
using System.IO.Compression;

namespace Tessera.Vision;

/// <summary>
/// Checks a PNG's chunk framing and the inflated size of its image data before the codec runs.
/// The codec sizes its buffers from what the file claims, not from what it holds: a chunk length
/// past the end of the file, or a zlib stream that inflates far beyond the W×H the header
/// declares, makes it allocate megabytes to a gigabyte for a file of a hundred bytes. Both are
/// refused here, with memory bounded by the header's (capped) size.
/// </summary>
internal static class PngFraming
{
    /// <summary>
    /// Walks every chunk from IHDR to IEND (each must lie inside the file) and inflates the
    /// concatenated IDAT data into a buffer no larger than the image's raw size, refusing a
    /// stream that would produce more.
    /// </summary>
    public static void Check(byte[] d, string source, int width, int height)
    {
        byte bitDepth = d[24], colorType = d[25], interlace = d[28];
        int channels = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        if (channels == 0 || bitDepth is not (1 or 2 or 4 or 8 or 16) || interlace > 1)
            throw new ImageDecodeException($"{source}: corrupt or truncated PNG header (colour type {colorType}, bit depth {bitDepth}, interlace {interlace}).");
        long rawBytes = RawBytes(width, height, channels * bitDepth, interlace == 1);

        var idat = new List<(int Offset, int Length)>();
        int pos = 8;
        bool ended = false;
        while (!ended)
        {
            if (pos + 12 > d.Length) throw new ImageDecodeException($"{source}: corrupt or truncated PNG (chunks end at byte {pos} of {d.Length} without IEND).");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(pos));
            if (length > (uint)(d.Length - pos - 12))
                throw new ImageDecodeException($"{source}: corrupt or truncated PNG (a chunk at byte {pos} claims {length} bytes; {d.Length - pos - 12} remain).");
            var type = d.AsSpan(pos + 4, 4);
            if (type.SequenceEqual("IDAT"u8)) idat.Add((pos + 8, (int)length));
            ended = type.SequenceEqual("IEND"u8);
            pos += 12 + (int)length;
        }
        if (idat.Count == 0) throw new ImageDecodeException($"{source}: corrupt or truncated PNG (no image data).");

        // Inflate into a buffer one byte larger than the raw size: a stream that fills it is a bomb.
        var all = new MemoryStream(idat.Sum(c => c.Length));
        foreach (var (offset, length) in idat) all.Write(d, offset, length);
        all.Position = 0;
        var sink = new byte[Math.Min(rawBytes + 1, 1 << 16)];
        long inflated = 0;
        try
        {
            using var z = new ZLibStream(all, CompressionMode.Decompress);
            int n;
            while ((n = z.Read(sink, 0, sink.Length)) > 0)
            {
                inflated += n;
                if (inflated > rawBytes)
                    throw new ImageDecodeException($"{source}: corrupt PNG (the image data inflates past the {rawBytes} bytes a {width}×{height} image holds).");
            }
        }
        catch (InvalidDataException e)
        {
            throw new ImageDecodeException($"{source}: corrupt or truncated PNG image data ({e.Message.Trim()}).");
        }
        catch (IOException e)   // ZLibException: zlib's own error codes for a damaged stream
        {
            throw new ImageDecodeException($"{source}: corrupt or truncated PNG image data ({e.Message.Trim()}).");
        }
    }

    /// <summary>Filtered scanline bytes of a W×H image at <paramref name="bitsPerPixel"/>, Adam7 passes summed when interlaced.</summary>
    static long RawBytes(int width, int height, int bitsPerPixel, bool interlaced)
    {
        static long Rows(long w, long h, int bits) => w == 0 || h == 0 ? 0 : h * (1 + (w * bits + 7) / 8);
        if (!interlaced) return Rows(width, height, bitsPerPixel);
        // Adam7: (x0, y0, dx, dy) per pass.
        ReadOnlySpan<int> p = [0, 0, 8, 8, 4, 0, 8, 8, 0, 4, 4, 8, 2, 0, 4, 4, 0, 2, 2, 4, 1, 0, 2, 2, 0, 1, 1, 2];
        long total = 0;
        for (int i = 0; i < 28; i += 4)
            total += Rows((width - p[i] + p[i + 2] - 1) / p[i + 2], (height - p[i + 1] + p[i + 3] - 1) / p[i + 3], bitsPerPixel);
        return total;
    }
}
