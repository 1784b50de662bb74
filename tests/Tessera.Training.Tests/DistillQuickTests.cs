using Tessera.Data;

namespace Tessera.Training.Tests;

/// <summary>
/// The `tessera distill --quick` recipe end to end on the embedded corpus, as CI runs it: real
/// tokenizer, real shards, a teacher trained on the spot, both students, the report files.
/// </summary>
public class DistillQuickTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void Quick_recipe_runs_on_the_embedded_corpus_and_reports_finite_figures()
    {
        using var dir = new TempDir();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var prepared = DistillQuick.PrepareEmbedded(dir.Path, output.WriteLine);
        using var train = TokenShard.Open(prepared.ShardPath(Split.Train));
        using var val = TokenShard.Open(prepared.ShardPath(Split.Validation));
        var data = new TrainData([train], [val], prepared.Validation.Bytes);
        using var teacher = DistillQuick.TrainTeacher(data, prepared.VocabSize, log: output.WriteLine);
        output.WriteLine($"prepared + teacher in {clock.Elapsed.TotalSeconds:F1} s");
        var r = DistillExperiment.Run(teacher, DistillQuick.Student(prepared.VocabSize), DistillQuick.StudentOptions, DistillQuick.Distill, data,
            dir.File("run"), log: output.WriteLine);
        var files = DistillReport.Write(dir.File("run"), r, "tessera distill --quick");
        output.WriteLine($"total {clock.Elapsed.TotalSeconds:F1} s: teacher {r.TeacherBitsPerByte:F4} | scratch {r.Scratch.BitsPerByte:F4} | distilled {r.Distilled.BitsPerByte:F4}");
        Assert.Equal(Tessera.Training.Experiments.Figure.PngUnavailableReason is null ? 4 : 3, files.Count);   // results, report, bpb.svg (+ bpb.png)
        Assert.All(files, f => Assert.True(new FileInfo(f).Length > 100, f));
        foreach (double x in new[] { r.TeacherBitsPerByte, r.Scratch.BitsPerByte, r.Distilled.BitsPerByte })
            Assert.True(double.IsFinite(x) && x > 0 && x < 8, $"bits per byte {x}");
        // The teacher saw 200 steps of a model 10× the student's size: it must be clearly ahead.
        Assert.True(r.TeacherBitsPerByte < r.Scratch.BitsPerByte, $"teacher {r.TeacherBitsPerByte:F4} vs scratch {r.Scratch.BitsPerByte:F4}");
        Assert.True(r.Scratch.Curve[^1].BitsPerByte < r.Scratch.Curve[0].BitsPerByte && r.Distilled.Curve[^1].BitsPerByte < r.Distilled.Curve[0].BitsPerByte);
    }
}
