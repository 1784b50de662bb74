using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace Tessera.Data;

/// <summary>One document of a corpus: a stable key (used for the split) and its text.</summary>
public sealed record CorpusDocument(string Key, string Text);

/// <summary>
/// Reads a corpus from a text file or a folder of <c>.txt</c> / <c>.txt.gz</c> files. Every file
/// must be non-empty, valid UTF-8; a bad one is reported by name before any work starts. A line
/// matching <c>documentStart</c> begins a new document (its first capture group, when present,
/// names it), so one file can hold many documents — the embedded corpus uses
/// <c>=== name ===</c> lines and chapter headings this way.
/// </summary>
public static class CorpusFiles
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The document-start pattern of the embedded corpus (data/corpus).</summary>
    public static Regex EmbeddedDocumentStart { get; } = new(@"^(?:=== (.+) ===|CHAPTER \d+\..*)$", RegexOptions.Multiline | RegexOptions.CultureInvariant);

    /// <summary>The files a path names: itself, or the .txt / .txt.gz files below a folder in ordinal order.</summary>
    public static IReadOnlyList<string> List(string path)
    {
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path)) throw new FileNotFoundException($"Corpus not found: {path}", path);
        var files = Directory.GetFiles(path, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".txt.gz", StringComparison.OrdinalIgnoreCase))
            .ToArray();
        Array.Sort(files, StringComparer.Ordinal);
        if (files.Length == 0) throw new InvalidDataException($"Corpus folder {path} holds no .txt or .txt.gz files.");
        return files;
    }

    /// <summary>Reads one file (gunzipping <c>.gz</c>) strictly as UTF-8, naming the file and byte offset of the first invalid sequence.</summary>
    public static string ReadText(string file)
    {
        byte[] bytes;
        if (file.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                using var gz = new GZipStream(File.OpenRead(file), CompressionMode.Decompress);
                using var ms = new MemoryStream();
                gz.CopyTo(ms);
                bytes = ms.ToArray();
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"Corpus file {file} is not valid gzip ({e.Message}).");
            }
        }
        else bytes = File.ReadAllBytes(file);
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
    /// Reads every document under <paramref name="path"/>. A document's key is the file's path
    /// relative to <paramref name="path"/>, plus <c>#name</c> or <c>#index</c> when the file is cut
    /// by <paramref name="documentStart"/>. Text before the first match is a document of its own.
    /// </summary>
    public static IReadOnlyList<CorpusDocument> Read(string path, Regex? documentStart = null)
    {
        var root = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        var docs = new List<CorpusDocument>();
        foreach (var file in List(path))
        {
            string text = ReadText(file);
            string key = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (documentStart is null) { docs.Add(new CorpusDocument(key, text)); continue; }
            int start = 0, index = 0;
            string name = index.ToString();
            foreach (Match m in documentStart.Matches(text))
            {
                Add(docs, key, name, text[start..m.Index]);
                index++;
                name = m.Groups.Count > 1 && m.Groups[1].Success ? m.Groups[1].Value : index.ToString();
                start = m.Index + m.Length;
            }
            Add(docs, key, name, text[start..]);
        }
        if (docs.Count == 0) throw new InvalidDataException($"Corpus {path} holds no text.");
        return docs;
    }

    /// <summary>
    /// A corpus of few, long documents (e.g. one novel in one file) cannot be split by document,
    /// so each document is cut at paragraph breaks into chunks of about total/<paramref name="target"/>
    /// characters; keys become <c>key@n</c>. Corpora that already have <paramref name="target"/> or
    /// more documents are returned unchanged.
    /// </summary>
    public static IReadOnlyList<CorpusDocument> ChunkIfFew(IReadOnlyList<CorpusDocument> docs, int target = 200)
    {
        if (docs.Count >= target) return docs;
        long total = 0;
        foreach (var d in docs) total += d.Text.Length;
        int size = (int)Math.Max(256, total / target);
        var result = new List<CorpusDocument>();
        foreach (var d in docs)
        {
            int start = 0, n = 0;
            while (start < d.Text.Length)
            {
                int end = Math.Min(d.Text.Length, start + size);
                if (end < d.Text.Length)
                {
                    // Prefer a paragraph break, then a line break, after the nominal end.
                    int para = d.Text.IndexOf("\n\n", end, StringComparison.Ordinal);
                    int line = d.Text.IndexOf('\n', end);
                    end = para >= 0 && para - end < size ? para : line >= 0 && line - end < size ? line : end;
                }
                var piece = d.Text[start..end].Trim('\n', '\r');
                if (piece.Length > 0) result.Add(new CorpusDocument($"{d.Key}@{n++}", piece));
                start = end;
            }
        }
        return result;
    }

    static void Add(List<CorpusDocument> docs, string key, string name, string text)
    {
        text = text.Trim('\n', '\r');
        if (text.Length > 0) docs.Add(new CorpusDocument($"{key}#{name}", text));
    }
}
