using System.CommandLine;
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

    /// <summary>The shapes-world flags beyond the common ones.</summary>
    public sealed record Extras(Option<int> Curriculum, Option<double> Motion, Option<int> MotionFrames, Option<int> EmbedderHidden, Option<float> PositionInit,
        Option<float> PositionRamp, Option<double> PositionFraction, Option<int> CurriculumStart, Option<bool> PatchNorm, Option<bool> PositionRationale,
        Option<int> MotionTravel, Option<bool> MotionRationale, Option<bool> OrderRationale, Option<double> PresenceFraction, Option<float> FrameRamp, Option<double> Ema, Option<double> PositionMinimalPairs)
    {
        public IEnumerable<Option> All => [Curriculum, Motion, MotionFrames, EmbedderHidden, PositionInit, PositionRamp, PositionFraction, CurriculumStart, PatchNorm, PositionRationale, MotionTravel, MotionRationale, OrderRationale, PresenceFraction, FrameRamp, Ema, PositionMinimalPairs];
    }

    public static Extras ExtraOptions() => new(
        new Option<int>("--curriculum-steps") { Description = "With --data shapes: training scenes grow from 1 to 4 shapes over this many steps (0: none)." },
        new Option<double>("--motion-fraction") { Description = "With --data shapes: fraction of batches whose image examples are clips of moving shapes (direction and order questions).", DefaultValueFactory = _ => 0.0 },
        new Option<int>("--motion-frames") { Description = "With --data shapes: frames per clip (2–8).", DefaultValueFactory = _ => 4 },
        new Option<int>("--embedder-hidden") { Description = "With --data shapes: hidden width of a per-patch MLP embedder (0: linear, Fuyu-style).", DefaultValueFactory = _ => 0 },
        new Option<float>("--position-init") { Description = "With --data shapes: initial std of the row, column and frame embeddings.", DefaultValueFactory = _ => Tessera.Model.ModelParameters.InitStd },
        new Option<float>("--position-ramp") { Description = "With --data shapes: amplitude of a linear left-to-right (top-to-bottom) ramp added to the column (row) embeddings at init (0: none)." },
        new Option<double>("--position-fraction") { Description = "With --data shapes: fraction of still questions that are relative-position questions (0: all types alike)." },
        new Option<int>("--curriculum-start") { Description = "With --data shapes: most shapes per scene at the start of the curriculum (1–4).", DefaultValueFactory = _ => 1 },
        new Option<bool>("--patch-norm") { Description = "With --data shapes: RMS-normalise the projected patch before the row/column embeddings are added." },
        new Option<bool>("--position-rationale") { Description = "With --data shapes: position answers first name the left shape, then yes/no (scored on the yes/no)." },
        new Option<int>("--motion-travel") { Description = "With --data shapes: pixels each shape of a clip moves over the clip (16, one patch, the harder setting; up to 48).", DefaultValueFactory = _ => MotionClip.Travel },
        new Option<bool>("--motion-rationale") { Description = "With --data shapes: direction answers first give the shape's first and last cells, then the direction (scored on the direction)." },
        new Option<bool>("--order-rationale") { Description = "With --data shapes: order answers first give the frame each named shape appears at, then the earlier one (scored on the name; clips of up to 6 frames)." },
        new Option<double>("--presence-fraction") { Description = "With --data shapes: fraction of the clip questions that ask the first frame a shape is drawn in (\"which appears first , the red circle ?\" → \"two\"), an auxiliary; reported as presence.", DefaultValueFactory = _ => 0.0 },
        new Option<float>("--frame-ramp") { Description = "With --data shapes and clips: amplitude of a linear early-to-late ramp added to the frame embeddings at init (0: none)." },
        new Option<double>("--ema") { Description = "With --data shapes: decay of a moving average of the weights (e.g. 0.999; 0: none); the curve, the scores and the saved model use the average.", DefaultValueFactory = _ => 0.0 },
        new Option<double>("--position-minimal-pairs") { Description = "With --data shapes: fraction of training position questions about two shapes of the same colour (or, with equal odds, kind), so the yes/no cannot come from the colour alone (0: none).", DefaultValueFactory = _ => 0.0 });

    /// <summary>The options with the extra flags applied.</summary>
    public static ShapesOptions With(this ShapesOptions o, Extras x, ParseResult p) => o with
    {
        CurriculumSteps = p.GetValue(x.Curriculum),
        MotionFraction = p.GetValue(x.Motion), MotionFrames = p.GetValue(x.MotionFrames),
        Vision = o.Vision with { EmbedderHidden = p.GetValue(x.EmbedderHidden) }, PositionInit = p.GetValue(x.PositionInit),
        PositionRamp = p.GetValue(x.PositionRamp), PositionFraction = p.GetValue(x.PositionFraction), CurriculumStart = p.GetValue(x.CurriculumStart), PatchNorm = p.GetValue(x.PatchNorm), PositionRationale = p.GetValue(x.PositionRationale),
        MotionTravel = p.GetValue(x.MotionTravel), MotionRationale = p.GetValue(x.MotionRationale), OrderRationale = p.GetValue(x.OrderRationale),
        PresenceFraction = p.GetValue(x.PresenceFraction), FrameRamp = p.GetValue(x.FrameRamp), Ema = p.GetValue(x.Ema), PositionMinimalPairs = p.GetValue(x.PositionMinimalPairs),
    };

    public static int Train(ShapesOptions options, string outDir, bool asJson, CancellationToken cancel = default)
    {
        var trainer = new ShapesTrainer(options);
        using var model = trainer.NewModel();
        if (!asJson) Console.Error.WriteLine($"shapes world: {options.Steps} steps × {options.BatchSize}, text fraction {options.TextFraction}, {(options.PrefixLm ? "prefix-LM" : "causal")}, " +
            $"{model.Decoder.Parameters.ElementCount + model.Embedder.Parameters.ElementCount:N0} parameters");
        var report = trainer.Train(model, p =>
        {
            if (!asJson) Console.Error.WriteLine($"step {p.Step,5}  loss {p.Loss:F3}  {p.Seconds,6:F0}s  " + string.Join("  ", p.Accuracy.Select(kv => $"{kv.Key} {kv.Value:P0}")));
        }, cancel);
        MultimodalCheckpoint.Save(model, outDir);
        Write(report, outDir, asJson);
        return 0;
    }

    public static int Eval(string modelDir, int perType, int seed, bool asJson)
    {
        using var model = MultimodalCheckpoint.Load(modelDir);
        var c = model.Decoder.Config;
        int frames = model.Embedder.Config.Frames;
        var clip = TrainedClipOptions(modelDir);
        var trainer = new ShapesTrainer(new ShapesOptions { Vision = model.Embedder.Config, Dim = c.Dim, Layers = c.Layers, Heads = c.Heads, PrefixLm = model.Embedder.Config.PrefixLm, Seed = seed, EvalExamples = perType,
            MotionFraction = frames > 0 ? 1 : 0, MotionFrames = Math.Max(2, frames), MotionTravel = clip.Travel, PresenceFraction = clip.Presence });
        var inDist = trainer.Evaluate(model, trainer.EvalSet(seed + 2000, false, perType), "in-distribution");
        var comp = trainer.Evaluate(model, trainer.EvalSet(seed + 3000, true, perType), "compositional");
        var motion = frames > 0 ? trainer.EvaluateMotion(model, trainer.MotionEvalSet(seed + 5000, false, perType), "motion") : null;
        double bpb = trainer.TextBitsPerByte(model, seed + 6000, 512);
        string grid = WriteExamples(trainer, model, modelDir, seed);
        if (asJson) Console.WriteLine(JsonSerializer.Serialize(new { in_distribution = inDist, compositional = comp, motion, text_bits_per_byte = bpb, examples = grid }, JsonNaming.Indented));
        else
        {
            foreach (var s in new[] { inDist, comp, motion }) if (s is not null) Console.WriteLine(Table(s));
            Console.WriteLine($"text: {bpb:F4} bits/byte on 512 held-out documents");
            Console.WriteLine($"examples → {grid}");
        }
        return 0;
    }

    /// <summary>
    /// The clip options the model in <paramref name="modelDir"/> was trained with, from report.json's options: the travel
    /// (motion_travel; <see cref="MotionClip.Travel"/> without it), so that its motion questions are asked about clips like its
    /// training clips, and the presence fraction (presence_fraction; 0 without it), so that a model trained with presence
    /// questions is also scored on them. No report: the defaults; a damaged one: a clear error naming the file.
    /// </summary>
    static (int Travel, double Presence) TrainedClipOptions(string modelDir)
    {
        string path = Path.Combine(modelDir, "report.json");
        if (!File.Exists(path)) return (MotionClip.Travel, 0);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("options", out var o) || o.ValueKind != JsonValueKind.Object)
                return (MotionClip.Travel, 0);
            return (o.TryGetProperty("motion_travel", out var t) ? t.GetInt32() : MotionClip.Travel, o.TryGetProperty("presence_fraction", out var f) ? f.GetDouble() : 0);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: not a readable training report ({e.Message}); it gives the clip options the model was trained on. " +
                "Restore it from the run, or delete it to ask about clips of the default options.", e);
        }
    }

    /// <summary>examples.svg in the model folder: two held-out in-distribution scenes per question type with the model's answers.</summary>
    static string WriteExamples(ShapesTrainer trainer, MultimodalModel model, string modelDir, int seed)
    {
        var set = trainer.EvalSet(seed + 4000, false, 2);
        var answers = trainer.Answer(model, [.. set.Select(x => (x.Scene.Render(), x.Question))]);
        // Right as scored: on the scored part (a rationale model's "blue star yes" is right when the truth is "yes"), so the
        // grid and its count agree with the accuracy table; a right answer is shown whole, a wrong one with the truth.
        bool[] ok = [.. set.Select((x, i) => ShapesTask.Verdict(x.Question.Type, answers[i]) == ShapesTask.Verdict(x.Question.Type, x.Question.Answer))];
        string svg = ExampleGrid.Svg($"Shapes world (held-out scenes): the model's answers, {ok.Count(r => r)} of {set.Count} right",
            [.. set.Select(x => x.Scene.Render())], [.. set.Select(x => x.Question.Question)], answers, [.. set.Select((x, i) => ok[i] ? answers[i] : x.Question.Answer)]);
        string path = Path.Combine(modelDir, "examples.svg");
        AtomicFile.WriteAllText(path, svg);
        return path;
    }

    static void Write(ShapesReport report, string outDir, bool asJson)
    {
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.json"), JsonSerializer.Serialize(report, JsonNaming.Indented));
        var types = report.Curve.Count == 0 ? [] : report.Curve[0].Accuracy.Keys.ToList();
        var figure = new Figure("Shapes world: exact match per question type", "step", "accuracy (held-out, " + (report.Options.CurveExamples) + "/type)");
        for (int i = 0; i < types.Count; i++) figure.Measured(types[i], [.. report.Curve.Select(p => ((double)p.Step, p.Accuracy[types[i]]))], i);
        figure.Save(outDir, "accuracy-vs-steps");
        if (asJson) { Console.WriteLine(JsonSerializer.Serialize(report, JsonNaming.Indented)); return; }
        if (report.StepsRun < report.Options.Steps)
        {
            Console.WriteLine($"cancelled after step {report.StepsRun} of {report.Options.Steps} ({report.Seconds:F0}s); model and curve saved, final evaluation skipped → {outDir}");
            return;
        }
        Console.WriteLine($"trained {report.Seconds:F0}s, final loss {report.FinalLoss:F3}, {report.Parameters:N0} parameters → {outDir}");
        Console.WriteLine(Table(report.InDistribution));
        Console.WriteLine(Table(report.Compositional));
        if (report.Motion is not null) Console.WriteLine(Table(report.Motion));
        Console.WriteLine($"text: {report.TextTokens:N0} text-document tokens trained, {report.TextBitsPerByte:F4} bits/byte on held-out documents");
    }

    static string Table(SplitScore s)
        => $"{s.Split,-16} ({s.PerType}/type)  " + string.Join("  ", s.Accuracy.Select(kv => $"{kv.Key} {kv.Value.ToString("P1", CultureInfo.InvariantCulture)}"));
}
