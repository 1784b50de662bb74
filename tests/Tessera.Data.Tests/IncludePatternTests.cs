namespace Tessera.Data.Tests;

/// <summary>A folder of any text (source code here) becomes a corpus through file-name patterns.</summary>
public class IncludePatternTests
{
    [Fact]
    public void Patterns_PickMatchingFilesAsTextDocuments_SkippingBuildAndDotFolders()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("src/a"));
        Directory.CreateDirectory(dir.File("src/a/obj"));
        Directory.CreateDirectory(dir.File("src/.git"));
        File.WriteAllText(dir.File("src/a/One.cs"), "class One { }");
        File.WriteAllText(dir.File("src/Two.CS"), "class Two { }");
        File.WriteAllText(dir.File("src/notes.md"), "# notes");
        File.WriteAllText(dir.File("src/readme.txt"), "plain text");
        File.WriteAllText(dir.File("src/a/obj/Gen.cs"), "class Generated { }");
        File.WriteAllText(dir.File("src/.git/X.cs"), "class Hidden { }");

        var docs = CorpusFiles.Read(dir.File("src"), include: ["*.cs"]);
        Assert.Equal(["Two.CS", "a/One.cs"], docs.Select(d => d.Key).ToArray());
        Assert.Equal(["class Two { }", "class One { }"], docs.Select(d => d.Text).ToArray());

        // Several patterns; without patterns the usual endings rule (only the .txt file).
        Assert.Equal(3, CorpusFiles.Read(dir.File("src"), include: ["*.cs", "*.md"]).Count);
        Assert.Equal(["readme.txt"], CorpusFiles.Read(dir.File("src")).Select(d => d.Key).ToArray());
    }

    [Fact]
    public void NoMatch_OrAFolderPattern_IsAClearError()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("a.txt"), "text");
        Assert.Contains("no files matching *.py", Assert.Throws<InvalidDataException>(() => CorpusFiles.List(dir.Path, ["*.py"])).Message);
        Assert.Contains("no folders", Assert.Throws<ArgumentException>(() => CorpusFiles.List(dir.Path, ["src/*.cs"])).Message);
    }
}
