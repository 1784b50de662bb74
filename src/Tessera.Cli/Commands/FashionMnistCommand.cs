using System.Globalization;
using System.Text.Json;
using Tessera.Kernels.IO;
using Tessera.Training.Experiments;
using Tessera.Vision;
using Tessera.Vision.FashionMnist;

namespace Tessera.Cli.Commands;

/// <summary>
/// `tessera train --data fashion-mnist`: the multimodal model learns "&lt;|image|&gt; what is this ? → label"
/// on Fashion-MNIST (Debian package dataset-fashion-mnist) and is scored on the 10,000 test images by
/// the log-likelihood of the ten class names; a linear probe on raw pixels is trained in the same run
/// as the floor. The run folder gets the model, report.json and accuracy-vs-steps.svg.
/// </summary>
internal static class FashionMnistCommand
{
    /// <summary>The `--quick` recipe (≤ 5 min on 2 cores) and the defaults of the full one.</summary>
    public static FashionMnistOptions Recipe(bool quick, int? steps, int? batch, float? lr, int? dim, int? layers, ulong seed) => new()
    {
        Steps = steps ?? (quick ? 400 : 4000), BatchSize = batch ?? 64, LearningRate = lr ?? 2e-3f, Dim = dim ?? 96, Layers = layers ?? 3,
        Seed = (int)(seed % int.MaxValue), EvalEvery = quick ? 100 : 250, Validation = quick ? 1000 : 5000, TestImages = quick ? 2000 : 10_000, ProbeEpochs = quick ? 3 : 10,
    };

    public static int Train(FashionMnistOptions options, string outDir, bool asJson)
    {
        if (!FashionMnistData.IsAvailable()) throw new FileNotFoundException(FashionMnistData.MissingMessage());
        var train = FashionMnistData.Train();
        var test = FashionMnistData.Test();
        var trainer = new FashionMnistTrainer(options);
        using var model = trainer.NewModel();
        if (!asJson) Console.Error.WriteLine($"fashion-mnist: {options.Steps} steps × {options.BatchSize}, {options.Vision.TokensPerImage} patches of {options.PatchSize}×{options.PatchSize}, " +
            $"{model.Decoder.Parameters.ElementCount + model.Embedder.Parameters.ElementCount:N0} parameters");
        var report = trainer.Run(model, train, test,
            p => { if (!asJson) Console.Error.WriteLine($"step {p.Step,5}  loss {p.Loss:F3}  {p.Seconds,6:F0}s  validation {p.Accuracy:P1}"); },
            line => { if (!asJson) Console.Error.WriteLine(line); });
        MultimodalCheckpoint.Save(model, outDir);
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.json"), JsonSerializer.Serialize(report, JsonNaming.Indented));
        AtomicFile.WriteAllText(Path.Combine(outDir, "accuracy-vs-steps.svg"), SvgPlot.Lines("Fashion-MNIST by prompting", "step", "accuracy (validation images)",
            [("model", [.. report.Curve.Select(p => ((double)p.Step, p.Accuracy))]), ("linear probe (test, end)", [.. report.Curve.Select(p => ((double)p.Step, report.ProbeTestAccuracy))])]));
        if (asJson) Console.WriteLine(JsonSerializer.Serialize(report, JsonNaming.Indented));
        else Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"trained {report.Seconds:F0}s → {outDir}\ntest accuracy by prompting: {report.TestAccuracy:P2} ({report.TestImages} images); linear probe on raw pixels: {report.ProbeTestAccuracy:P2} ({report.ProbeSeconds:F0}s)"));
        return 0;
    }

    /// <summary>True for a multimodal folder with the Fashion-MNIST task's vocabulary and 28×28 grey images.</summary>
    public static bool IsFashionModel(string dir)
    {
        if (!Directory.Exists(dir) || !MultimodalCheckpoint.IsMultimodal(dir)) return false;
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        return node["vocab_size"]?.GetValue<int>() == FashionMnistTrainer.Words.Length && VisionConfig.FromJson(node["vision_config"]!) is { ImageSize: 28, Channels: 1 };
    }

    /// <summary>
    /// `tessera eval --model RUN` for a Fashion-MNIST model: test accuracy by prompting on the first
    /// <paramref name="testImages"/> test images, and examples.svg (8 test images with the model's answers) in the folder.
    /// </summary>
    public static int Eval(string dir, int testImages, bool asJson)
    {
        if (!FashionMnistData.IsAvailable()) throw new FileNotFoundException(FashionMnistData.MissingMessage());
        using var model = MultimodalCheckpoint.Load(dir);
        var c = model.Decoder.Config;
        var trainer = new FashionMnistTrainer(new FashionMnistOptions { Dim = c.Dim, Layers = c.Layers, Heads = c.Heads, PatchSize = model.Embedder.Config.PatchSize });
        var test = FashionMnistData.Test();
        int n = Math.Min(testImages, test.Count);
        var indices = Enumerable.Range(0, n).ToArray();
        var predicted = trainer.Predict(model, test, indices);
        double accuracy = predicted.Where((p, i) => p == test.Labels[i]).Count() / (double)Math.Max(1, n);
        // Examples: 8 test images spread over the split (0, 1250, 2500, …), in a 4×2 grid.
        var shown = Enumerable.Range(0, 8).Select(k => k * (n / 8)).ToList();
        string svg = ExampleGrid.Svg($"Fashion-MNIST test images: the model's answer to \"what is this ?\" ({accuracy:P1} on {n})",
            [.. shown.Select(i => test.Image(i).ToArray())], FashionMnistSplit.Side,
            [.. shown.Select(i => FashionMnistData.Classes[predicted[i]])], [.. shown.Select(i => FashionMnistData.Classes[test.Labels[i]])]);
        AtomicFile.WriteAllText(Path.Combine(dir, "examples.svg"), svg);
        if (asJson) Console.WriteLine(JsonSerializer.Serialize(new { test_accuracy = accuracy, test_images = n, examples = Path.Combine(dir, "examples.svg") }, JsonNaming.Indented));
        else Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test accuracy by prompting: {accuracy:P2} ({n} images); examples → {Path.Combine(dir, "examples.svg")}"));
        return 0;
    }
}
