namespace Tessera.Data.Tests;

public class CorpusFilesTests
{
    [Fact]
    public void InvalidUtf8NamesTheFileAndOffset()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("a.txt"), "fine");
        File.WriteAllBytes(dir.File("b.txt"), [0x68, 0x69, 0xC3, 0x28]);
        var e = Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(dir.Path));
        Assert.Contains("b.txt", e.Message);
        Assert.Contains("offset 2", e.Message);
    }

    [Fact]
    public void EmptyFileAndEmptyFolderAreRejected()
    {
        using var dir = new TempDir();
        Assert.Contains("no .txt", Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(dir.Path)).Message);
        File.WriteAllText(dir.File("e.txt"), "");
        Assert.Contains("empty", Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(dir.Path)).Message);
        Assert.Throws<FileNotFoundException>(() => CorpusFiles.Read(dir.File("missing.txt")));
    }

    [Fact]
    public void FolderIsReadInOrdinalOrderAndCutIntoDocuments()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("b.txt"), "two");
        File.WriteAllText(dir.File("a.txt"), "\uFEFFpreface\n=== x.txt ===\none\n=== y.txt ===\nuno\n");
        using (var gz = new System.IO.Compression.GZipStream(File.Create(dir.File("c.txt.gz")), System.IO.Compression.CompressionLevel.Fastest))
            gz.Write("CHAPTER 1. Loomings.\nCall me Ishmael.\nCHAPTER 2. The Carpet-Bag.\nI stuffed a shirt"u8);
        var docs = CorpusFiles.Read(dir.Path, CorpusFiles.EmbeddedDocumentStart);
        Assert.Equal(new[] { "a.txt#0", "a.txt#x.txt", "a.txt#y.txt", "b.txt#0", "c.txt.gz#1", "c.txt.gz#2" }, docs.Select(d => d.Key));
        Assert.Equal(new[] { "preface", "one", "uno", "two", "Call me Ishmael.", "I stuffed a shirt" }, docs.Select(d => d.Text));
    }

    [Fact]
    public void CorruptGzipIsNamed()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("z.txt.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3]);
        Assert.Contains("z.txt.gz", Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(dir.Path)).Message);
    }
}

public class EmbeddedCorpusTests
{
    [Fact]
    public void EmbeddedCorpusSplitsIntoSpeechesAndChapters()
    {
        using var dir = new TempDir();
        var docs = EmbeddedCorpus.Read(dir.Path);
        Assert.Equal(new[] { "moby-dick.txt.gz", "sotu.txt.gz" }, EmbeddedCorpus.Files);
        // 233 speeches (one `=== name ===` line each, counted with grep when the data was made)
        // and Moby-Dick's 135 chapters plus its front matter and epilogue.
        Assert.Equal(233, docs.Count(d => d.Key.StartsWith("sotu.txt.gz#", StringComparison.Ordinal)));
        Assert.InRange(docs.Count(d => d.Key.StartsWith("moby-dick.txt.gz#", StringComparison.Ordinal)), 135, 138);
        Assert.Contains(docs, d => d.Key == "sotu.txt.gz#1790_george_washington_n.txt");
        Assert.Equal(docs.Count, docs.Select(d => d.Key).Distinct().Count());
    }
}

public class ChunkingTests
{
    [Fact]
    public void OneLongDocumentIsCutAtParagraphsAndLosesNoText()
    {
        var paragraphs = Enumerable.Range(0, 400).Select(i => $"Paragraph {i} " + new string('w', i % 37)).ToArray();
        string text = string.Join("\n\n", paragraphs);
        var chunks = CorpusFiles.ChunkIfFew([new CorpusDocument("book.txt", text)], target: 50);
        Assert.InRange(chunks.Count, 40, 60);
        Assert.Equal(chunks.Count, chunks.Select(c => c.Key).Distinct().Count());
        // Every chunk starts at a paragraph start, and the chunks re-join to the original text.
        Assert.All(chunks, c => Assert.StartsWith("Paragraph ", c.Text));
        Assert.Equal(text, string.Join("\n\n", chunks.Select(c => c.Text)));
    }

    [Fact]
    public void ManyDocumentsAreLeftAlone()
    {
        var docs = Enumerable.Range(0, 300).Select(i => new CorpusDocument($"d{i}", "x")).ToList();
        Assert.Same(docs, CorpusFiles.ChunkIfFew(docs));
    }
}
