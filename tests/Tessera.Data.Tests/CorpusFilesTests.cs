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
    public void FolderIsReadInOrdinalOrderWithSeparators()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("b.txt"), "two");
        File.WriteAllText(dir.File("a.txt"), "\uFEFFone\n---\nuno");
        var docs = CorpusFiles.Read(dir.Path, separator: "---");
        Assert.Equal(new[] { "a.txt#0", "a.txt#1", "b.txt#0" }, docs.Select(d => d.Key));
        Assert.Equal(new[] { "one", "uno", "two" }, docs.Select(d => d.Text));
    }
}
