using StbImageWriteSharp;

namespace Tessera.Vision.Tests;

/// <summary>PNG/JPEG decoding, the pixel cap read from the header, and one clear error for bad input.</summary>
public class ImageDecoderTests
{
    internal static byte[] Png(int w, int h, Func<int, int, int, byte> pixel)
    {
        var data = new byte[w * h * 3];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) for (int c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = pixel(x, y, c);
        using var ms = new MemoryStream();
        new ImageWriter().WritePng(data, w, h, StbImageWriteSharp.ColorComponents.RedGreenBlue, ms);
        return ms.ToArray();
    }

    static byte[] Jpeg(int w, int h, Func<int, int, int, byte> pixel)
    {
        var data = new byte[w * h * 3];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) for (int c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = pixel(x, y, c);
        using var ms = new MemoryStream();
        new ImageWriter().WriteJpg(data, w, h, StbImageWriteSharp.ColorComponents.RedGreenBlue, ms, 95);
        return ms.ToArray();
    }

    static byte Pattern(int x, int y, int c) => (byte)((x * 37 + y * 11 + c * 70) % 256);

    [Fact]
    public void PngDecodesExactly()
    {
        var img = ImageDecoder.Decode(Png(13, 7, Pattern), "a.png");
        Assert.Equal((13, 7), (img.Width, img.Height));
        for (int y = 0; y < 7; y++) for (int x = 0; x < 13; x++) for (int c = 0; c < 3; c++)
            Assert.Equal(Pattern(x, y, c), img.Rgb[(y * 13 + x) * 3 + c]);
    }

    [Fact]
    public void JpegDecodesCloseToTheSource()
    {
        static byte Smooth(int x, int y, int c) => (byte)(60 + 4 * x + 2 * y + 30 * c);
        var img = ImageDecoder.Decode(Jpeg(16, 16, Smooth), "a.jpg");
        Assert.Equal((16, 16), (img.Width, img.Height));
        double err = 0;
        for (int y = 0; y < 16; y++) for (int x = 0; x < 16; x++) for (int c = 0; c < 3; c++) err = Math.Max(err, Math.Abs(img.Rgb[(y * 16 + x) * 3 + c] - Smooth(x, y, c)));
        Assert.True(err <= 12, $"JPEG at quality 95 differs by {err} levels from a smooth source");
    }

    [Fact]
    public void UnsupportedEmptyAndCorruptInputsGiveOneClearError()
    {
        var png = Png(32, 32, Pattern);
        Assert.Contains("unsupported image format", Fails([(byte)'G', (byte)'I', (byte)'F', (byte)'8', (byte)'9', (byte)'a', 1, 0, 1, 0]));
        Assert.Contains("unsupported image format", Fails([(byte)'B', (byte)'M', 0, 0, 0, 0]));
        Assert.Contains("empty file", Fails([]));
        Assert.Contains("corrupt or truncated", Fails(png[..20]));                       // header cut
        Assert.Contains("corrupt or truncated", Fails(png[..(png.Length / 2)]));          // data cut
        var garbled = (byte[])png.Clone();
        for (int i = 40; i < garbled.Length - 12; i++) garbled[i] ^= 0x5A;
        Assert.Contains("corrupt or truncated", Fails(garbled));
        Assert.Contains("corrupt or truncated", Fails([0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 1, 2]));   // JPEG signature, nothing after

        static string Fails(byte[] data)
        {
            var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, "upload"));
            Assert.StartsWith("upload: ", e.Message);
            return e.Message;
        }
    }

    /// <summary>
    /// Every truncation and 600 random 1–3 byte corruptions of a PNG and a JPEG: each decodes or is
    /// refused with <see cref="ImageDecodeException"/>, none throws anything else or hangs (5 s each).
    /// </summary>
    [Fact]
    public async Task TruncatedAndCorruptedFilesDecodeOrAreRefusedNeverCrashOrHang()
    {
        var rng = new Random(3);
        foreach (var file in new[] { Png(24, 24, Pattern), Jpeg(24, 24, Pattern) })
        {
            var cases = new List<byte[]>();
            for (int n = 0; n < file.Length; n++) cases.Add(file[..n]);
            for (int k = 0; k < 600; k++)
            {
                var c = (byte[])file.Clone();
                for (int j = rng.Next(1, 4); j > 0; j--) c[rng.Next(c.Length)] = (byte)rng.Next(256);
                cases.Add(c);
            }
            foreach (var c in cases)
            {
                var run = Task.Run(() => { try { ImageDecoder.Decode(c, "fuzz"); } catch (ImageDecodeException) { } });
                Assert.True(await Task.WhenAny(run, Task.Delay(5000)) == run, $"decoding a {c.Length}-byte variant did not finish in 5 s");
                await run;
            }
        }
    }

    /// <summary>A 20,000 × 20,000 PNG header (a few dozen bytes) is refused from the header alone.</summary>
    [Fact]
    public void DecompressionBombIsRefusedBeforeDecoding()
    {
        var bomb = PngHeaderOnly(20_000, 20_000);
        Assert.Equal((20_000, 20_000), ImageDecoder.ReadHeader(bomb, "bomb.png"));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(bomb, "bomb.png"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("400000000 pixels exceeds the cap", e.Message);
        Assert.True(allocated < 1 << 20, $"refusing the bomb allocated {allocated} bytes");
        var zero = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(PngHeaderOnly(0, 0), "zero.png"));
        Assert.Contains("zero.png", zero.Message);
    }

    /// <summary>PNG signature + a valid IHDR chunk (8-bit RGB) and nothing else.</summary>
    static byte[] PngHeaderOnly(int w, int h)
    {
        var ihdr = new byte[17];
        "IHDR"u8.CopyTo(ihdr);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), w);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(8), h);
        ihdr[12] = 8; ihdr[13] = 2;
        var file = new List<byte> { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13 };
        file.AddRange(ihdr);
        uint crc = Crc32(ihdr);
        file.AddRange([(byte)(crc >> 24), (byte)(crc >> 16), (byte)(crc >> 8), (byte)crc]);
        return [.. file];
    }

    static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    [Fact]
    public void ResizeAveragesBlocksAndRepeatsPixels()
    {
        var img = new RgbImage(2, 2, [0, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40]);
        Assert.Equal(new byte[] { 85, 85, 85 }, img.Resize(1, 1).Rgb);   // (0 + 100 + 200 + 40) / 4
        var up = new RgbImage(1, 1, [7, 8, 9]).Resize(3, 2);
        for (int i = 0; i < 6; i++) Assert.Equal(new byte[] { 7, 8, 9 }, up.Rgb[(3 * i)..(3 * i + 3)]);
    }

    [Fact]
    public void PatchesAreRasterOrderedWithPyPxChannelValues()
    {
        var config = new VisionConfig(ImageSize: 4, PatchSize: 2);
        var hwc = new float[4 * 4 * 3];
        for (int i = 0; i < hwc.Length; i++) hwc[i] = i;
        var p = PatchGrid.Patches(hwc, config);
        Assert.Equal(4 * 12, p.Length);
        // Patch (row 1, col 0) = pixels y 2..3, x 0..1: its first value is pixel (x 0, y 2) channel 0,
        // its fourth is pixel (x 1, y 2) channel 0, its seventh pixel (x 0, y 3) channel 0.
        int patch = 2 * 12;
        Assert.Equal((2 * 4 + 0) * 3, p[patch]);
        Assert.Equal((2 * 4 + 1) * 3, p[patch + 3]);
        Assert.Equal((3 * 4 + 0) * 3, p[patch + 6]);
    }

    [Fact]
    public void TooManyImagesForTheContextAreRefused()
    {
        var config = new VisionConfig();
        var ids = new[] { 1, 50, 50, 50, 7 };
        Assert.Equal(3 * 64 + 2, ImageSpans.Expand(ids, 50, 3, config, 256).Length);
        Assert.Contains("exceed the context of 128", Assert.Throws<ImageDecodeException>(() => ImageSpans.Expand(ids, 50, 3, config, 128)).Message);
        Assert.Contains("3 <|image|> markers for 2 images", Assert.Throws<ImageDecodeException>(() => ImageSpans.Expand(ids, 50, 2, config, 256)).Message);
    }
}
