namespace Tessera.Evals.Tests;

public sealed class EvalInputTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "tessera-evalin-" + Guid.NewGuid().ToString("N"));

    public EvalInputTests() => Directory.CreateDirectory(dir);

    public void Dispose() { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }

    string Write(string name, string text)
    {
        string p = Path.Combine(dir, name);
        File.WriteAllText(p, text);
        return p;
    }

    [Fact]
    public void MinimalPairFileErrorsNameTheProblem()
    {
        Assert.Contains("empty", Assert.Throws<InvalidDataException>(() => MinimalPairs.Load(Write("e.jsonl", "\n\n"))).Message);
        var bad = Write("b.jsonl", "{\"sentence_good\": \"a.\", \"sentence_bad\": \"b.\"}\n{\"sentence_good\": \"a.\"}\n");
        Assert.Contains("b.jsonl:2", Assert.Throws<InvalidDataException>(() => MinimalPairs.Load(bad)).Message);
        Assert.Contains(":1", Assert.Throws<InvalidDataException>(() => MinimalPairs.Load(Write("j.jsonl", "not json\n"))).Message);
        var ok = MinimalPairs.Load(Write("ok.jsonl", "{\"sentence_good\": \"A cat sleeps.\", \"sentence_bad\": \"A cat sleep.\", \"x\": 1}\n"));
        Assert.Equal(new MinimalPair("A cat sleeps.", "A cat sleep."), ok[0]);
        Assert.Throws<InvalidDataException>(() => MinimalPairs.ListFiles(Directory.CreateDirectory(Path.Combine(dir, "none")).FullName));
    }

    [Fact]
    public void HellaSwagFileErrorsNameTheProblem()
    {
        Assert.Contains("empty", Assert.Throws<InvalidDataException>(() => MultipleChoice.LoadHellaSwag(Write("e.txt", ""))).Message);
        Assert.Contains("whole number", Assert.Throws<InvalidDataException>(() => MultipleChoice.LoadHellaSwag(Write("t.txt", "ctx\n1\na\nb\nc\n"))).Message);
        Assert.Contains(":2", Assert.Throws<InvalidDataException>(() => MultipleChoice.LoadHellaSwag(Write("l.txt", "ctx\n4\na\nb\nc\nd\n"))).Message);
        var items = MultipleChoice.LoadHellaSwag(Write("ok.txt", "c1\n2\na\nb\nc\nd\nc2\n0\ne\nf\ng\nh\n"), limit: 1);
        Assert.Single(items);
        Assert.Equal(2, items[0].Label);
        Assert.Equal(["a", "b", "c", "d"], items[0].Endings);
    }

    [Fact]
    public void InputsFailBeforeAnyWork()
    {
        Assert.Contains("Nothing to evaluate", Assert.Throws<ArgumentException>(() => EvalInputs.Load(new EvalOptions())).Message);
        Assert.Throws<DirectoryNotFoundException>(() => EvalInputs.Load(new EvalOptions { Data = Path.Combine(dir, "missing") }));
        Assert.Contains("meta.json", Assert.Throws<FileNotFoundException>(() => EvalInputs.Load(new EvalOptions { Data = dir })).Message);
        var empty = Write("empty.jsonl", "");
        Assert.Contains("empty", Assert.Throws<InvalidDataException>(() => EvalInputs.Load(new EvalOptions { MinimalPairs = empty })).Message);
        var ok = Write("ok.jsonl", "{\"sentence_good\": \"a.\", \"sentence_bad\": \"b.\"}\n");
        Assert.Contains("not found", Assert.Throws<FileNotFoundException>(() =>
            EvalInputs.Load(new EvalOptions { MinimalPairs = ok, Contamination = Path.Combine(dir, "nope.bin") })).Message);
    }

    [SharedFact]
    public void SharedEvalSetsLoad()
    {
        var files = MinimalPairs.ListFiles(Path.Combine(SharedData.Root!, "evals", "blimp-dev"));
        Assert.Equal(6, files.Count);
        foreach (var f in files) Assert.Equal(1000, MinimalPairs.Load(f).Count);
        var hs = MultipleChoice.LoadHellaSwag(Path.Combine(SharedData.Root!, "evals", "hellaswag-dev", "hellaswag_val_first500.txt"));
        Assert.Equal(500, hs.Count);
        Assert.All(hs, i => Assert.InRange(i.Label, 0, 3));
    }
}
