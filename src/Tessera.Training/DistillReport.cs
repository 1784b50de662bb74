using System.Globalization;
using System.Text;
using Tessera.Model;
using Tessera.Training.Experiments;

namespace Tessera.Training;

/// <summary>
/// Writes a <see cref="DistillResult"/> into a run folder as results.json, report.md and
/// bpb.svg + bpb.png (held-out bits per byte against step for both students, the teacher as a flat line).
/// </summary>
public static class DistillReport
{
    /// <summary>Writes the three files into <paramref name="dir"/>; <paramref name="command"/> (may be null) is quoted in the report.</summary>
    public static IReadOnlyList<string> Write(string dir, DistillResult r, string? command = null)
    {
        long lastStep = r.Train.Steps;
        var figure = new Figure("Held-out bits per byte: distilled vs. from scratch", "optimizer step", "validation bits/byte")
            .Add(new PlotSeries("teacher", [(0, r.TeacherBitsPerByte), (lastStep, r.TeacherBitsPerByte)], SeriesStyle.Reference, 7))
            .Add(new PlotSeries("student, scratch", Points(r.Scratch), SeriesStyle.LineAndMarkers, 0))
            .Add(new PlotSeries("student, distilled", Points(r.Distilled), SeriesStyle.LineAndMarkers, 1));
        return ExperimentReport.Write(dir, "Distillation", Json(r), Markdown(r, command), new Dictionary<string, Figure> { ["bpb"] = figure });
    }

    static List<(double, double)> Points(StudentResult s)
    {
        var p = new List<(double, double)>(s.Curve.Count);
        foreach (var c in s.Curve) p.Add((c.Step, c.BitsPerByte));
        return p;
    }

    static object Json(DistillResult r) => new
    {
        experiment = "distill",
        teacher = new { config = Describe(r.TeacherConfig), parameters = r.TeacherConfig.ParameterCount, activeParameters = r.TeacherConfig.ActiveParameterCount, valLoss = r.TeacherValLoss, bitsPerByte = r.TeacherBitsPerByte },
        student = new { config = Describe(r.StudentConfig), parameters = r.StudentConfig.ParameterCount, activeParameters = r.StudentConfig.ActiveParameterCount },
        scratch = r.Scratch,
        distilled = r.Distilled,
        bitsPerByteGain = r.BitsPerByteGain,
        distilledBeatsScratch = r.Distilled.BitsPerByte < r.Scratch.BitsPerByte,
        train = new { r.Train.Steps, r.Train.BatchSize, r.Train.SequenceLength, r.Train.GradAccumulation, tokens = r.Train.Steps * r.Train.TokensPerStep, r.Train.LearningRate, r.Train.MinLearningRate, r.Train.WarmupSteps, r.Train.Seed },
        distill = r.Distill,
        cache = new { windows = r.CacheWindows, fileBytes = r.CacheBytes, seconds = r.CacheSeconds },
        validationTokensEvaluated = r.ValidationTokensEvaluated,
    };

    /// <summary>A one-line shape: "4L d96 4h/2kv, 4×128 experts top-2" or "2L d64 2h/1kv, dense 192".</summary>
    public static string Describe(ModelConfig c)
        => $"{c.Layers}L d{c.Dim} {c.Heads}h/{c.KvHeads}kv, " + (c.IsMoe ? $"{c.Experts}×{c.HiddenDim} experts top-{c.TopK}" : $"dense {c.HiddenDim}");

    static string Markdown(DistillResult r, string? command)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        if (command is not null) md.Append(inv, $"```\n{command}\n```\n\n");
        long tokens = r.Train.Steps * r.Train.TokensPerStep;
        md.Append(inv, $"Both students: {Describe(r.StudentConfig)} ({r.StudentConfig.ParameterCount:N0} parameters), {r.Train.Steps} steps × {r.Train.TokensPerStep:N0} tokens = {tokens:N0} tokens, ");
        md.Append(inv, $"same initial weights and data order (seed {r.Train.Seed}). Teacher: {Describe(r.TeacherConfig)} ({r.TeacherConfig.ParameterCount:N0} parameters, {r.TeacherConfig.ActiveParameterCount:N0} active).\n\n");
        md.Append("| model | held-out loss (nats/token) | bits/byte | train time (s) |\n|---|---:|---:|---:|\n");
        md.Append(inv, $"| teacher | {r.TeacherValLoss:F4} | {r.TeacherBitsPerByte:F4} | – |\n");
        md.Append(inv, $"| student, from scratch (CE) | {r.Scratch.ValLoss:F4} | {r.Scratch.BitsPerByte:F4} | {r.Scratch.Seconds:F1} |\n");
        md.Append(inv, $"| student, distilled | {r.Distilled.ValLoss:F4} | {r.Distilled.BitsPerByte:F4} | {r.Distilled.Seconds:F1} |\n\n");
        string verdict = r.BitsPerByteGain > 0 ? "lower (better) than" : "not lower than";
        md.Append(inv, $"The distilled student's held-out bits per byte is **{verdict}** the scratch student's: {r.Distilled.BitsPerByte:F4} vs {r.Scratch.BitsPerByte:F4} (Δ = {r.BitsPerByteGain:+0.0000;-0.0000}).\n\n");
        md.Append(inv, $"Loss = α·T²·KL(teacher_T ‖ student_T) + (1 − α)·CE with α = {r.Distill.Alpha}, T = {r.Distill.Temperature}; the teacher distribution is its top-{r.Distill.TopK} logits ");
        md.Append(r.Distill.TailBin ? "plus one bin holding the rest of its probability mass. " : "renormalised over those k. ");
        md.Append(inv, $"Teacher cache: {r.CacheWindows:N0} windows, {r.CacheBytes / 1048576.0:F1} MiB file, built in {r.CacheSeconds:F1} s. ");
        md.Append(inv, $"Held-out figures are over the same {r.ValidationTokensEvaluated:N0} validation tokens for all three models.\n\n");
        md.Append("![held-out bits per byte](bpb.svg)\n");
        return md.ToString();
    }
}
