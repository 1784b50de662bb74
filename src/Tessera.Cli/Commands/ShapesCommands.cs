using System.Globalization;
using System.Text.Json;
using Tessera.Kernels.IO;
using Tessera.Training.Experiments;
using Tessera.Vision;
using Tessera.Vision.FashionMnist;
using Tessera.Vision.Shapes;

namespace Tessera.Cli.Commands;

/// <summary>
/// `tessera train --data shapes` and `tessera eval --model &lt;multimodal folder&gt;`: the shapes world
/// (images, questions and captions mixed with text-only documents) trained and scored per question
/// type. The run folder gets the model (config.json with vision_config + model.safetensors),
/// report.json and accuracy-vs-steps.svg.
/// </summary>
internal static class ShapesCommands
{
    /// <summary>The `--quick` recipe (≤ 5 min on 2 cores) and the defaults of the full one.</summary>
    public static ShapesOptions Recipe(bool quick, int? steps, int? batch, float? lr, int? dim, int? layers, double textFraction, bool causal, ulong seed) => new()
    {
        Steps = steps ?? (quick ? 500 : 2500), BatchSize = batch ?? 16, LearningRate = lr ?? 2e-3f, Dim = dim ?? 128, Layers = layers ?? 4,
        TextFraction = textFraction, PrefixLm = !causal, Seed = (int)(seed % int.MaxValue),
        EvalEvery = quick ? 100 : 250, CurveExamples = quick ? 24 : 32, EvalExamples = quick ? 50 : 200,
    };

    public static int Train(ShapesOptions options, string outDir, bool asJson)
    {
        var trainer = new ShapesTrainer(options);
        using var model = trainer.NewModel();
        if (!asJson) Console.Error.WriteLine($"shapes world: {options.Steps} steps × {options.BatchSize}, text fraction {options.TextFraction}, {(options.PrefixLm ? "prefix-LM" : "causal")}, " +
            $"{model.Decoder.Parameters.ElementCount + model.Embedder.Parameters.ElementCount:N0} parameters");
        var report = trainer.Train(model, p =>
        {
            if (!asJson) Console.Error.WriteLine($"step {p.Step,5}  loss {p.Loss:F3}  {p.Seconds,6:F0}s  " + string.Join("  ", p.Accuracy.Select(kv => $"{kv.Key} {kv.Value:P0}")));
        });
        MultimodalCheckpoint.Save(model, outDir);
        Write(report, outDir, asJson);
        return 0;
    }

    public static int Eval(string modelDir, int perType, int seed, bool asJson)
    {
        using var model = MultimodalCheckpoint.Load(modelDir);
        var c = model.Decoder.Config;
        var trainer = new ShapesTrainer(new ShapesOptions { Vision = model.Embedder.Config, Dim = c.Dim, Layers = c.Layers, Heads = c.Heads, PrefixLm = model.Embedder.Config.PrefixLm, Seed = seed, EvalExamples = perType });
        var inDist = trainer.Evaluate(model, trainer.EvalSet(seed + 2000, false, perType), "in-distribution");
        var comp = trainer.Evaluate(model, trainer.EvalSet(seed + 3000, true, perType), "compositional");
        string grid = WriteExamples(trainer, model, modelDir, seed);
        if (asJson) Console.WriteLine(JsonSerializer.Serialize(new { in_distribution = inDist, compositional = comp, examples = grid }, JsonNaming.Indented));
        else
        {
            foreach (var s in new[] { inDist, comp }) Console.WriteLine(Table(s));
            Console.WriteLine($"examples → {grid}");
        }
        return 0;
    }

    /// <summary>examples.svg in the model folder: two held-out in-distribution scenes per question type with the model's answers.</summary>
    static string WriteExamples(ShapesTrainer trainer, MultimodalModel model, string modelDir, int seed)
    {
        var set = trainer.EvalSet(seed + 4000, false, 2);
        var answers = trainer.Answer(model, [.. set.Select(x => (x.Scene.Render(), x.Question))]);
        int right = set.Select((x, i) => x.Question.Answer == answers[i] ? 1 : 0).Sum();
        string svg = ExampleGrid.Svg($"Shapes world (held-out scenes): the model's answers, {right} of {set.Count} right",
            [.. set.Select(x => x.Scene.Render())], [.. set.Select(x => x.Question.Question)], answers, [.. set.Select(x => x.Question.Answer)]);
        string path = Path.Combine(modelDir, "examples.svg");
        AtomicFile.WriteAllText(path, svg);
        return path;
    }

    static void Write(ShapesReport report, string outDir, bool asJson)
    {
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.json"), JsonSerializer.Serialize(report, JsonNaming.Indented));
        var types = report.Curve.Count == 0 ? [] : report.Curve[0].Accuracy.Keys.ToList();
        var series = types.Select(t => (t, (IReadOnlyList<(double, double)>)[.. report.Curve.Select(p => ((double)p.Step, p.Accuracy[t]))])).ToList();
        AtomicFile.WriteAllText(Path.Combine(outDir, "accuracy-vs-steps.svg"),
            SvgPlot.Lines("Shapes world: exact match per question type", "step", "accuracy (held-out scenes)", series));
        if (asJson) { Console.WriteLine(JsonSerializer.Serialize(report, JsonNaming.Indented)); return; }
        Console.WriteLine($"trained {report.Seconds:F0}s, final loss {report.FinalLoss:F3}, {report.Parameters:N0} parameters → {outDir}");
        Console.WriteLine(Table(report.InDistribution));
        Console.WriteLine(Table(report.Compositional));
    }

    static string Table(SplitScore s)
        => $"{s.Split,-16} ({s.PerType}/type)  " + string.Join("  ", s.Accuracy.Select(kv => $"{kv.Key} {kv.Value.ToString("P1", CultureInfo.InvariantCulture)}"));
}
