using System.Diagnostics;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Vision.Shapes;

/// <summary>Settings of a shapes-world run (flag, default and meaning on one line each).</summary>
public sealed record ShapesOptions
{
    /// <summary>Optimiser steps.</summary>
    public int Steps { get; init; } = 600;
    /// <summary>Sequences per step.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Peak learning rate (linear warmup over 5% of the steps, cosine to 10%).</summary>
    public float LearningRate { get; init; } = 3e-3f;
    /// <summary>Fraction of the stream that is text-only documents (the mixture flag).</summary>
    public double TextFraction { get; init; } = 0.1;
    /// <summary>Prefix-LM (bidirectional over image + question); false: every sequence causal.</summary>
    public bool PrefixLm { get; init; } = true;
    /// <summary>Model width (llama recipe).</summary>
    public int Dim { get; init; } = 128;
    /// <summary>Layers.</summary>
    public int Layers { get; init; } = 4;
    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Seed of the weights and of the data stream.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Evaluate every this many steps (0: only at the end) on <see cref="CurveExamples"/> questions per type.</summary>
    public int EvalEvery { get; init; } = 100;
    /// <summary>Questions per type for the curve evaluations.</summary>
    public int CurveExamples { get; init; } = 32;
    /// <summary>Questions per type (and captions) for the final evaluation, per split.</summary>
    public int EvalExamples { get; init; } = 200;
    /// <summary>Image geometry: 64×64 in 16×16 patches (one grid cell, so one shape, per patch).</summary>
    public VisionConfig Vision { get; init; } = new(ImageSize: 64, PatchSize: 16);
}

/// <summary>Per-type exact-match accuracy on one split.</summary>
public sealed record SplitScore(string Split, IReadOnlyDictionary<string, double> Accuracy, int PerType);

/// <summary>A point of the training curve.</summary>
public sealed record CurvePoint(int Step, double Loss, double Seconds, IReadOnlyDictionary<string, double> Accuracy);

/// <summary>Everything a run measured.</summary>
public sealed record ShapesReport(ShapesOptions Options, long Parameters, double Seconds, double FinalLoss,
    IReadOnlyList<CurvePoint> Curve, SplitScore InDistribution, SplitScore Compositional);

/// <summary>
/// Trains a <see cref="MultimodalModel"/> on the shapes world (images and questions mixed with
/// text-only documents) and evaluates exact-match answers per question type on held-out
/// in-distribution scenes and on the compositional split. The data stream, weights and evaluation
/// sets are functions of the seed.
/// </summary>
public sealed class ShapesTrainer(ShapesOptions options)
{
    /// <summary>The settings.</summary>
    public ShapesOptions Options { get; } = options;

    /// <summary>The decoder config the options describe.</summary>
    public ModelConfig DecoderConfig => new ModelConfig
    {
        VocabSize = ShapesTask.Words.Length, Dim = Options.Dim, Layers = Options.Layers, Heads = Options.Heads, KvHeads = Options.Heads,
        HiddenDim = Options.Dim * 3, ContextLength = 96, TiedEmbeddings = true,
    }.Validate();

    /// <summary>A fresh model for these options.</summary>
    public MultimodalModel NewModel() => new(new Transformer(DecoderConfig, (ulong)Options.Seed), new PatchEmbedder(Options.Vision with { PrefixLm = Options.PrefixLm }, Options.Dim, (ulong)Options.Seed + 1));

    /// <summary>Trains <paramref name="model"/>; <paramref name="progress"/> gets each curve point.</summary>
    public ShapesReport Train(MultimodalModel model, Action<CurvePoint>? progress = null)
    {
        var o = Options;
        var rng = new Random(o.Seed);
        var parameters = model.AllParameters;
        var decays = new HashSet<Tensor>(model.Decoder.Parameters.All.Where(model.Decoder.Parameters.Decays));
        decays.Add(model.Embedder.Parameters[PatchEmbedder.WeightName]);
        using var opt = new AdamW(parameters, o.LearningRate, 0.9f, 0.95f, 1e-8f, 0.05f, decays.Contains);
        var curve = new List<CurvePoint>();
        var curveSet = EvalSet(o.Seed + 1000, compositional: false, o.CurveExamples);
        var clock = Stopwatch.StartNew();
        double smooth = double.NaN;
        int warm = Math.Max(1, o.Steps / 20);
        for (int step = 1; step <= o.Steps; step++)
        {
            double lr = step <= warm ? o.LearningRate * step / warm
                : o.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, o.Steps - warm))));
            opt.LearningRate = (float)lr;
            var batch = TrainBatch(rng);
            using (var g = new Graph())
            {
                var r = model.Forward(g, batch.Ids, batch.B, batch.T, batch.Patches, batch.Prefix, batch.Targets);
                double loss = r.Loss!.Item();
                smooth = double.IsNaN(smooth) ? loss : 0.95 * smooth + 0.05 * loss;
                g.Backward(r.Loss!);
            }
            GradClip.ClipGlobalNorm(parameters, 1.0);
            opt.Step();
            opt.ZeroGrad();
            if ((o.EvalEvery > 0 && step % o.EvalEvery == 0) || step == o.Steps)
            {
                var point = new CurvePoint(step, smooth, clock.Elapsed.TotalSeconds, Evaluate(model, curveSet).Accuracy);
                curve.Add(point);
                progress?.Invoke(point);
            }
        }
        double trained = clock.Elapsed.TotalSeconds;
        var inDist = Evaluate(model, EvalSet(o.Seed + 2000, compositional: false, o.EvalExamples), "in-distribution");
        var comp = Evaluate(model, EvalSet(o.Seed + 3000, compositional: true, o.EvalExamples), "compositional");
        return new ShapesReport(o, model.Decoder.Parameters.ElementCount + model.Embedder.Parameters.ElementCount, trained, smooth, curve, inDist, comp);
    }

    /// <summary>A padded training batch: image questions (train split) mixed with text-only documents.</summary>
    internal Batch TrainBatch(Random rng)
    {
        var seqs = new List<(int[] Ids, int[] Targets, int Prefix, float[] Patches)>();
        for (int i = 0; i < Options.BatchSize; i++)
        {
            if (rng.NextDouble() < Options.TextFraction)
            {
                var scene = ShapeScene.Random(rng, (c, k) => !ShapesTask.IsHeldOut(c, k));
                var ids = new[] { ShapesTask.Bos }.Concat(ShapesTask.Encode(ShapesTask.Describe(scene, rng))).Append(ShapesTask.Eos).ToArray();
                seqs.Add((ids[..^1], ids[1..], 0, []));
                continue;
            }
            var (s, q) = Question(rng, compositional: false, type: null);
            var (prompt, prefix, answer) = ShapesTask.Encode(q, Options.Vision);
            var full = prompt.Concat(answer).ToArray();
            var targets = new int[full.Length - 1];
            for (int t = 0; t < targets.Length; t++) targets[t] = t >= prefix - 1 ? full[t + 1] : -100;
            seqs.Add((full[..^1], targets, Options.PrefixLm ? prefix : 0, PatchGrid.Patches(s.Render(), Options.Vision)));
        }
        return Pack(seqs);
    }

    internal sealed record Batch(int[] Ids, int[] Targets, int[] Prefix, float[] Patches, int B, int T);

    static Batch Pack(List<(int[] Ids, int[] Targets, int Prefix, float[] Patches)> seqs)
    {
        int b = seqs.Count, t = seqs.Max(s => s.Ids.Length);
        var ids = new int[b * t]; var tg = new int[b * t]; var prefix = new int[b];
        Array.Fill(tg, -100);
        var patches = new List<float>();
        for (int i = 0; i < b; i++)
        {
            seqs[i].Ids.CopyTo(ids, i * t);          // padding (id 0) after the sequence: causal, so it changes nothing before it
            seqs[i].Targets.CopyTo(tg, i * t);
            prefix[i] = seqs[i].Prefix;
            patches.AddRange(seqs[i].Patches);
        }
        return new Batch(ids, tg, prefix, [.. patches], b, t);
    }

    /// <summary>A scene of the split and a question of <paramref name="type"/> (random when null) about it.</summary>
    (ShapeScene Scene, ShapeQuestion Question) Question(Random rng, bool compositional, QuestionType? type)
    {
        while (true)
        {
            var scene = compositional
                ? ShapeScene.Random(rng, (_, _) => true, ShapesTask.IsHeldOut)
                : ShapeScene.Random(rng, (c, k) => !ShapesTask.IsHeldOut(c, k));
            var t = type ?? (QuestionType)rng.Next(6);
            var q = ShapesTask.Ask(scene, t, rng, compositional ? s => ShapesTask.IsHeldOut(s.Colour, s.Kind) : null);
            if (q is not null) return (scene, q);
        }
    }

    /// <summary>Evaluation questions: <paramref name="perType"/> of each type on fresh scenes of the split.</summary>
    public IReadOnlyList<(ShapeScene Scene, ShapeQuestion Question)> EvalSet(int seed, bool compositional, int perType)
    {
        var rng = new Random(seed);
        var set = new List<(ShapeScene, ShapeQuestion)>();
        foreach (var type in Enum.GetValues<QuestionType>())
            for (int i = 0; i < perType; i++) set.Add(Question(rng, compositional, type));
        return set;
    }

    /// <summary>Exact-match accuracy per question type (captions: the whole caption) by greedy decoding.</summary>
    public SplitScore Evaluate(MultimodalModel model, IReadOnlyList<(ShapeScene Scene, ShapeQuestion Question)> set, string split = "curve")
    {
        var answers = Answer(model, set.Select(x => (x.Scene.Render(), x.Question)).ToList());
        var acc = new Dictionary<string, double>();
        foreach (var group in set.Select((x, i) => (x.Question, Got: answers[i])).GroupBy(x => x.Question.Type))
            acc[group.Key.ToString().ToLowerInvariant()] = group.Average(x => x.Got == x.Question.Answer ? 1.0 : 0.0);
        return new SplitScore(split, acc, set.Count / Math.Max(1, acc.Count));
    }

    /// <summary>Greedy answers (words) to questions about images, 32 at a time, up to 20 tokens each.</summary>
    public IReadOnlyList<string> Answer(MultimodalModel model, IReadOnlyList<(RgbImage Image, ShapeQuestion Question)> items)
    {
        var result = new string[items.Count];
        for (int start = 0; start < items.Count; start += 32)
        {
            int n = Math.Min(32, items.Count - start);
            var prompts = new List<int>[n]; var prefixes = new int[n]; var done = new bool[n];
            var patches = new List<float>();
            for (int i = 0; i < n; i++)
            {
                var (prompt, prefix, _) = ShapesTask.Encode(items[start + i].Question, Options.Vision);
                prompts[i] = [.. prompt]; prefixes[i] = Options.PrefixLm ? prefix : 0;
                patches.AddRange(PatchGrid.Patches(items[start + i].Image, Options.Vision));
            }
            var allPatches = patches.ToArray();
            var generated = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
            for (int k = 0; k < 20 && done.Any(d => !d); k++)
            {
                int t = prompts.Max(p => p.Count);
                var ids = new int[n * t];
                for (int i = 0; i < n; i++) prompts[i].CopyTo(ids, i * t);
                using var g = new Graph(recordGradients: false);
                var logits = model.Forward(g, ids, n, t, allPatches, prefixes).Logits.AsSpan("Answer");   // (n·t, V)
                int v = model.Decoder.Config.VocabSize;
                for (int i = 0; i < n; i++)
                {
                    if (done[i]) continue;
                    var row = logits.Slice((i * t + prompts[i].Count - 1) * v, v);
                    int best = 0;
                    for (int j = 1; j < v; j++) if (row[j] > row[best]) best = j;
                    if (best == ShapesTask.Eos || prompts[i].Count >= model.Decoder.Config.ContextLength) done[i] = true;
                    else { generated[i].Add(best); prompts[i].Add(best); }
                }
            }
            for (int i = 0; i < n; i++) result[start + i] = ShapesTask.Decode(generated[i]);
        }
        return result;
    }
}
