using System.Buffers.Binary;
using System.IO.Compression;

namespace Tessera.Vision.FashionMnist;

/// <summary>One split of Fashion-MNIST: 28×28 grey images (row-major bytes) and their labels 0–9.</summary>
public sealed record FashionMnistSplit(byte[] Pixels, byte[] Labels)
{
    /// <summary>Pixels per image.</summary>
    public const int Side = 28, ImagePixels = Side * Side;

    /// <summary>Images in the split.</summary>
    public int Count => Labels.Length;

    /// <summary>The pixels of image <paramref name="i"/>.</summary>
    public ReadOnlySpan<byte> Image(int i) => Pixels.AsSpan(i * ImagePixels, ImagePixels);
}

/// <summary>
/// Fashion-MNIST from the Debian package <c>dataset-fashion-mnist</c> (gzip'd IDX files under
/// /usr/share/datasets/fashion-mnist); nothing is downloaded. The IDX header (magic, counts, sizes)
/// is checked before anything is allocated.
/// </summary>
public static class FashionMnistData
{
    /// <summary>Where the Debian package installs the files.</summary>
    public const string DefaultDir = "/usr/share/datasets/fashion-mnist";

    /// <summary>The ten class names, index = label (single words, so each is one token of the task vocabulary).</summary>
    public static readonly string[] Classes = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"];

    /// <summary>True when the four files are present in <paramref name="dir"/>.</summary>
    public static bool IsAvailable(string dir = DefaultDir)
        => File.Exists(Path.Combine(dir, "train-images-idx3-ubyte.gz")) && File.Exists(Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"));

    /// <summary>The message tests and commands give when the package is absent.</summary>
    public static string MissingMessage(string dir = DefaultDir)
        => $"Fashion-MNIST not found in {dir}: install the Debian package (apt-get install dataset-fashion-mnist).";

    /// <summary>The 60,000-image training split.</summary>
    public static FashionMnistSplit Train(string dir = DefaultDir) => Load(dir, "train");

    /// <summary>The 10,000-image test split.</summary>
    public static FashionMnistSplit Test(string dir = DefaultDir) => Load(dir, "t10k");

    static FashionMnistSplit Load(string dir, string prefix)
    {
        if (!IsAvailable(dir)) throw new FileNotFoundException(MissingMessage(dir));
        var images = ReadIdx(Path.Combine(dir, $"{prefix}-images-idx3-ubyte.gz"), 0x00000803, 3);
        var labels = ReadIdx(Path.Combine(dir, $"{prefix}-labels-idx1-ubyte.gz"), 0x00000801, 1);
        if (images.Length != labels.Length * FashionMnistSplit.ImagePixels)
            throw new InvalidDataException($"{dir}/{prefix}: {images.Length} pixels for {labels.Length} labels; expected {FashionMnistSplit.ImagePixels} per label.");
        foreach (byte l in labels) if (l > 9) throw new InvalidDataException($"{dir}/{prefix}: label {l}; expected 0–9.");
        return new FashionMnistSplit(images, labels);
    }

    /// <summary>The payload of a gzip'd IDX file with <paramref name="magic"/> and <paramref name="dims"/> dimensions (28×28 for images).</summary>
    static byte[] ReadIdx(string path, int magic, int dims)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        var header = new byte[4 + 4 * dims];
        gz.ReadExactly(header);
        int m = BinaryPrimitives.ReadInt32BigEndian(header);
        if (m != magic) throw new InvalidDataException($"{path}: IDX magic 0x{m:X8}, expected 0x{magic:X8}.");
        int count = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4));
        if (count is < 0 or > 100_000) throw new InvalidDataException($"{path}: {count} items; expected at most 100,000.");
        long per = 1;
        for (int d = 1; d < dims; d++)
        {
            int size = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4 + 4 * d));
            if (size != FashionMnistSplit.Side) throw new InvalidDataException($"{path}: dimension {size}, expected {FashionMnistSplit.Side}.");
            per *= size;
        }
        var data = new byte[count * per];
        gz.ReadExactly(data);
        return data;
    }
}
