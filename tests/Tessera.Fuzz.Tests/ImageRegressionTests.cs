using Tessera.Vision;

namespace Tessera.Fuzz.Tests;

/// <summary>
/// Findings of the image target, named. A decompression bomb must be refused before the codec
/// allocates for it; the inputs live in fuzz/regressions/image.
/// </summary>
public class ImageRegressionTests
{
    static byte[] Regression(string file)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string p = Path.Combine(d.FullName, "fuzz", "regressions", "image", file);
            if (File.Exists(p)) return File.ReadAllBytes(p);
        }
        throw new FileNotFoundException($"fuzz/regressions/image/{file}");
    }

    static (ImageDecodeException Error, long Allocated) Refuse(byte[] data)
    {
        ImageDecoder.Decode(File.ReadAllBytes(Path.Combine(FindCorpus(), "rgb-5x3.png")), "warm-up.png");   // JIT and codec statics out of the measurement
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, "x.png"));
        return (e, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    // Found by AFL++ (fuzz/run.sh image 90): a 94-byte 5×3 PNG whose damaged chunk length claimed
    // megabytes made StbImageSharp allocate 9.6 MB for it (the codec sizes its data buffer from the
    // claimed length, up to 1 GiB). Chunk framing is now walked first: a chunk past the file's end
    // is refused before the codec runs.
    [Fact]
    public void APngChunkClaimingMoreThanTheFileHoldsIsRefusedBeforeAllocating()
    {
        var (e, allocated) = Refuse(Regression("afl-chunk-length-past-the-end.png"));
        Assert.Contains("x.png", e.Message);
        Assert.Contains("claims", e.Message);
        Assert.True(allocated < 256 << 10, $"refusing it allocated {allocated} bytes");
    }

    // Written with the finding: a 16 KB PNG declaring 5×3 pixels whose image data inflates to
    // 16 MiB. The pixel cap cannot see it (the header is small); the codec would inflate all of it.
    // The data is now inflated first into a buffer the size the header allows.
    [Fact]
    public void AZlibBombBehindASmallHeaderIsRefusedBeforeAllocating()
    {
        var (e, allocated) = Refuse(Regression("zlib-bomb-5x3-inflates-16mib.png"));
        Assert.Contains("inflates past the 48 bytes a 5×3 image holds", e.Message);
        Assert.True(allocated < 1 << 20, $"refusing it allocated {allocated} bytes");
    }

    // Found by AFL++ on the framing check itself (fuzz/run.sh image 300, StbImageSharp instrumented
    // too): a damaged zlib header made .NET's inflater throw ZLibException (an IOException, not the
    // InvalidDataException the check caught), which escaped the decoder. Now one ImageDecodeException.
    [Fact]
    public void AZlibStreamThatZlibRejectsIsOneDecodeError()
    {
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(Regression("afl-zlib-error-code.png"), "x.png"));
        Assert.StartsWith("x.png: corrupt or truncated PNG image data", e.Message);
    }

    // The framing check leaves real files alone: every PNG and JPEG seed (PIL-made: RGB, RGBA,
    // grey, palette, baseline and progressive JPEG) decodes to its header's size.
    [Fact]
    public void EverySeedImageButTheBombDecodesToItsHeaderSize()
    {
        int decoded = 0;
        foreach (var f in Directory.EnumerateFiles(FindCorpus()).Where(f => !f.Contains("bomb")))
        {
            byte[] data = File.ReadAllBytes(f);
            var img = ImageDecoder.Decode(data, f);
            Assert.Equal(ImageDecoder.ReadHeader(data, f), (img.Width, img.Height));
            decoded++;
        }
        Assert.True(decoded >= 7, $"only {decoded} seed images decoded");
    }

    static string FindCorpus()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string p = Path.Combine(d.FullName, "fuzz", "corpus", "image");
            if (Directory.Exists(p)) return p;
        }
        throw new DirectoryNotFoundException("fuzz/corpus/image");
    }
}
