namespace Tessera.Fuzz.Tests;

/// <summary>
/// CI replays every committed fuzz input as an ordinary test (no fuzzing): the seed corpus under
/// fuzz/corpus/TARGET and every past finding under fuzz/regressions/TARGET must be rejected
/// cleanly or parsed, never crash. A finding file without its fix fails here.
/// </summary>
public class CorpusReplayTests
{
    static readonly string Root = FindRoot();

    static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (Directory.Exists(Path.Combine(d.FullName, "fuzz", "corpus"))) return Path.Combine(d.FullName, "fuzz");
        throw new DirectoryNotFoundException($"no fuzz/corpus above {AppContext.BaseDirectory}");
    }

    public static TheoryData<string> Targets => new(FuzzTarget.All.Select(t => t.Name));

    [Theory]
    [MemberData(nameof(Targets))]
    public void EverySeedAndEveryPastFindingReplaysCleanly(string name)
    {
        var target = FuzzTarget.Get(name);
        var files = new[] { "corpus", "regressions" }
            .Select(k => Path.Combine(Root, k, name)).Where(Directory.Exists)
            .SelectMany(Directory.EnumerateFiles).Order(StringComparer.Ordinal).ToList();
        Assert.True(files.Count(f => f.Contains($"{Path.DirectorySeparatorChar}corpus{Path.DirectorySeparatorChar}")) > 0, $"target {name} has no committed seeds");
        var failures = new List<string>();
        foreach (var f in files)
        {
            try { target.Run(File.ReadAllBytes(f)); }
            catch (Exception e) { failures.Add($"{Path.GetRelativePath(Root, f)}: {e.GetType().Name}: {e.Message}"); }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void TheHarnessCountsARuntimeExceptionAsACrashAndOurRejectionAsClean()
    {
        // The classification is what makes the fuzzer find anything: check both sides.
        Assert.False(FuzzTarget.IsCleanRejection(Capture(() => _ = new int[1].AsSpan()[Environment.ProcessorCount + 5])));
        Assert.False(FuzzTarget.IsCleanRejection(Capture(() => System.Text.Json.JsonDocument.Parse("{"))));
        var ours = Capture(() => FuzzTarget.Get("no-such-target"));
        Assert.True(FuzzTarget.IsCleanRejection(ours), ours.ToString());
    }

    static Exception Capture(Action a)
    {
        try { a(); }
        catch (Exception e) { return e; }
        throw new InvalidOperationException("expected an exception");
    }
}
