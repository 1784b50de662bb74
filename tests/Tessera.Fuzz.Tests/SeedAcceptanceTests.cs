namespace Tessera.Fuzz.Tests;

/// <summary>
/// The seeds of the newer targets must be accepted, not merely rejected cleanly: a seed the
/// parser refuses at the door gives the fuzzer nothing past the door to mutate from.
/// </summary>
public class SeedAcceptanceTests
{
    [Theory]
    [InlineData("chat-template")]
    [InlineData("regex-grammar")]
    [InlineData("manifest")]
    [InlineData("distill-cache")]
    public void EverySeedOfTheTargetParses(string name)
    {
        string dir = null!;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (Directory.Exists(dir = Path.Combine(d.FullName, "fuzz", "corpus", name))) break;
        var files = Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(files);
        foreach (var f in files)
        {
            var e = Record.Exception(() => FuzzTarget.Get(name).RunUnfiltered(File.ReadAllBytes(f)));
            Assert.True(e is null, $"{Path.GetFileName(f)}: {e}");
        }
    }

    // The GGUF target also loads the embedded tokenizer: one seed carries one, so that path is reachable.
    [Fact]
    public void TheGgufSeedWithATokenizerLoadsIt()
    {
        string path = null!;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(path = Path.Combine(d.FullName, "fuzz", "corpus", "gguf", "tiny-q8_0-with-tokenizer.gguf"))) break;
        FuzzTarget.Get("gguf").RunUnfiltered(File.ReadAllBytes(path));
    }
}
