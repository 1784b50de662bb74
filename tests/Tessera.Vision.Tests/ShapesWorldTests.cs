using Tessera.Model.Checkpoints;
using Tessera.Tensors;
using Tessera.Vision.Shapes;

namespace Tessera.Vision.Tests;

/// <summary>The shapes world's generator, splits and questions; the multimodal checkpoint round trip; a few training steps.</summary>
public class ShapesWorldTests
{
    [Fact]
    public void ScenesAreDeterministicAndDrawnWhereTheyClaim()
    {
        var a = ShapeScene.Random(new Random(5), (_, _) => true);
        var b = ShapeScene.Random(new Random(5), (_, _) => true);
        Assert.Equal(a.Shapes, b.Shapes);
        Assert.Equal(a.Render().Rgb, b.Render().Rgb);
        var img = a.Render();
        foreach (var s in a.Shapes)
        {
            var c = ShapeScene.Colours.First(k => k.Name == s.Colour);
            int o = (s.Y * ShapeScene.Size + s.X) * 3;
            Assert.Equal((c.R, c.G, c.B), (img.Rgb[o], img.Rgb[o + 1], img.Rgb[o + 2]));   // the centre carries the colour
        }
        Assert.Equal(0, img.Rgb[0]);   // a corner is background
        for (int i = 1; i < a.Shapes.Count; i++) Assert.True(a.Shapes[i - 1].X < a.Shapes[i].X);
    }

    [Fact]
    public void TrainingScenesNeverHoldAHeldOutPairAndCompositionalOnesAlwaysDo()
    {
        var t = new ShapesTrainer(new ShapesOptions { BatchSize = 64, TextFraction = 0 });
        var rng = new Random(1);
        for (int i = 0; i < 200; i++)
            Assert.DoesNotContain(ShapeScene.Random(rng, (c, k) => !ShapesTask.IsHeldOut(c, k)).Shapes, s => ShapesTask.IsHeldOut(s.Colour, s.Kind));
        foreach (var (scene, q) in t.EvalSet(7, compositional: true, perType: 10))
            Assert.Contains(scene.Shapes, s => ShapesTask.IsHeldOut(s.Colour, s.Kind));
        // Every colour and every kind still occurs in training, in other pairs.
        var seen = Enumerable.Range(0, 300).SelectMany(_ => ShapeScene.Random(rng, (c, k) => !ShapesTask.IsHeldOut(c, k)).Shapes).ToList();
        Assert.Equal(ShapeScene.Kinds.Order(), seen.Select(s => s.Kind).Distinct().Order());
        Assert.Equal(ShapeScene.Colours.Select(c => c.Name).Order(), seen.Select(s => s.Colour).Distinct().Order());
    }

    [Fact]
    public void AnswersFollowTheScene()
    {
        var rng = new Random(2);
        for (int i = 0; i < 100; i++)
        {
            var scene = ShapeScene.Random(rng, (_, _) => true);
            Assert.Equal(new[] { "one", "two", "three", "four" }[scene.Shapes.Count - 1], ShapesTask.Ask(scene, QuestionType.Count, rng)!.Answer);
            if (ShapesTask.Ask(scene, QuestionType.Position, rng) is { } pos)
            {
                var words = pos.Question.Split(' ');   // is the C1 K1 left of the C2 K2 ?
                var first = scene.Shapes.Single(s => s.Colour == words[2] && s.Kind == words[3]);
                var second = scene.Shapes.Single(s => s.Colour == words[7] && s.Kind == words[8]);
                Assert.Equal(first.X < second.X ? "yes" : "no", pos.Answer);
            }
            var caption = ShapesTask.Ask(scene, QuestionType.Caption, rng)!;
            Assert.Equal(string.Join(" and ", scene.Shapes.Select(s => s.Words)), caption.Answer);
            Assert.Equal(caption.Answer, ShapesTask.Decode(ShapesTask.Encode(caption.Answer)));
        }
    }

    /// <summary>
    /// The position label is what the image shows and what the model is given (the fifth session's bug hunt):
    /// "is A left of B" agrees with the pixel centroids of the two drawn shapes; each shape's pixels lie in
    /// the patch (Y/16, X/16) of <see cref="PatchGrid"/>'s raster order; the embedder adds row[k / G] and
    /// col[k mod G] to patch k (not transposed, not all zero); and a training batch scores the answer from
    /// the prefix's last position on and nothing before it.
    /// </summary>
    [Fact]
    public void PositionLabelsFollowThePixelsAndReachTheModelAsRealRowsAndColumns()
    {
        var config = new VisionConfig(64, 16);
        var rng = new Random(11);
        int asked = 0;
        for (int n = 0; n < 400; n++)
        {
            var scene = ShapeScene.Random(rng, (_, _) => true);
            var image = scene.Render();
            var patches = PatchGrid.Patches(image, config);
            bool Lit(int x, int y) => image.Rgb[(y * 64 + x) * 3] + image.Rgb[(y * 64 + x) * 3 + 1] + image.Rgb[(y * 64 + x) * 3 + 2] > 0;
            int litInImage = 0, litInPatches = 0;
            for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) if (Lit(x, y)) litInImage++;
            var centroid = new Dictionary<Shape, double>();
            foreach (var s in scene.Shapes)
            {
                // The shape's own patch (Y/16, X/16) holds it; its lit pixels' mean x is its centroid.
                double sx = 0; int lit = 0;
                for (int y = s.Y / 16 * 16; y < s.Y / 16 * 16 + 16; y++)
                    for (int x = s.X / 16 * 16; x < s.X / 16 * 16 + 16; x++)
                        if (Lit(x, y)) { sx += x; lit++; }
                Assert.True(lit > 10, $"{s.Words}: {lit} lit pixels in its patch");
                litInPatches += lit;
                centroid[s] = sx / lit;
                int k = s.Y / 16 * 4 + s.X / 16;
                Assert.True(patches.AsSpan(k * config.PatchValues, config.PatchValues).ToArray().Sum() > 10, $"patch {k} of {s.Words} is dark");
            }
            Assert.Equal(litInImage, litInPatches);   // nothing drawn outside the shapes' patches (distinct columns: one shape per patch)
            if (ShapesTask.Ask(scene, QuestionType.Position, rng) is not { } q) continue;
            asked++;
            var w = q.Question.Split(' ');   // is the C1 K1 left of the C2 K2 ?
            var a = scene.Shapes.Single(s => s.Colour == w[2] && s.Kind == w[3]);
            var b = scene.Shapes.Single(s => s.Colour == w[7] && s.Kind == w[8]);
            Assert.Equal(centroid[a] < centroid[b] ? "yes" : "no", q.Answer);
        }
        Assert.True(asked > 200, $"{asked} position questions");

        // A black image isolates the position part of every patch's vector: b + row[k / 4] + col[k mod 4].
        using var e = new PatchEmbedder(config, 16, 3);
        var v = e.Embed(new float[config.TokensPerImage * config.PatchValues]);
        float[] row = e.Parameters[PatchEmbedder.RowName].ToArray(), col = e.Parameters[PatchEmbedder.ColName].ToArray(), bias = e.Parameters[PatchEmbedder.BiasName].ToArray();
        Assert.NotEqual(row[..16], row[16..32]);   // distinct rows, so a transposed or constant id would change v
        Assert.NotEqual(col[..16], col[16..32]);
        for (int k = 0; k < 16; k++)
            for (int d = 0; d < 16; d++)
                Assert.Equal(bias[d] + row[k / 4 * 16 + d] + col[k % 4 * 16 + d], v[k * 16 + d], 6);

        var t = new ShapesTrainer(new ShapesOptions { BatchSize = 64, TextFraction = 0, PositionFraction = 1 });
        var batch = t.TrainBatch(new Random(4));
        for (int i = 0; i < batch.B; i++)
        {
            var ids = batch.Ids.AsSpan(i * batch.T, batch.T).ToArray();
            var targets = batch.Targets.AsSpan(i * batch.T, batch.T).ToArray();
            int p = batch.Prefix[i];
            Assert.Equal(ShapesTask.Encode("answer :"), ids[(p - 2)..p]);
            Assert.All(targets[..(p - 1)], x => Assert.Equal(-100, x));
            Assert.Contains(ShapesTask.Decode([targets[p - 1]]), (string[])["yes", "no"]);
            Assert.Equal(ShapesTask.Eos, targets[p]);
        }
    }

    /// <summary>
    /// --position-rationale: the position answer names the left one of the pair, then the same yes/no as the
    /// plain answer (same draws, same question); scoring takes the yes/no of a rationale and the plain answer as is;
    /// a training batch then scores colour, kind, yes/no and EOS.
    /// </summary>
    [Fact]
    public void PositionRationaleNamesTheLeftShapeThenTheSameVerdict()
    {
        var rng = new Random(3);
        int asked = 0;
        for (int i = 0; i < 200; i++)
        {
            var scene = ShapeScene.Random(rng, (_, _) => true);
            int seed = rng.Next();
            var plain = ShapesTask.Ask(scene, QuestionType.Position, new Random(seed));
            var withWhy = ShapesTask.Ask(scene, QuestionType.Position, new Random(seed), rationale: true);
            if (plain is null) { Assert.Null(withWhy); continue; }
            asked++;
            Assert.Equal(plain.Question, withWhy!.Question);
            var w = plain.Question.Split(' ');   // is the C1 K1 left of the C2 K2 ?
            var a = scene.Shapes.Single(s => s.Colour == w[2] && s.Kind == w[3]);
            var b = scene.Shapes.Single(s => s.Colour == w[7] && s.Kind == w[8]);
            var left = a.X < b.X ? a : b;
            Assert.Equal($"{left.Colour} {left.Kind} {plain.Answer}", withWhy.Answer);
            Assert.Equal(plain.Answer, ShapesTask.PositionVerdict(withWhy.Answer));
            Assert.Equal(plain.Answer, ShapesTask.PositionVerdict(plain.Answer));
        }
        Assert.True(asked > 100);
        Assert.Equal("yes no", ShapesTask.PositionVerdict("yes no"));           // not a rationale: judged as it is
        Assert.Equal("red left yes", ShapesTask.PositionVerdict("red left yes"));

        var t = new ShapesTrainer(new ShapesOptions { BatchSize = 32, TextFraction = 0, PositionFraction = 1, PositionRationale = true });
        var batch = t.TrainBatch(new Random(8));
        for (int i = 0; i < batch.B; i++)
        {
            var targets = batch.Targets.AsSpan(i * batch.T, batch.T).ToArray();
            int p = batch.Prefix[i];
            string said = ShapesTask.Decode(targets[(p - 1)..(p + 2)]);
            Assert.Equal(said, $"{said.Split(' ')[0]} {said.Split(' ')[1]} {ShapesTask.PositionVerdict(said)}");
            Assert.Contains(ShapesTask.PositionVerdict(said), (string[])["yes", "no"]);
            Assert.Equal(ShapesTask.Eos, targets[p + 2]);
        }
    }

    [Fact]
    public void CheckpointRoundTripsWithHfNamesAndSaysHowImagesAreTokenized()
    {
        var t = new ShapesTrainer(new ShapesOptions { Dim = 32, Layers = 1, Heads = 2 });
        using var model = t.NewModel();
        string dir = Path.Combine(Path.GetTempPath(), "tessera-vision-" + Guid.NewGuid().ToString("N"));
        try
        {
            MultimodalCheckpoint.Save(model, dir);
            Assert.True(MultimodalCheckpoint.IsMultimodal(dir));
            var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
            Assert.Equal(16, config["vision_config"]!["tokens_per_image"]!.GetValue<int>());
            Assert.Equal("llama", config["model_type"]!.GetValue<string>());
            using var back = MultimodalCheckpoint.Load(dir);
            foreach (var (p, q) in model.AllParameters.Zip(back.AllParameters))
            {
                Assert.Equal(p.Name, q.Name);
                Assert.Equal(p.ToArray(), q.ToArray());
            }
            Assert.Contains(back.Embedder.Parameters.All, p => p.Name == "vision_embed_tokens.weight");
            using var textOnly = HfFolder.Load(dir);   // a text-only loader reads the decoder alone
            Assert.Equal(model.Decoder.Parameters.Count, textOnly.Parameters.Count);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>A few optimiser steps on the image–text mixture lower the loss on a fixed batch (the embedder trains end to end).</summary>
    [Fact]
    public void TrainingStepsLowerTheLossAndMoveTheEmbedder()
    {
        var options = new ShapesOptions { Dim = 48, Layers = 2, Heads = 2, BatchSize = 8, TextFraction = 0.25 };
        var t = new ShapesTrainer(options);
        using var model = t.NewModel();
        var batch = t.TrainBatch(new Random(3));
        var w0 = model.Embedder.Parameters[PatchEmbedder.WeightName].ToArray();
        var (first, last) = TrainOnOneBatch(model, batch, frames: null);
        Assert.True(last < 0.7 * first, $"loss {first:F3} → {last:F3} after 12 steps on one batch");
        Assert.NotEqual(w0, model.Embedder.Parameters[PatchEmbedder.WeightName].ToArray());
    }

    /// <summary>A cancelled run (SIGTERM in the CLI) stops after the current step and skips the final evaluation.</summary>
    [Fact]
    public void TrainingStopsWhenCancelled()
    {
        var t = new ShapesTrainer(new ShapesOptions { Dim = 32, Layers = 1, Heads = 2, BatchSize = 4, Steps = 100_000, EvalEvery = 1, CurveExamples = 1 });
        using var model = t.NewModel();
        using var cancel = new CancellationTokenSource();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var report = t.Train(model, p => { if (p.Step == 3) cancel.Cancel(); }, cancel.Token);
        Assert.Equal(3, report.StepsRun);
        Assert.Equal([1, 2, 3], report.Curve.Select(p => p.Step));
        Assert.Empty(report.InDistribution.Accuracy);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"cancelled run took {clock.Elapsed}");
    }

    /// <summary>
    /// --ema: the saved model is the moving average of the trained weights, s ← s + (w − s)·max(1 − D, 10/(10 + step)) from
    /// the initial weights, and the averaging (with its swaps in and out for the curve evaluations) leaves the trained
    /// trajectory bit for bit as without it.
    /// </summary>
    [Fact]
    public void WeightAverageFollowsTheTrainedWeightsAndLeavesTheirTrajectoryAlone()
    {
        var plain = new ShapesOptions { Dim = 32, Layers = 1, Heads = 2, BatchSize = 4, Steps = 3, EvalEvery = 1, CurveExamples = 1, EvalExamples = 1 };
        List<float[][]> Run(ShapesOptions o, out float[][] initial, out float[][] saved)
        {
            var t = new ShapesTrainer(o);
            using var model = t.NewModel();
            initial = [.. model.AllParameters.Select(p => p.ToArray())];
            var seen = new List<float[][]>();
            t.Train(model, _ => seen.Add([.. model.AllParameters.Select(p => p.ToArray())]));
            saved = [.. model.AllParameters.Select(p => p.ToArray())];
            return seen;
        }
        var trained = Run(plain, out var w0, out var plainSaved);
        var withEma = Run(plain with { Ema = 0.1 }, out var w0Ema, out var averaged);
        Assert.Equal(3, trained.Count);
        Assert.Equal(w0, w0Ema);
        for (int step = 0; step < 3; step++)
            for (int i = 0; i < w0.Length; i++) Assert.Equal(trained[step][i], withEma[step][i]);   // the trajectory, bit for bit
        Assert.Equal(0.9, ShapesTrainer.EmaRate(0.1, 2), 12);                  // 1 − D once it is the larger
        Assert.Equal(10.0 / 11, ShapesTrainer.EmaRate(0.1, 1), 12);            // 10/(10 + step) early on
        double worst = 0;
        for (int i = 0; i < w0.Length; i++)
        {
            var s = w0[i].Select(v => (double)v).ToArray();
            for (int step = 1; step <= 3; step++)
            {
                double r = ShapesTrainer.EmaRate(0.1, step);
                for (int j = 0; j < s.Length; j++) s[j] += (trained[step - 1][i][j] - s[j]) * r;
            }
            for (int j = 0; j < s.Length; j++) worst = Math.Max(worst, Math.Abs(s[j] - averaged[i][j]));
        }
        Assert.True(worst < 1e-6, $"average off by {worst:E2}");                 // three float lerps of values below 1: rounding ~1e-7
        Assert.NotEqual(plainSaved[0], averaged[0]);                             // and it is not simply the last weights
        Assert.Throws<ArgumentException>(() => { var t = new ShapesTrainer(plain with { Ema = 1 }); using var m = t.NewModel(); t.Train(m); });
    }

    /// <summary>
    /// --position-minimal-pairs: Ask with a pair rule names two shapes that satisfy it, answers from their x as without it, and
    /// finds nothing when the scene has no such pair (and, as drawn, when the first shape it picks has no partner); in training batches with the flag at 1 every position question is
    /// about two shapes of one colour or of one kind, about half each.
    /// </summary>
    [Fact]
    public void MinimalPairPositionQuestionsNameTwoShapesThatShareAColourOrAKind()
    {
        var rng = new Random(17);
        int asked = 0, none = 0;
        for (int i = 0; i < 3000; i++)
        {
            var scene = ShapeScene.Random(rng, (_, _) => true);
            var named = scene.Shapes.Where(a => scene.Shapes.Count(b => b.Colour == a.Colour && b.Kind == a.Kind) == 1).ToList();
            bool any = named.Any(a => named.Any(b => b != a && b.Colour == a.Colour));
            var q = ShapesTask.Ask(scene, QuestionType.Position, rng, rationale: true, pair: (a, b) => a.Colour == b.Colour);
            if (q is null) { none++; continue; }
            Assert.True(any);
            var w = q.Question.Split(' ');   // is the C K left of the C K ?
            var first = scene.Shapes.Single(s => s.Colour == w[2] && s.Kind == w[3]);
            var second = scene.Shapes.Single(s => s.Colour == w[7] && s.Kind == w[8]);
            Assert.Equal(first.Colour, second.Colour);
            var left = first.X < second.X ? first : second;
            Assert.Equal($"{left.Colour} {left.Kind} {(first.X < second.X ? "yes" : "no")}", q.Answer);
            asked++;
        }
        Assert.True(asked > 300 && none > 300, $"{asked} asked, {none} scenes without a question");

        var trainer = new ShapesTrainer(new ShapesOptions { BatchSize = 64, TextFraction = 0, PositionFraction = 1, PositionMinimalPairs = 1, PositionRationale = true });
        int colour = 0, kind = 0;
        var batchRng = new Random(3);
        for (int i = 0; i < 4; i++)
        {
            var b = trainer.TrainBatch(batchRng);
            for (int r = 0; r < b.B; r++)
            {
                var w = ShapesTask.Decode(b.Ids.Skip(r * b.T).Take(b.T)).Split(' ');
                int at = Array.IndexOf(w, "is");
                Assert.Equal(["is", "the"], w[at..(at + 2)]);
                Assert.Equal("left", w[at + 4]);
                bool sameColour = w[at + 2] == w[at + 7], sameKind = w[at + 3] == w[at + 8];
                Assert.True(sameColour || sameKind, string.Join(' ', w));
                if (sameColour) colour++; else kind++;
            }
        }
        Assert.InRange(colour, 96, 160);   // 256 questions, half of each rule (a binomial sd of 8)
        Assert.True(kind > 90, $"{kind} same-kind pairs");
        Assert.Throws<ArgumentException>(() => { var t = new ShapesTrainer(new ShapesOptions { PositionMinimalPairs = 1.5 }); using var m = t.NewModel(); t.Train(m); });
    }

    /// <summary>The position ramp adds A·(2i/(G−1) − 1)·u to row/column i: the difference from the plain init is one direction, scaled −1, −1/3, 1/3, 1.</summary>
    [Fact]
    public void PositionRampIsOneLinearDirectionPerAxis()
    {
        var plain = new ShapesTrainer(new ShapesOptions { Dim = 32, Layers = 1, Heads = 2 });
        var ramp = new ShapesTrainer(new ShapesOptions { Dim = 32, Layers = 1, Heads = 2, PositionRamp = 0.5f });
        using var a = plain.NewModel();
        using var b = ramp.NewModel();
        foreach (string name in (string[])[PatchEmbedder.RowName, PatchEmbedder.ColName])
        {
            var x = a.Embedder.Parameters[name].ToArray(); var y = b.Embedder.Parameters[name].ToArray();
            AssertLinearRamp(y.Select((v, i) => v - x[i]).ToArray());
        }
        Assert.Equal(a.Decoder.Parameters.All.Select(p => p.ToArray()), b.Decoder.Parameters.All.Select(p => p.ToArray()));
    }

    /// <summary>
    /// <paramref name="d"/> (4 rows of 32: a table after a ramp of amplitude 0.5 minus the same table without it) is one
    /// direction scaled −1, −1/3, 1/3, 1 over its rows, with the last row 0.5 · a unit-RMS direction (32 normal draws).
    /// </summary>
    static void AssertLinearRamp(float[] d)
    {
        var last = d[96..128];
        double rms = Math.Sqrt(last.Sum(v => (double)v * v) / 32);
        Assert.InRange(rms, 0.25, 1.0);
        for (int t = 0; t < 4; t++)
            for (int j = 0; j < 32; j++)
                Assert.Equal(last[j] * (2.0 * t / 3 - 1), d[t * 32 + j], 5);
    }

    /// <summary>The frame ramp adds A·(2t/(N−1) − 1)·u to frame t: one direction, scaled −1, −1/3, 1/3, 1 over 4 frames; nothing else moves.</summary>
    [Fact]
    public void FrameRampIsOneLinearDirectionOverTheFrames()
    {
        var o = new ShapesOptions { Dim = 32, Layers = 1, Heads = 2, MotionFraction = 0.25, PositionRamp = 0.5f };
        using var a = new ShapesTrainer(o).NewModel();
        using var b = new ShapesTrainer(o with { FrameRamp = 0.5f }).NewModel();
        var x = a.Embedder.Parameters[PatchEmbedder.FrameName].ToArray(); var y = b.Embedder.Parameters[PatchEmbedder.FrameName].ToArray();
        AssertLinearRamp(y.Select((v, i) => v - x[i]).ToArray());
        foreach (string name in (string[])[PatchEmbedder.WeightName, PatchEmbedder.BiasName, PatchEmbedder.RowName, PatchEmbedder.ColName])
            Assert.Equal(a.Embedder.Parameters[name].ToArray(), b.Embedder.Parameters[name].ToArray());   // the row/column ramp included
        Assert.Equal(a.Decoder.Parameters.All.Select(p => p.ToArray()), b.Decoder.Parameters.All.Select(p => p.ToArray()));
        // Off by default; a still model has no frame table and the flag leaves it alone.
        Assert.Equal(0f, new ShapesOptions().FrameRamp);
        using var still = new ShapesTrainer(new ShapesOptions { Dim = 32, Layers = 1, Heads = 2, FrameRamp = 0.5f }).NewModel();
        Assert.False(still.Embedder.Parameters.Contains(PatchEmbedder.FrameName));
    }

    /// <summary>--position-fraction F makes about F of the still questions relative-position ones (plus their share of the rest).</summary>
    [Fact]
    public void PositionFractionSetsTheShareOfPositionQuestions()
    {
        var t = new ShapesTrainer(new ShapesOptions { BatchSize = 400, TextFraction = 0, PositionFraction = 0.5 });
        var batch = t.TrainBatch(new Random(5));
        int left = ShapesTask.Encode("left")[0], rows = 0;
        for (int b = 0; b < batch.B; b++) if (batch.Ids.AsSpan(b * batch.T, batch.T).Contains(left)) rows++;
        Assert.InRange(rows / 400.0, 0.5, 0.7);   // 0.5 + 0.5 · (about 1/6, fewer where a scene has one shape)
        // In a curriculum's one-shape stage no position question can be asked: the batch still comes (it used to loop forever).
        var oneShape = t.TrainBatch(new Random(6), maxShapes: 1);
        for (int b = 0; b < oneShape.B; b++) Assert.False(oneShape.Ids.AsSpan(b * oneShape.T, oneShape.T).Contains(left));
    }

    /// <summary>Twelve AdamW steps (lr 3e-3) on one fixed batch; the first and the last loss.</summary>
    internal static (double First, double Last) TrainOnOneBatch(MultimodalModel model, ShapesTrainer.Batch batch, IReadOnlyList<int>? frames)
    {
        using var opt = new AdamW(model.AllParameters, 3e-3f);
        double first = 0, last = 0;
        for (int step = 0; step < 12; step++)
        {
            using var g = new Graph();
            var r = model.Forward(g, batch.Ids, batch.B, batch.T, batch.Patches, batch.Prefix, batch.Targets, frames);
            if (step == 0) first = r.Loss!.Item();
            last = r.Loss!.Item();
            g.Backward(r.Loss!);
            opt.Step();
            opt.ZeroGrad();
        }
        return (first, last);
    }
}
