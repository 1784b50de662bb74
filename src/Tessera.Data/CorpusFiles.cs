using System.IO.Compression;
using System.IO.Enumeration;
using System.Text;
using System.Text.RegularExpressions;

namespace Tessera.Data;

/// <summary>
/// One document of a corpus: a stable key (used for the split) and its text. With
/// <paramref name="LossStart"/> &gt; 0 the first that many characters are context only (a prompt): its
/// tokens are fed to the model but carry no training loss (see <see cref="TokenShard.MaskPath"/>);
/// 0 trains on the whole document.
/// </summary>
public sealed record CorpusDocument(string Key, string Text, int LossStart = 0);

/// <summary>
/// Reads a corpus from a file or a folder of files, in the forms people have:
/// <list type="bullet">
/// <item><c>.txt</c> / <c>.txt.gz</c>: a file is one document, unless a line matching
/// <c>documentStart</c> begins a new one (its first capture group, when present, names it) — the
/// embedded corpus uses <c>=== name ===</c> lines and chapter headings this way;</item>
/// <item><c>.jsonl</c> / <c>.jsonl.gz</c>: one JSON object per line, the document is its text field
/// (<see cref="JsonlCorpus"/>);</item>
/// <item><c>.parquet</c>: one document per row of a text column (<see cref="ParquetCorpus"/>).</item>
/// </list>
/// Every file must be non-empty, valid UTF-8 (or valid Parquet); a bad one is reported by name
/// before any work starts, so nothing is written from a corpus that cannot be read whole.
/// Empty documents are dropped in every format.
/// </summary>
public static class CorpusFiles
{
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The document-start pattern of the embedded corpus (data/corpus).</summary>
    public static Regex EmbeddedDocumentStart { get; } = new(@"^(?:=== (.+) ===|CHAPTER \d+\..*)$", RegexOptions.Multiline | RegexOptions.CultureInvariant);

    /// <summary>The file endings a corpus folder is searched for (other files are ignored).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".txt", ".txt.gz", ".jsonl", ".jsonl.gz", ".parquet"];

    /// <summary>The field of a JSONL object, or the Parquet column, that holds a document's text unless another is named.</summary>
    public const string DefaultTextField = "text";

    /// <summary>
    /// The files a path names: itself, or the files below a folder with one of <see cref="Extensions"/>,
    /// in ordinal order of their relative paths. <paramref name="include"/> replaces the extension
    /// rule with file-name patterns (<c>*</c> and <c>?</c>, case-insensitive, e.g. <c>*.cs</c>): a
    /// folder of source code or of any other text becomes a corpus whose files are read as text
    /// (one document each) unless they end in .jsonl or .parquet. Folders named <c>bin</c>,
    /// <c>obj</c> or starting with a dot are skipped when patterns are given (build output and
    /// version-control data are not text a user means).
    /// </summary>
    public static IReadOnlyList<string> List(string path, IReadOnlyList<string>? include = null)
    {
        if (include is { Count: 0 }) include = null;
        if (include is not null)
            foreach (var pattern in include)
                if (string.IsNullOrWhiteSpace(pattern) || pattern.Contains('/') || pattern.Contains('\\'))
                    throw new ArgumentException($"Include pattern '{pattern}' must be a non-empty file-name pattern such as *.cs (no folders).");
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path)) throw new FileNotFoundException($"Corpus not found: {path}", path);
        var files = Directory.GetFiles(path, "*", SearchOption.AllDirectories)
            .Where(f => include is null
                ? Extensions.Any(e => f.EndsWith(e, StringComparison.OrdinalIgnoreCase))
                : !InSkippedFolder(path, f) && include.Any(p => FileSystemName.MatchesSimpleExpression(p, Path.GetFileName(f), ignoreCase: true)))
            .ToArray();
        Array.Sort(files, StringComparer.Ordinal);
        if (files.Length == 0)
            throw new InvalidDataException(include is null
                ? $"Corpus folder {path} holds no {string.Join(", ", Extensions.SkipLast(1))} or {Extensions[^1]} files."
                : $"Corpus folder {path} holds no files matching {string.Join(", ", include)}.");
        return files;
    }

    static bool InSkippedFolder(string root, string file)
    {
        var relative = Path.GetRelativePath(root, Path.GetDirectoryName(file)!);
        if (relative == ".") return false;
        foreach (var part in relative.Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar))
            if (part is "bin" or "obj" || part.StartsWith('.')) return true;
        return false;
    }

    /// <summary>A file's bytes, gunzipped when it ends in <c>.gz</c>; an empty or corrupt file is named in the error.</summary>
    public static byte[] ReadBytes(string file)
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
        return bytes;
    }

    /// <summary>Reads one file (gunzipping <c>.gz</c>) strictly as UTF-8, naming the file and byte offset of the first invalid sequence.</summary>
    public static string ReadText(string file)
    {
        byte[] bytes = ReadBytes(file);
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
    /// Reads every document under <paramref name="path"/>, in file order and within a file in
    /// line or row order. A document's key is the file's path relative to <paramref name="path"/>,
    /// plus <c>#name</c> or <c>#index</c> when a text file is cut by <paramref name="documentStart"/>
    /// (text before the first match is a document of its own), <c>#line</c> for JSONL and
    /// <c>#row</c> for Parquet. <paramref name="textField"/> names the JSONL field or Parquet column
    /// that holds the text; <paramref name="documentStart"/> applies to text files only;
    /// <paramref name="include"/> selects files by name as in <see cref="List"/>.
    /// </summary>
    public static IReadOnlyList<CorpusDocument> Read(string path, Regex? documentStart = null, string textField = DefaultTextField, IReadOnlyList<string>? include = null)
    {
        var root = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        var docs = new List<CorpusDocument>();
        foreach (var file in List(path, include))
        {
            string key = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (file.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase)) { ParquetCorpus.Read(file, key, textField, docs); continue; }
            if (file.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".jsonl.gz", StringComparison.OrdinalIgnoreCase))
            {
                JsonlCorpus.Read(file, key, textField, docs);
                continue;
            }
            string text = ReadText(file);
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
            // A prompt/completion document is one unit: cutting it would separate the answer from its prompt.
            if (d.LossStart > 0) { result.Add(d); continue; }
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
