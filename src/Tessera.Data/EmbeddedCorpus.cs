using Tessera.Kernels.IO;

namespace Tessera.Data;

/// <summary>
/// The default English corpus (data/corpus: Moby-Dick and the State of the Union addresses,
/// public domain, see data/PROVENANCE.md), compiled into this assembly.
/// </summary>
public static class EmbeddedCorpus
{
    const string Prefix = "corpus/";

    /// <summary>Names of the embedded files, e.g. <c>moby-dick.txt.gz</c>.</summary>
    public static IReadOnlyList<string> Files { get; } =
        [.. typeof(EmbeddedCorpus).Assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)).Select(n => n[Prefix.Length..]).Order(StringComparer.Ordinal)];

    /// <summary>Writes the files into <paramref name="directory"/> (skipping ones already there with the same size) and returns it.</summary>
    public static string Materialize(string directory)
    {
        if (Files.Count == 0) throw new InvalidOperationException("This build carries no embedded corpus (data/corpus was empty when it was compiled).");
        Directory.CreateDirectory(directory);
        foreach (var name in Files)
        {
            using var src = typeof(EmbeddedCorpus).Assembly.GetManifestResourceStream(Prefix + name)!;
            string path = Path.Combine(directory, name);
            if (File.Exists(path) && new FileInfo(path).Length == src.Length) continue;
            AtomicFile.Write(path, src.CopyTo);
        }
        return directory;
    }

    /// <summary>The embedded corpus as documents (speeches by file name, Moby-Dick by chapter).</summary>
    public static IReadOnlyList<CorpusDocument> Read(string scratchDirectory)
        => CorpusFiles.Read(Materialize(scratchDirectory), CorpusFiles.EmbeddedDocumentStart);

    /// <summary>
    /// The embedded corpus as documents, unpacked into a private temporary folder that is removed
    /// before returning (for callers whose output folder must hold nothing but their output).
    /// </summary>
    public static IReadOnlyList<CorpusDocument> Read()
    {
        var scratch = Directory.CreateTempSubdirectory("tessera-corpus-").FullName;
        try { return Read(scratch); }
        finally { Directory.Delete(scratch, recursive: true); }
    }
}
