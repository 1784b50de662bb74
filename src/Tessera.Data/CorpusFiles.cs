using System.Text;

namespace Tessera.Data;

/// <summary>One document of a corpus: a stable key (used for the split) and its text.</summary>
public sealed record CorpusDocument(string Key, string Text);

/// <summary>
/// Reads a corpus from a text file or a folder of .txt files. Every file must be non-empty,
/// valid UTF-8; a bad one is reported by name before any work starts. A file may hold several
/// documents separated by a line that is exactly the separator.
/// </summary>
public static class CorpusFiles
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The files a path names: itself, or the .txt files below a folder in ordinal order.</summary>
    public static IReadOnlyList<string> List(string path)
    {
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path)) throw new FileNotFoundException($"Corpus not found: {path}", path);
        var files = Directory.GetFiles(path, "*.txt", SearchOption.AllDirectories);
        Array.Sort(files, StringComparer.Ordinal);
        if (files.Length == 0) throw new InvalidDataException($"Corpus folder {path} holds no .txt files.");
        return files;
    }

    /// <summary>Reads one file strictly as UTF-8, naming the file and byte offset of the first invalid sequence.</summary>
    public static string ReadText(string file)
    {
        var bytes = File.ReadAllBytes(file);
        if (bytes.Length == 0) throw new InvalidDataException($"Corpus file {file} is empty.");
        try
        {
            int start = bytes.AsSpan().StartsWith(Encoding.UTF8.Preamble) ? 3 : 0;
            return StrictUtf8.GetString(bytes, start, bytes.Length - start);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"Corpus file {file} is not valid UTF-8 (first bad byte at offset {e.Index}).");
        }
    }

    /// <summary>
    /// Reads every document under <paramref name="path"/>. Keys are the file's path relative to
    /// <paramref name="path"/> plus a document index when a file is split by <paramref name="separator"/>.
    /// </summary>
    public static IReadOnlyList<CorpusDocument> Read(string path, string? separator = null)
    {
        var root = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        var docs = new List<CorpusDocument>();
        foreach (var file in List(path))
        {
            string text = ReadText(file);
            string key = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (separator is null) { docs.Add(new CorpusDocument(key, text)); continue; }
            var parts = text.Split("\n" + separator + "\n");
            for (int i = 0; i < parts.Length; i++)
                if (parts[i].Length > 0) docs.Add(new CorpusDocument($"{key}#{i}", parts[i]));
        }
        if (docs.Count == 0) throw new InvalidDataException($"Corpus {path} holds no text.");
        return docs;
    }
}
