using System.Diagnostics;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Vision.FashionMnist;

/// <summary>Settings of a Fashion-MNIST-by-prompting run (one line each: meaning and default).</summary>
public sealed record FashionMnistOptions
{
    /// <summary>Optimiser steps.</summary>
    public int Steps { get; init; } = 4000;
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Peak learning rate (5% linear warmup, cosine to 10%).</summary>
    public float LearningRate { get; init; } = 2e-3f;
    /// <summary>Model width.</summary>
    public int Dim { get; init; } = 96;
    /// <summary>Layers.</summary>
    public int Layers { get; init; } = 3;
    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Patch side on the 28×28 image: 7 (16 patches) or 4 (49 patches).</summary>
    public int PatchSize { get; init; } = 7;
    /// <summary>Seed of the weights and the data order.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Evaluate on the validation images every this many steps (0: only at the end).</summary>
    public int EvalEvery { get; init; } = 250;
    /// <summary>Training images held out as validation for the curve (the last ones of the training split).</summary>
    public int Validation { get; init; } = 5000;
    /// <summary>Test images scored at the end (at most 10,000).</summary>
    public int TestImages { get; init; } = 10_000;
    /// <summary>Epochs of the linear probe on raw pixels (the floor, same training images).</summary>
    public int ProbeEpochs { get; init; } = 10;
    /// <summary>The image geometry the options describe (grey, 28×28).</summary>
    public VisionConfig Vision => new(ImageSize: 28, PatchSize: PatchSize, Channels: 1);
}

/// <summary>A point of the validation curve.</summary>
public sealed record FashionCurvePoint(int Step, double Loss, double Seconds, double Accuracy);

/// <summary>What a run measured: the model's test accuracy by prompting and the linear probe's on raw pixels.</summary>
public sealed record FashionMnistReport(FashionMnistOptions Options, long Parameters, double Seconds, double FinalLoss, IReadOnlyList<FashionCurvePoint> Curve,
    double TestAccuracy, int TestImages, double ProbeTestAccuracy, double ProbeSeconds);

/// <summary>
/// Fashion-MNIST by prompting: the multimodal model (decoder + patch embedder, one network) is trained
/// on <c>&lt;|bos|&gt; &lt;|image|&gt; what is this ? label &lt;|eos|&gt;</c> with prefix-LM over image and
/// question, and scored by the log-likelihood of the ten class names after the question (each name is
/// one token, so the most likely name is the argmax over the ten). The floor in the same run: a
/// linear softmax probe on the raw 784 pixels trained on the same images.
/// </summary>
public sealed class FashionMnistTrainer(FashionMnistOptions options)
{
    /// <summary>Special ids of the task vocabulary.</summary>
    public const int Pad = 0, Bos = 1, Eos = 2, Image = 3;

    /// <summary>id → word: specials, the question, then the ten class names.</summary>
    public static readonly string[] Words = ["<|pad|>", "<|bos|>", "<|eos|>", "<|image|>", "what", "is", "this", "?", .. FashionMnistData.Classes];

    const int FirstClass = 8;
    static readonly int[] QuestionIds = [4, 5, 6, 7];

    /// <summary>The settings.</summary>
    public FashionMnistOptions Options { get; } = options;

    /// <summary>The decoder config the options describe.</summary>
    public ModelConfig DecoderConfig => new ModelConfig
    {
        VocabSize = Words.Length, Dim = Options.Dim, Layers = Options.Layers, Heads = Options.Heads, KvHeads = Options.Heads,
        HiddenDim = Options.Dim * 3, ContextLength = PromptLength + 2, TiedEmbeddings = true,
    }.Validate();

    /// <summary>Rows of a prompt: BOS, the patches, the question (the prefix under prefix-LM).</summary>
    public int PromptLength => 1 + Options.Vision.TokensPerImage + QuestionIds.Length;

    /// <summary>A fresh model.</summary>
    public MultimodalModel NewModel() => new(new Transformer(DecoderConfig, (ulong)Options.Seed), new PatchEmbedder(Options.Vision, Options.Dim, (ulong)Options.Seed + 1));

    /// <summary>Patch rows of a 28×28 grey image (v/255).</summary>
    public float[] Patches(ReadOnlySpan<byte> grey)
    {
        var hwc = new float[grey.Length * 3];
        for (int i = 0; i < grey.Length; i++) hwc[3 * i] = hwc[3 * i + 1] = hwc[3 * i + 2] = grey[i] / 255f;
        return PatchGrid.Patches(hwc, Options.Vision);
    }

    int[] Prompt()
    {
        var ids = new int[PromptLength];
        ids[0] = Bos;
        for (int i = 1; i <= Options.Vision.TokensPerImage; i++) ids[i] = ImageSpans.VectorId;
        QuestionIds.CopyTo(ids, 1 + Options.Vision.TokensPerImage);
        return ids;
    }

    /// <summary>Trains on <paramref name="train"/> (less the validation tail), scores <paramref name="test"/>, and fits the linear probe.</summary>
    public FashionMnistReport Run(MultimodalModel model, FashionMnistSplit train, FashionMnistSplit test, Action<FashionCurvePoint>? progress = null, Action<string>? log = null)
    {
        var o = Options;
        int trainCount = train.Count - o.Validation;
        if (trainCount <= 0) throw new ArgumentException($"FashionMnistTrainer: {o.Validation} validation images leave none of the {train.Count} to train on.");
        var parameters = model.AllParameters;
        var decays = new HashSet<Tensor>(model.Decoder.Parameters.All.Where(model.Decoder.Parameters.Decays)) { model.Embedder.Parameters[PatchEmbedder.WeightName] };
        using var opt = new AdamW(parameters, o.LearningRate, 0.9f, 0.95f, 1e-8f, 0.05f, decays.Contains);
        var rng = new Random(o.Seed);
        var order = Enumerable.Range(0, trainCount).ToArray();
        int cursor = order.Length;
        var prompt = Prompt();
        int P = prompt.Length, T = P + 1;   // inputs: prompt + label; targets: label, EOS
        var curve = new List<FashionCurvePoint>();
        var clock = Stopwatch.StartNew();
        double smooth = double.NaN;
        int warm = Math.Max(1, o.Steps / 20);
        var validation = Enumerable.Range(trainCount, o.Validation).ToArray();
        for (int step = 1; step <= o.Steps; step++)
        {
            opt.LearningRate = (float)(step <= warm ? o.LearningRate * step / warm
                : o.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, o.Steps - warm)))));
            int B = o.BatchSize;
            var ids = new int[B * T]; var targets = new int[B * T]; var prefix = new int[B];
            Array.Fill(targets, -100);
            var patches = new float[B * o.Vision.TokensPerImage * o.Vision.PatchValues];
            for (int b = 0; b < B; b++)
            {
                if (cursor == order.Length) { rng.Shuffle(order); cursor = 0; }
                int i = order[cursor++];
                prompt.CopyTo(ids, b * T);
                int label = FirstClass + train.Labels[i];
                ids[b * T + P] = label;
                targets[b * T + P - 1] = label;
                targets[b * T + P] = Eos;
                prefix[b] = P;
                Patches(train.Image(i)).CopyTo(patches, b * o.Vision.TokensPerImage * o.Vision.PatchValues);
            }
            using (var g = new Graph())
            {
                var r = model.Forward(g, ids, B, T, patches, prefix, targets);
                double loss = r.Loss!.Item();
                smooth = double.IsNaN(smooth) ? loss : 0.98 * smooth + 0.02 * loss;
                g.Backward(r.Loss!);
            }
            GradClip.ClipGlobalNorm(parameters, 1.0);
            opt.Step();
            opt.ZeroGrad();
            if ((o.EvalEvery > 0 && step % o.EvalEvery == 0) || step == o.Steps)
            {
                var point = new FashionCurvePoint(step, smooth, clock.Elapsed.TotalSeconds, o.Validation == 0 ? double.NaN : Accuracy(model, train, validation));
                curve.Add(point);
                progress?.Invoke(point);
            }
        }
        double trained = clock.Elapsed.TotalSeconds;
        int testCount = Math.Min(o.TestImages, test.Count);
        double testAcc = Accuracy(model, test, Enumerable.Range(0, testCount).ToArray());
        log?.Invoke("linear probe on raw pixels");
        var probeClock = Stopwatch.StartNew();
        double probe = LinearProbe.TrainAndScore(train, trainCount, test, testCount, o.ProbeEpochs, o.Seed);
        return new FashionMnistReport(o, model.Decoder.Parameters.ElementCount + model.Embedder.Parameters.ElementCount, trained, smooth, curve,
            testAcc, testCount, probe, probeClock.Elapsed.TotalSeconds);
    }

    /// <summary>The class the model finds most likely after the question, per image (log-likelihood over the ten names).</summary>
    public int[] Predict(MultimodalModel model, FashionMnistSplit split, IReadOnlyList<int> indices)
    {
        var prompt = Prompt();
        int P = prompt.Length, V = Words.Length, per = Options.Vision.TokensPerImage * Options.Vision.PatchValues;
        var result = new int[indices.Count];
        const int chunk = 250;
        for (int start = 0; start < indices.Count; start += chunk)
        {
            int n = Math.Min(chunk, indices.Count - start);
            var ids = new int[n * P]; var prefix = new int[n];
            var patches = new float[n * per];
            for (int b = 0; b < n; b++)
            {
                prompt.CopyTo(ids, b * P);
                prefix[b] = P;
                Patches(split.Image(indices[start + b])).CopyTo(patches, b * per);
            }
            using var g = new Graph(recordGradients: false);
            var logits = model.Forward(g, ids, n, P, patches, prefix).Logits.AsSpan("FashionMnist");   // (n·P, V)
            for (int b = 0; b < n; b++)
            {
                var row = logits.Slice((b * P + P - 1) * V, V);
                int best = 0;
                for (int k = 1; k < 10; k++) if (row[FirstClass + k] > row[FirstClass + best]) best = k;
                result[start + b] = best;
            }
        }
        return result;
    }

    /// <summary>Share of <paramref name="indices"/> whose predicted class is the label.</summary>
    public double Accuracy(MultimodalModel model, FashionMnistSplit split, IReadOnlyList<int> indices)
    {
        var predicted = Predict(model, split, indices);
        int right = 0;
        for (int i = 0; i < predicted.Length; i++) if (predicted[i] == split.Labels[indices[i]]) right++;
        return (double)right / Math.Max(1, predicted.Length);
    }
}
