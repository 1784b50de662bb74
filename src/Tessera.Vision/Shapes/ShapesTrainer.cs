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
    /// <summary>
    /// Curriculum: training scenes hold at most <see cref="CurriculumStart"/> shapes at step 1, rising
    /// linearly to 4 at this step (0: no curriculum, 1–4 shapes throughout). Evaluation is always on 1–4.
    /// </summary>
    public int CurriculumSteps { get; init; }
    /// <summary>Most shapes per training scene at the start of the curriculum.</summary>
    public int CurriculumStart { get; init; } = 1;
    /// <summary>Fraction of the batches whose image examples are clips of moving shapes with direction and order questions (0: stills only).</summary>
    public double MotionFraction { get; init; }
    /// <summary>Frames per clip (2–8); the model gets a frame embedding of this many rows.</summary>
    public int MotionFrames { get; init; } = 4;
    /// <summary>
    /// Pixels each shape of a clip moves over the clip (<see cref="MotionClip.Travel"/> = 16, one patch, by default: the
    /// harder setting; up to <see cref="MotionClip.MaxTravel"/> = 48, one patch a frame at 4 frames).
    /// </summary>
    public int MotionTravel { get; init; } = MotionClip.Travel;
    /// <summary>
    /// Train direction answers with a rationale: the shape's first and last cells, then the direction ("one two two two right").
    /// Direction questions are scored on the direction alone (<see cref="ShapesTask.DirectionVerdict"/>).
    /// </summary>
    public bool MotionRationale { get; init; }
    /// <summary>
    /// Train order answers with a rationale: the frame each named shape is first drawn in, in the order named, then the
    /// earlier one ("two zero blue star"). Order questions are scored on the name alone (<see cref="ShapesTask.OrderVerdict"/>).
    /// Clips of at most six frames (the frame words are the count words, "zero"–"four").
    /// </summary>
    public bool OrderRationale { get; init; }
    /// <summary>
    /// Fraction of the clip questions that are presence questions, an auxiliary ("which appears first , the red circle ?" →
    /// "two": the first frame the shape is drawn in; either shape of a two-shape clip, so not in a curriculum's one-shape stage);
    /// 0, the default, draws none and leaves the clip stream unchanged.
    /// With it the motion scores also report presence. Clips of at most six frames (the answers are "zero"–"four").
    /// </summary>
    public double PresenceFraction { get; init; }
    /// <summary>
    /// Initial standard deviation of the embedder's row, column (and frame) tables. The default is every
    /// other weight's (<see cref="ModelParameters.InitStd"/>), about a tenth of a shape patch's W·patch at init.
    /// </summary>
    public float PositionInit { get; init; } = ModelParameters.InitStd;
    /// <summary>
    /// Amplitude of a linear ramp added at init to the row and column tables: row/column i of G gets
    /// A·(2i/(G−1) − 1)·u, u a random direction with unit-RMS entries (one for rows, one for columns),
    /// so "further left" and "further up" start as one linear feature each (0: none, the tables are random).
    /// </summary>
    public float PositionRamp { get; init; }
    /// <summary>
    /// Amplitude of a linear ramp added at init to the frame table (video): frame t of N gets A·(2t/(N−1) − 1)·u, u a random
    /// direction with unit-RMS entries, so "earlier" starts as one linear feature of every patch (0: none, the table is random).
    /// </summary>
    public float FrameRamp { get; init; }
    /// <summary>RMS-normalise the projected patch before the positions are added (<see cref="VisionConfig.PatchNorm"/>).</summary>
    public bool PatchNorm { get; init; }
    /// <summary>Fraction of the still-image questions that are relative-position questions (0: every type equally likely).</summary>
    public double PositionFraction { get; init; }
    /// <summary>
    /// Train position answers with a rationale: the left one of the pair's name, then yes or no ("blue star no").
    /// Position questions are scored on the yes/no alone (<see cref="ShapesTask.PositionVerdict"/>).
    /// </summary>
    public bool PositionRationale { get; init; }
    /// <summary>
    /// Fraction of the training position questions asked about a minimal pair: two shapes of the same colour (with equal odds
    /// the same kind), drawn until the scene has one, so that the yes/no cannot be read off the colour (or the kind) alone.
    /// 0, the default, draws nothing and leaves the stream unchanged; evaluation sets are never changed by it.
    /// </summary>
    public double PositionMinimalPairs { get; init; }
    /// <summary>Image geometry: 64×64 in 16×16 patches (one grid cell, so one shape, per patch).</summary>
    public VisionConfig Vision { get; init; } = new(ImageSize: 64, PatchSize: 16);
    /// <summary>
    /// Decay of an exponential moving average of the weights (Polyak averaging; 0, the default: none). With it every step
    /// moves a shadow copy of each weight a fraction <see cref="ShapesTrainer.EmaRate"/> (1 − decay once past the first steps)
    /// toward the trained weight; the curve and the final scores are measured on the averaged weights, and the model saved is the
    /// average (a cancelled run saves the trained weights). The optimiser's weights and the data stream are unchanged by it.
    /// </summary>
    public double Ema { get; init; }
}

/// <summary>Per-type exact-match accuracy on one split.</summary>
public sealed record SplitScore(string Split, IReadOnlyDictionary<string, double> Accuracy, int PerType);

/// <summary>A point of the training curve.</summary>
public sealed record CurvePoint(int Step, double Loss, double Seconds, IReadOnlyDictionary<string, double> Accuracy);

/// <summary>Everything a run measured.</summary>
public sealed record ShapesReport(ShapesOptions Options, long Parameters, double Seconds, double FinalLoss,
    IReadOnlyList<CurvePoint> Curve, SplitScore InDistribution, SplitScore Compositional, SplitScore? Motion = null)
{
    /// <summary>Text-only tokens trained on (targets of the text documents): the budget a text-only baseline is matched to.</summary>
    public long TextTokens { get; init; }
    /// <summary>Optimiser steps taken: the options' steps, or fewer when the run was cancelled (then the final scores are empty).</summary>
    public int StepsRun { get; init; }
    /// <summary>Bits per byte on held-out text-only documents (<see cref="ShapesTrainer.TextBitsPerByte"/>).</summary>
    public double TextBitsPerByte { get; init; }
}

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
    public MultimodalModel NewModel()
    {
        var embedder = new PatchEmbedder(Vision, Options.Dim, (ulong)Options.Seed + 1);
        if (Options.PositionInit != ModelParameters.InitStd)
            foreach (string name in (string[])[PatchEmbedder.RowName, PatchEmbedder.ColName, PatchEmbedder.FrameName])
                if (embedder.Parameters.Contains(name))
                    System.Numerics.Tensors.TensorPrimitives.Multiply(embedder.Parameters[name].AsSpan("PositionInit"), Options.PositionInit / ModelParameters.InitStd,
                        embedder.Parameters[name].AsSpan("PositionInit"));
        if (Options.PositionRamp != 0)
        {
            var rng = new Rng((ulong)Options.Seed + 7);
            int side = Vision.GridSide, dim = Options.Dim;
            var u = new float[dim];
            foreach (string name in (string[])[PatchEmbedder.RowName, PatchEmbedder.ColName])
            {
                rng.FillNormal(u);
                var table = embedder.Parameters[name].AsSpan("PositionRamp");   // (G, D)
                for (int i = 0; i < side; i++)
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(u, Options.PositionRamp * (2f * i / (side - 1) - 1f), table.Slice(i * dim, dim), table.Slice(i * dim, dim));
            }
        }
        if (Options.FrameRamp != 0 && embedder.Parameters.Contains(PatchEmbedder.FrameName))
        {
            var rng = new Rng((ulong)Options.Seed + 8);   // its own stream: the row/column ramp's draws are unchanged
            int frames = Vision.Frames, dim = Options.Dim;
            var u = new float[dim];
            rng.FillNormal(u);
            var table = embedder.Parameters[PatchEmbedder.FrameName].AsSpan("FrameRamp");   // (N, D)
            for (int t = 0; t < frames; t++)
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(u, Options.FrameRamp * (2f * t / Math.Max(1, frames - 1) - 1f), table.Slice(t * dim, dim), table.Slice(t * dim, dim));
        }
        return new(new Transformer(DecoderConfig, (ulong)Options.Seed), embedder);
    }

    /// <summary>The image geometry of the model: the options' with their attention, plus a frame embedding when clips are trained.</summary>
    public VisionConfig Vision => Options.Vision with
    {
        PrefixLm = Options.PrefixLm, PatchNorm = Options.PatchNorm || Options.Vision.PatchNorm, Frames = Options.MotionFraction > 0 ? Math.Max(Options.Vision.Frames, Options.MotionFrames) : Options.Vision.Frames,
    };

    bool Motion => Options.MotionFraction > 0;

    /// <summary>
    /// Refuses clip settings that could only fail mid-run, before any work: a travel outside
    /// <see cref="MotionClip.Travel"/>–<see cref="MotionClip.MaxTravel"/>, frames outside 2–8, and an order rationale
    /// on clips longer than 6 frames (its frame words are the number words "zero"–"four").
    /// </summary>
    internal static void CheckMotionOptions(ShapesOptions o)
    {
        if (o.MotionFraction <= 0) return;
        if (o.MotionFrames is < 2 or > 8) throw new ArgumentException($"shapes: --motion-frames {o.MotionFrames}; clips have 2 to 8 frames.");
        if (o.MotionTravel is < MotionClip.Travel or > MotionClip.MaxTravel)
            throw new ArgumentException($"shapes: --motion-travel {o.MotionTravel}; clips travel {MotionClip.Travel} to {MotionClip.MaxTravel} pixels.");
        if (o.OrderRationale && o.MotionFrames > 6)
            throw new ArgumentException($"shapes: --order-rationale names a shape's first frame with the number words zero to four, so clips may have at most 6 frames (--motion-frames {o.MotionFrames}).");
        if (o.PresenceFraction is < 0 or > 1) throw new ArgumentException($"shapes: --presence-fraction {o.PresenceFraction}; a fraction of the clip questions, 0 to 1.");
        if (o.PresenceFraction > 0 && o.MotionFrames > 6)
            throw new ArgumentException($"shapes: --presence-fraction answers a shape's first frame with the number words zero to four, so clips may have at most 6 frames (--motion-frames {o.MotionFrames}).");
    }

    /// <summary>
    /// Trains <paramref name="model"/>; <paramref name="progress"/> gets each curve point. When
    /// <paramref name="cancel"/> fires (SIGTERM, Ctrl+C) training stops after the current step and the
    /// report comes back at once with <see cref="ShapesReport.StepsRun"/> &lt; the options' steps and empty
    /// final scores (the evaluation is skipped so that the process ends promptly).
    /// </summary>
    public ShapesReport Train(MultimodalModel model, Action<CurvePoint>? progress = null, CancellationToken cancel = default)
    {
        var o = Options;
        CheckMotionOptions(o);
        if (o.PositionMinimalPairs is < 0 or > 1) throw new ArgumentException($"shapes: --position-minimal-pairs {o.PositionMinimalPairs}; a fraction of the position questions, 0 to 1.");
        if (o.Ema is < 0 or >= 1) throw new ArgumentException($"shapes: --ema {o.Ema}; the decay of the weight average is 0 (off) or in (0, 1), e.g. 0.999.");
        var rng = new Random(o.Seed);
        var parameters = model.AllParameters;
        var decays = new HashSet<Tensor>(model.Decoder.Parameters.All.Where(model.Decoder.Parameters.Decays));
        decays.Add(model.Embedder.Parameters[PatchEmbedder.WeightName]);
        if (model.Embedder.Config.EmbedderHidden > 0) decays.Add(model.Embedder.Parameters[PatchEmbedder.HiddenWeightName]);
        using var opt = new AdamW(parameters, o.LearningRate, 0.9f, 0.95f, 1e-8f, 0.05f, decays.Contains);
        // The averaged weights: a copy of each parameter, moved toward it after every step (see EmaRate).
        float[][]? shadow = o.Ema > 0 ? [.. parameters.Select(t => t.AsSpan("Ema").ToArray())] : null;
        var curve = new List<CurvePoint>();
        var curveSet = EvalSet(o.Seed + 1000, compositional: false, o.CurveExamples);
        var motionCurveSet = Motion ? MotionEvalSet(o.Seed + 1500, compositional: false, o.CurveExamples) : null;
        var clock = Stopwatch.StartNew();
        double smooth = double.NaN;
        long textTokens = 0;
        int warm = Math.Max(1, o.Steps / 20), stepsRun = 0;
        for (int step = 1; step <= o.Steps && !cancel.IsCancellationRequested; step++)
        {
            stepsRun = step;
            double lr = step <= warm ? o.LearningRate * step / warm
                : o.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, o.Steps - warm))));
            opt.LearningRate = (float)lr;
            var batch = TrainBatch(rng, MaxShapesAt(step));
            textTokens += batch.TextTokens;
            using (var g = new Graph())
            {
                var r = model.Forward(g, batch.Ids, batch.B, batch.T, batch.Patches, batch.Prefix, batch.Targets, batch.Frames);
                double loss = r.Loss!.Item();
                smooth = double.IsNaN(smooth) ? loss : 0.95 * smooth + 0.05 * loss;
                g.Backward(r.Loss!);
            }
            GradClip.ClipGlobalNorm(parameters, 1.0);
            opt.Step();
            opt.ZeroGrad();
            if (shadow is not null)
            {
                float rate = (float)EmaRate(o.Ema, step);
                for (int i = 0; i < parameters.Count; i++)
                    System.Numerics.Tensors.TensorPrimitives.Lerp(shadow[i], parameters[i].AsSpan("Ema"), rate, shadow[i]);
            }
            if ((o.EvalEvery > 0 && step % o.EvalEvery == 0) || step == o.Steps)
            {
                // Scored on the averaged weights when there are any: swapped in for the evaluation, then the trained ones back.
                float[][]? current = shadow is null ? null : Swap(parameters, shadow);
                var accuracy = new Dictionary<string, double>(Evaluate(model, curveSet).Accuracy);
                if (motionCurveSet is not null) foreach (var kv in EvaluateMotion(model, motionCurveSet).Accuracy) accuracy[kv.Key] = kv.Value;
                if (current is not null) Swap(parameters, current);
                var point = new CurvePoint(step, smooth, clock.Elapsed.TotalSeconds, accuracy);
                curve.Add(point);
                progress?.Invoke(point);
            }
        }
        double trained = clock.Elapsed.TotalSeconds;
        if (shadow is not null && stepsRun == o.Steps) Swap(parameters, shadow);   // the model scored and saved is the average
        long parameterCount = model.Decoder.Parameters.ElementCount + model.Embedder.Parameters.ElementCount;
        if (stepsRun < o.Steps)
            return new ShapesReport(o, parameterCount, trained, smooth, curve, new SplitScore("in-distribution", new Dictionary<string, double>(), 0),
                new SplitScore("compositional", new Dictionary<string, double>(), 0)) { TextTokens = textTokens, StepsRun = stepsRun };
        var inDist = Evaluate(model, EvalSet(o.Seed + 2000, compositional: false, o.EvalExamples), "in-distribution");
        var comp = Evaluate(model, EvalSet(o.Seed + 3000, compositional: true, o.EvalExamples), "compositional");
        var motion = Motion ? EvaluateMotion(model, MotionEvalSet(o.Seed + 5000, compositional: false, o.EvalExamples), "motion") : null;
        return new ShapesReport(o, parameterCount, trained, smooth, curve, inDist, comp, motion)
        {
            TextTokens = textTokens, StepsRun = stepsRun, TextBitsPerByte = TextBitsPerByte(model, o.Seed + 6000, 512),
        };
    }

    /// <summary>
    /// The fraction by which the weight average moves toward the trained weights after <paramref name="step"/> (1-based):
    /// max(1 − <paramref name="decay"/>, 10/(10 + step)), so that early on the average follows the weights closely and forgets
    /// the initial ones within the first few hundred steps instead of dragging them along.
    /// </summary>
    public static double EmaRate(double decay, int step) => Math.Max(1 - decay, 10.0 / (10 + step));

    /// <summary>Copies <paramref name="values"/> into <paramref name="parameters"/> and returns what they held.</summary>
    static float[][] Swap(IReadOnlyList<Tensor> parameters, float[][] values)
    {
        var old = new float[parameters.Count][];
        for (int i = 0; i < parameters.Count; i++)
        {
            var span = parameters[i].AsSpan("Ema");
            old[i] = span.ToArray();
            values[i].CopyTo(span);
        }
        return old;
    }

    /// <summary>Most shapes per training scene at <paramref name="step"/> under the curriculum.</summary>
    public int MaxShapesAt(int step)
    {
        var o = Options;
        if (o.CurriculumSteps <= 0 || step >= o.CurriculumSteps) return 4;
        int start = Math.Clamp(o.CurriculumStart, 1, 4);
        return Math.Min(4, start + (4 - start + 1) * (step - 1) / o.CurriculumSteps);
    }

    /// <summary>A padded training batch: image questions (train split, at most <paramref name="maxShapes"/> shapes) mixed with text-only documents.</summary>
    internal Batch TrainBatch(Random rng, int maxShapes = 4)
    {
        var seqs = new List<(int[] Ids, int[] Targets, int Prefix, float[] Patches, int Images)>();
        // A batch is all clips or all stills (plus text): a clip is 4–8× an image's rows, and a mixed
        // batch would pad every still to the clip's length. Drawn only in motion runs: a still-only stream is unchanged.
        bool clips = Motion && rng.NextDouble() < Options.MotionFraction;
        for (int i = 0; i < Options.BatchSize; i++)
        {
            if (rng.NextDouble() < Options.TextFraction)
            {
                var scene = ShapeScene.Random(rng, (c, k) => !ShapesTask.IsHeldOut(c, k), maxShapes: maxShapes);
                var ids = new[] { ShapesTask.Bos }.Concat(ShapesTask.Encode(ShapesTask.Describe(scene, rng))).Append(ShapesTask.Eos).ToArray();
                seqs.Add((ids[..^1], ids[1..], 0, [], 0));
                continue;
            }
            RgbImage[] images;
            ShapeQuestion q;
            if (clips)
            {
                // The presence draw is made only with the flag: without it the clip stream is the one before the flag.
                // Presence needs two shapes: not asked in a curriculum's one-shape stage (it would never be askable).
                QuestionType? mtype = Options.PresenceFraction > 0 && maxShapes >= 2 && rng.NextDouble() < Options.PresenceFraction ? QuestionType.Presence : null;
                var (clip, mq) = MotionQuestion(rng, compositional: false, type: mtype, maxShapes, Options.MotionRationale, Options.OrderRationale);
                (images, q) = (clip.Render(), mq);
            }
            else
            {
                // Position needs two shapes: not forced in a curriculum's one-shape stage (it would never be askable).
                QuestionType? type = maxShapes >= 2 && Options.PositionFraction > 0 && rng.NextDouble() < Options.PositionFraction ? QuestionType.Position : null;
                // Minimal pairs: drawn only with the flag (and only for a forced position question), so without it the stream is unchanged.
                Func<Shape, Shape, bool>? pair = null;
                if (type == QuestionType.Position && Options.PositionMinimalPairs > 0 && rng.NextDouble() < Options.PositionMinimalPairs)
                    pair = rng.Next(2) == 0 ? (a, b) => a.Colour == b.Colour : (a, b) => a.Kind == b.Kind;
                var (s, sq) = Question(rng, compositional: false, type, maxShapes, Options.PositionRationale, pair);
                (images, q) = ([s.Render()], sq);
            }
            var (prompt, prefix, answer) = ShapesTask.Encode(q, Options.Vision, images.Length);
            var full = prompt.Concat(answer).ToArray();
            var targets = new int[full.Length - 1];
            for (int t = 0; t < targets.Length; t++) targets[t] = t >= prefix - 1 ? full[t + 1] : -100;
            seqs.Add((full[..^1], targets, Options.PrefixLm ? prefix : 0, [.. images.SelectMany(im => PatchGrid.Patches(im, Options.Vision))], images.Length));
        }
        return Pack(seqs) with { TextTokens = seqs.Where(s => s.Images == 0).Sum(s => s.Targets.Length) };
    }

    /// <summary>
    /// Bits per byte of the model on <paramref name="documents"/> held-out text-only documents (scene
    /// descriptions of training-split scenes drawn from <paramref name="seed"/>): the summed
    /// next-word loss over every word and EOS, in bits, over the documents' UTF-8 bytes (words, the
    /// spaces between them, and one byte for the end). Comparable between a multimodal and a text-only model.
    /// </summary>
    public double TextBitsPerByte(MultimodalModel model, int seed, int documents)
    {
        var rng = new Random(seed);
        double nats = 0; long bytes = 0;
        for (int start = 0; start < documents; start += 32)
        {
            int n = Math.Min(32, documents - start);
            var docs = new List<int[]>();
            for (int i = 0; i < n; i++)
            {
                string text = ShapesTask.Describe(ShapeScene.Random(rng, (c, k) => !ShapesTask.IsHeldOut(c, k)), rng);
                bytes += System.Text.Encoding.UTF8.GetByteCount(text) + 1;
                docs.Add([ShapesTask.Bos, .. ShapesTask.Encode(text), ShapesTask.Eos]);
            }
            int t = docs.Max(d => d.Length) - 1, count = 0;
            var ids = new int[n * t]; var targets = new int[n * t];
            Array.Fill(targets, -100);
            for (int i = 0; i < n; i++)
            {
                docs[i].AsSpan(0, docs[i].Length - 1).CopyTo(ids.AsSpan(i * t));
                docs[i].AsSpan(1).CopyTo(targets.AsSpan(i * t));
                count += docs[i].Length - 1;
            }
            using var g = new Graph(recordGradients: false);
            var r = model.Forward(g, ids, n, t, [], default, targets);
            nats += r.CrossEntropy!.Item() * count;   // the mean over the targets
        }
        return nats / Math.Log(2) / bytes;
    }

    /// <summary>A padded batch; <see cref="Frames"/> is each image's frame index within its sequence (0 for stills).</summary>
    internal sealed record Batch(int[] Ids, int[] Targets, int[] Prefix, float[] Patches, int B, int T, int[] Frames)
    {
        /// <summary>Targets in the text-only documents.</summary>
        public int TextTokens { get; init; }
    }

    static Batch Pack(List<(int[] Ids, int[] Targets, int Prefix, float[] Patches, int Images)> seqs)
    {
        var frames = new List<int>();
        foreach (var s in seqs) for (int f = 0; f < s.Images; f++) frames.Add(f);
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
        return new Batch(ids, tg, prefix, [.. patches], b, t, [.. frames]);
    }

    /// <summary>A clip of the split and a motion question of <paramref name="type"/> (random when null) about it.</summary>
    /// <summary>With <paramref name="maxShapes"/> 1 (the curriculum's one-shape stage) clips hold one shape, so only direction is asked.</summary>
    (MotionClip Clip, ShapeQuestion Question) MotionQuestion(Random rng, bool compositional, QuestionType? type, int maxShapes = 4, bool rationale = false, bool orderRationale = false)
    {
        while (true)
        {
            var clip = compositional
                ? MotionClip.Random(rng, Options.MotionFrames, (_, _) => true, ShapesTask.IsHeldOut, travel: Options.MotionTravel)
                : MotionClip.Random(rng, Options.MotionFrames, (c, k) => !ShapesTask.IsHeldOut(c, k), maxShapes: maxShapes, travel: Options.MotionTravel);
            var t = type ?? (rng.Next(2) == 0 ? QuestionType.Direction : QuestionType.Order);
            var q = clip.Ask(t, rng, compositional ? s => ShapesTask.IsHeldOut(s.Colour, s.Kind) : null, rationale, orderRationale);
            if (q is not null) return (clip, q);
        }
    }

    /// <summary>
    /// Motion evaluation questions: <paramref name="perType"/> direction and order questions on fresh clips of the split, then,
    /// when the options train presence questions (<see cref="ShapesOptions.PresenceFraction"/>), as many presence questions
    /// (drawn after the others, so the direction and order questions are the same with or without them).
    /// </summary>
    public IReadOnlyList<(MotionClip Clip, ShapeQuestion Question)> MotionEvalSet(int seed, bool compositional, int perType)
    {
        var rng = new Random(seed);
        var set = new List<(MotionClip, ShapeQuestion)>();
        QuestionType[] types = Options.PresenceFraction > 0 ? [QuestionType.Direction, QuestionType.Order, QuestionType.Presence] : [QuestionType.Direction, QuestionType.Order];
        foreach (var type in types)
            for (int i = 0; i < perType; i++) set.Add(MotionQuestion(rng, compositional, type));
        return set;
    }

    /// <summary>Exact-match accuracy per motion question type by greedy decoding over the clips' frames.</summary>
    public SplitScore EvaluateMotion(MultimodalModel model, IReadOnlyList<(MotionClip Clip, ShapeQuestion Question)> set, string split = "curve")
        => Score(set.Select(x => x.Question).ToList(), AnswerFrames(model, [.. set.Select(x => ((IReadOnlyList<RgbImage>)x.Clip.Render(), x.Question))]), split);

    internal static SplitScore Score(IReadOnlyList<ShapeQuestion> questions, IReadOnlyList<string> answers, string split)
    {
        var acc = new Dictionary<string, double>();
        foreach (var group in questions.Select((q, i) => (Question: q, Got: answers[i])).GroupBy(x => x.Question.Type))
            acc[group.Key.ToString().ToLowerInvariant()] = group.Average(x => ShapesTask.Verdict(x.Question.Type, x.Got) == ShapesTask.Verdict(x.Question.Type, x.Question.Answer) ? 1.0 : 0.0);
        return new SplitScore(split, acc, questions.Count / Math.Max(1, acc.Count));
    }

    /// <summary>A scene of the split and a question of <paramref name="type"/> (random when null) about it.</summary>
    static (ShapeScene Scene, ShapeQuestion Question) Question(Random rng, bool compositional, QuestionType? type, int maxShapes = 4, bool rationale = false, Func<Shape, Shape, bool>? pair = null)
    {
        while (true)
        {
            var scene = compositional
                ? ShapeScene.Random(rng, (_, _) => true, ShapesTask.IsHeldOut, maxShapes)
                : ShapeScene.Random(rng, (c, k) => !ShapesTask.IsHeldOut(c, k), maxShapes: maxShapes);
            var t = type ?? (QuestionType)rng.Next(6);
            var q = ShapesTask.Ask(scene, t, rng, compositional ? s => ShapesTask.IsHeldOut(s.Colour, s.Kind) : null, rationale, pair);
            if (q is not null) return (scene, q);
        }
    }

    /// <summary>
    /// Evaluation questions: <paramref name="perType"/> of each type on fresh scenes of the split
    /// (with <paramref name="maxShapes"/> &lt; 2, the two-shape types are left out).
    /// </summary>
    public IReadOnlyList<(ShapeScene Scene, ShapeQuestion Question)> EvalSet(int seed, bool compositional, int perType, int maxShapes = 4)
    {
        var rng = new Random(seed);
        var set = new List<(ShapeScene, ShapeQuestion)>();
        foreach (var type in Enum.GetValues<QuestionType>())
        {
            if (type > QuestionType.Caption) continue;   // the motion types are asked about clips (MotionEvalSet)
            if (maxShapes < 2 && type is QuestionType.Position or QuestionType.Bigger) continue;
            for (int i = 0; i < perType; i++) set.Add(Question(rng, compositional, type, maxShapes));
        }
        return set;
    }

    /// <summary>Exact-match accuracy per question type (captions: the whole caption) by greedy decoding.</summary>
    public SplitScore Evaluate(MultimodalModel model, IReadOnlyList<(ShapeScene Scene, ShapeQuestion Question)> set, string split = "curve")
        => Score(set.Select(x => x.Question).ToList(), Answer(model, set.Select(x => (x.Scene.Render(), x.Question)).ToList()), split);

    /// <summary>Greedy answers (words) to questions about images, 32 at a time, up to 20 tokens each.</summary>
    public IReadOnlyList<string> Answer(MultimodalModel model, IReadOnlyList<(RgbImage Image, ShapeQuestion Question)> items)
        => AnswerFrames(model, [.. items.Select(x => ((IReadOnlyList<RgbImage>)[x.Image], x.Question))]);

    /// <summary>Greedy answers to questions about clips (a still image is a clip of one frame).</summary>
    public IReadOnlyList<string> AnswerFrames(MultimodalModel model, IReadOnlyList<(IReadOnlyList<RgbImage> Frames, ShapeQuestion Question)> items)
    {
        var result = new string[items.Count];
        for (int start = 0; start < items.Count; start += 32)
        {
            int n = Math.Min(32, items.Count - start);
            var prompts = new List<int>[n]; var prefixes = new int[n]; var done = new bool[n];
            var patches = new List<float>();
            var frames = new List<int>();
            for (int i = 0; i < n; i++)
            {
                var clip = items[start + i].Frames;
                var (prompt, prefix, _) = ShapesTask.Encode(items[start + i].Question, Options.Vision, clip.Count);
                prompts[i] = [.. prompt]; prefixes[i] = Options.PrefixLm ? prefix : 0;
                for (int f = 0; f < clip.Count; f++) { patches.AddRange(PatchGrid.Patches(clip[f], Options.Vision)); frames.Add(f); }
            }
            var allPatches = patches.ToArray();
            var generated = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
            for (int k = 0; k < 20 && done.Any(d => !d); k++)
            {
                int t = prompts.Max(p => p.Count);
                var ids = new int[n * t];
                for (int i = 0; i < n; i++) prompts[i].CopyTo(ids, i * t);
                using var g = new Graph(recordGradients: false);
                var logits = model.Forward(g, ids, n, t, allPatches, prefixes, frames: frames).Logits.AsSpan("Answer");   // (n·t, V)
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
