using System.IO.Compression;
using System.Text;

namespace Tessera.Text;

/// <summary>
/// Text for tokenizer training, read as chunks of about <see cref="ChunkChars"/> characters
/// cut at line ends, so pre-token counting can run on several threads. Sources: a file, every
/// file under a folder (sorted, so runs are reproducible), or a stream. Files ending in
/// <c>.gz</c> are decompressed on the fly.
/// </summary>
public static class TrainingCorpus
{
    /// <summary>Target chunk size in characters.</summary>
    public const int ChunkChars = 1 << 20;

    /// <summary>Chunks of a file or of all files under a folder.</summary>
    /// <exception cref="FileNotFoundException">The path does not exist.</exception>
    public static IEnumerable<string> FromPath(string path)
    {
        if (File.Exists(path)) return FromFile(path);
        if (Directory.Exists(path))
        {
            var files = Directory.GetFiles(path, "*", SearchOption.AllDirectories)
                .Where(f => !Path.GetFileName(f).StartsWith('.'))
                .OrderBy(f => f, StringComparer.Ordinal).ToArray();
            if (files.Length == 0) throw new FileNotFoundException($"no files under {path}");
            return files.SelectMany(FromFile);
        }
        throw new FileNotFoundException($"training input not found: {path}", path);
    }

    /// <summary>Chunks of one file (.gz decompressed).</summary>
    public static IEnumerable<string> FromFile(string path)
    {
        using var fs = File.OpenRead(path);
        using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(fs, CompressionMode.Decompress) : fs;
        foreach (var chunk in FromStream(s)) yield return chunk;
    }

    /// <summary>Chunks of a UTF-8 stream (the stream is not disposed).</summary>
    public static IEnumerable<string> FromStream(Stream stream)
    {
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16, leaveOpen: true);
        var buffer = new char[ChunkChars];
        var carry = new StringBuilder();
        int read;
        while ((read = reader.ReadBlock(buffer, 0, buffer.Length)) > 0)
        {
            int cut = Array.LastIndexOf(buffer, '\n', read - 1);
            if (cut < 0) { carry.Append(buffer, 0, read); if (carry.Length < 16 * ChunkChars) continue; cut = -1; }
            carry.Append(buffer, 0, cut + 1);
            yield return carry.ToString();
            carry.Clear();
            carry.Append(buffer, cut + 1, read - cut - 1);
        }
        if (carry.Length > 0) yield return carry.ToString();
    }
}
