using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Tensors;
using Tessera.Text;

namespace Tessera.Training.Contrastive;

/// <summary>A query and the text that answers it (a training pair of a bi-encoder).</summary>
/// <param name="Query">Query text.</param>
/// <param name="Positive">The relevant passage.</param>
public sealed record ContrastivePair(string Query, string Positive);

/// <summary>Reads and writes pair files: JSON lines of <c>{"query": ..., "positive": ...}</c>.</summary>
public static class ContrastivePairs
{
    /// <summary>Every pair of <paramref name="path"/>; a line without both fields is an error naming the line.</summary>
    public static List<ContrastivePair> Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such pairs file (expected JSON lines of {{\"query\": ..., \"positive\": ...}}).", path);
        var pairs = new List<ContrastivePair>();
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonNode? node;
            try { node = JsonNode.Parse(text); }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{line}: not JSON ({e.Message})", e); }
            string? q = (node as JsonObject)?["query"]?.GetValue<string>(), p = (node as JsonObject)?["positive"]?.GetValue<string>();
            if (string.IsNullOrWhiteSpace(q) || string.IsNullOrWhiteSpace(p))
                throw new InvalidDataException($"{path}:{line}: expected non-empty string fields \"query\" and \"positive\".");
            pairs.Add(new ContrastivePair(q, p));
        }
        if (pairs.Count < 2) throw new InvalidDataException($"{path}: {pairs.Count} pairs; in-batch negatives need at least 2.");
        return pairs;
    }

    /// <summary>Writes <paramref name="pairs"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, IEnumerable<ContrastivePair> pairs)
        => AtomicFile.WriteAllText(path, string.Concat(pairs.Select(p => new JsonObject { ["query"] = p.Query, ["positive"] = p.Positive }.ToJsonString() + "\n")));
}

/// <summary>Settings of <see cref="ContrastiveTrainer"/>.</summary>
public sealed record ContrastiveOptions
{
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 500;
    /// <summary>Pairs per step (each pair's positive is a negative for the others).</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Peak learning rate (linear warmup, cosine decay to <see cref="MinLearningRate"/>).</summary>
    public float LearningRate { get; init; } = 1e-3f;
    /// <summary>Final learning rate.</summary>
    public float MinLearningRate { get; init; } = 1e-4f;
    /// <summary>Warmup steps.</summary>
    public long WarmupSteps { get; init; } = 20;
    /// <summary>Softmax temperature τ of the similarities.</summary>
    public float Temperature { get; init; } = 0.05f;
    /// <summary>Both directions (query→positive and positive→query).</summary>
    public bool Symmetric { get; init; } = true;
    /// <summary>Tokens kept of a query (BOS included).</summary>
    public int MaxQueryTokens { get; init; } = 64;
    /// <summary>Tokens kept of a positive (BOS included).</summary>
    public int MaxPositiveTokens { get; init; } = 128;
    /// <summary>Global gradient-norm clip (0 = off).</summary>
    public float ClipNorm { get; init; } = 1f;
    /// <summary>AdamW weight decay.</summary>
    public float WeightDecay { get; init; } = 0.01f;
    /// <summary>Pairs held out to report validation loss and in-batch accuracy.</summary>
    public int ValidationPairs { get; init; } = 256;
    /// <summary>Seed of the pair order.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Checks the ranges; returns this.</summary>
    public ContrastiveOptions Validate()
    {
        if (Steps < 1) throw new ArgumentException($"contrastive training: --steps must be ≥ 1, got {Steps}.");
        if (BatchSize < 2) throw new ArgumentException($"contrastive training: --batch must be ≥ 2 (in-batch negatives), got {BatchSize}.");
        if (!(Temperature > 0)) throw new ArgumentException($"contrastive training: --temperature must be > 0, got {Temperature}.");
        if (MaxQueryTokens < 2 || MaxPositiveTokens < 2) throw new ArgumentException("contrastive training: token limits must be ≥ 2.");
        return this;
    }
}

/// <summary>One step's report.</summary>
/// <param name="Step">Steps done.</param>
/// <param name="Loss">InfoNCE loss of the batch (nats).</param>
/// <param name="Accuracy">Fraction of queries whose own positive scored highest in the batch.</param>
/// <param name="LearningRate">Learning rate used.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record ContrastiveStep(int Step, double Loss, double Accuracy, float LearningRate, double Seconds);

/// <summary>
/// Fine-tunes a Tessera model as a bi-encoder (one shared encoder for queries and passages) with
/// InfoNCE over in-batch negatives (<see cref="InfoNce"/>). The embedding is the engine's, so the
/// saved checkpoint drops into <c>tessera index build --model</c> and the funnel's dense stage.
/// No gradient reaches an untied language-model head (only weight decay moves it); with tied
/// embeddings the head is the embedding table and changes with it. The MoE router terms are not
/// added: the router trains only through the contrastive loss.
/// </summary>
public sealed class ContrastiveTrainer : IDisposable
{
    readonly Transformer model;
    readonly ITokenizer tokenizer;
    readonly int? bos;
    readonly ContrastiveOptions options;
    readonly AdamW optimizer;
    readonly LearningRateSchedule schedule;

    /// <summary>Trains <paramref name="model"/> (not owned) with texts encoded by <paramref name="tokenizer"/>, <paramref name="bos"/> first when given.</summary>
    public ContrastiveTrainer(Transformer model, ITokenizer tokenizer, int? bos, ContrastiveOptions options)
    {
        this.model = model; this.tokenizer = tokenizer; this.bos = bos;
        this.options = options.Validate();
        optimizer = new AdamW(model.Parameters.All, options.LearningRate, 0.9f, 0.999f, 1e-8f, options.WeightDecay, model.Parameters.Decays);
        schedule = new LearningRateSchedule(options.LearningRate, options.MinLearningRate, options.WarmupSteps, options.Steps);
    }

    /// <summary>Steps done.</summary>
    public int Step { get; private set; }

    /// <summary>One optimizer step on <paramref name="batch"/>.</summary>
    public ContrastiveStep TrainStep(IReadOnlyList<ContrastivePair> batch)
    {
        var clock = Stopwatch.StartNew();
        float lr = schedule.At(Step);
        optimizer.LearningRate = lr;
        model.Parameters.ZeroGrad();
        double loss, acc;
        using (var g = new Graph())
        {
            var l = BuildLoss(g, batch, out acc);
            loss = l.Item();
            g.Backward(l);
        }
        if (options.ClipNorm > 0) GradClip.ClipGlobalNorm(model.Parameters.All, options.ClipNorm);
        optimizer.Step();
        Step++;
        return new ContrastiveStep(Step, loss, acc, lr, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Loss and in-batch accuracy of <paramref name="pairs"/> in batches of the training size, without gradients.</summary>
    public (double Loss, double Accuracy) Evaluate(IReadOnlyList<ContrastivePair> pairs)
    {
        double loss = 0, acc = 0;
        int n = 0;
        for (int at = 0; at + options.BatchSize <= pairs.Count; at += options.BatchSize)
        {
            using var g = new Graph(recordGradients: false);
            loss += BuildLoss(g, pairs.Skip(at).Take(options.BatchSize).ToList(), out double a).Item();
            acc += a; n++;
        }
        return n == 0 ? (double.NaN, double.NaN) : (loss / n, acc / n);
    }

    Tensor BuildLoss(Graph g, IReadOnlyList<ContrastivePair> batch, out double accuracy)
    {
        var (qIds, qLen, tq) = Pack(batch.Select(p => p.Query), options.MaxQueryTokens);
        var (pIds, pLen, tp) = Pack(batch.Select(p => p.Positive), options.MaxPositiveTokens);
        var qh = model.Forward(g, qIds, batch.Count, tq).Hidden;
        var ph = model.Forward(g, pIds, batch.Count, tp).Hidden;
        var loss = InfoNce.Loss(g, qh, qLen, ph, pLen, options.Temperature, options.Symmetric);
        accuracy = InBatchAccuracy(qh, qLen, tq, ph, pLen, tp);
        return loss;
    }

    /// <summary>Token rows padded to the longest (BOS first, cut to <paramref name="max"/>); padding sits after the text, so causal attention keeps it out of the real positions.</summary>
    (int[] Ids, int[] Lengths, int T) Pack(IEnumerable<string> texts, int max)
    {
        var rows = texts.Select(t =>
        {
            var ids = new List<int>();
            if (bos is { } b) ids.Add(b);
            ids.AddRange(tokenizer.Encode(t));
            int cap = Math.Min(max, model.Config.ContextLength);
            if (ids.Count > cap) ids.RemoveRange(cap, ids.Count - cap);
            if (ids.Count == 0) throw new ArgumentException("contrastive training: a text encodes to no tokens and the model has no BOS token.");
            return ids;
        }).ToList();
        int t = rows.Max(r => r.Count);
        var packed = new int[rows.Count * t];
        for (int i = 0; i < rows.Count; i++) rows[i].CopyTo(packed, i * t);
        return (packed, rows.Select(r => r.Count).ToArray(), t);
    }

    static double InBatchAccuracy(Tensor qh, int[] qLen, int tq, Tensor ph, int[] pLen, int tp)
    {
        int b = qLen.Length, d = qh.Dim(1);
        var q = Pool(qh.AsSpan("InfoNCE"), qLen, tq, d);
        var p = Pool(ph.AsSpan("InfoNCE"), pLen, tp, d);
        int right = 0;
        for (int i = 0; i < b; i++)
        {
            int best = 0; double bestScore = double.NegativeInfinity;
            for (int j = 0; j < b; j++)
            {
                double s = 0;
                for (int k = 0; k < d; k++) s += q[i][k] * p[j][k];
                if (s > bestScore) { bestScore = s; best = j; }
            }
            if (best == i) right++;
        }
        return (double)right / b;
    }

    static double[][] Pool(ReadOnlySpan<float> h, int[] len, int t, int d)
    {
        var rows = new double[len.Length][];
        for (int i = 0; i < len.Length; i++)
        {
            var u = rows[i] = new double[d];
            for (int pos = 0; pos < len[i]; pos++)
                for (int k = 0; k < d; k++) u[k] += h[(i * t + pos) * d + k];
            double n = Math.Sqrt(u.Sum(v => v * v));
            for (int k = 0; k < d; k++) u[k] /= n;
        }
        return rows;
    }

    /// <summary>
    /// Trains for <see cref="ContrastiveOptions.Steps"/> over <paramref name="pairs"/> (the first
    /// <see cref="ContrastiveOptions.ValidationPairs"/> of a seeded shuffle held out), reshuffling
    /// each epoch; reports every step and the validation figures before and after.
    /// </summary>
    public ContrastiveSummary Run(IReadOnlyList<ContrastivePair> pairs, Action<ContrastiveStep>? stepDone = null, Action<string>? progress = null, CancellationToken cancel = default)
    {
        var rng = new Random(options.Seed);
        var order = pairs.ToList();
        Shuffle(order, rng);
        int held = Math.Min(options.ValidationPairs, order.Count / 5);
        var val = order.Take(held).ToList();
        var train = order.Skip(held).ToList();
        if (train.Count < options.BatchSize) throw new ArgumentException($"contrastive training: {train.Count} training pairs for a batch of {options.BatchSize}.");
        var before = Evaluate(val);
        progress?.Invoke($"contrastive: {train.Count:N0} training pairs, {val.Count} validation pairs; validation loss {before.Loss:F3}, in-batch accuracy {before.Accuracy:P1} before training");
        var clock = Stopwatch.StartNew();
        int at = 0;
        ContrastiveStep? last = null;
        while (Step < options.Steps)
        {
            cancel.ThrowIfCancellationRequested();
            if (at + options.BatchSize > train.Count) { Shuffle(train, rng); at = 0; }
            last = TrainStep(train.GetRange(at, options.BatchSize));
            at += options.BatchSize;
            stepDone?.Invoke(last);
        }
        var after = Evaluate(val);
        progress?.Invoke($"contrastive: validation loss {after.Loss:F3}, in-batch accuracy {after.Accuracy:P1} after {Step} steps ({clock.Elapsed.TotalSeconds:F0} s)");
        return new ContrastiveSummary(Step, train.Count, val.Count, before.Loss, before.Accuracy, after.Loss, after.Accuracy, last?.Loss ?? double.NaN, clock.Elapsed.TotalSeconds);
    }

    static void Shuffle<T>(List<T> list, Random rng)
    {
        for (int i = list.Count - 1; i > 0; i--) { int j = rng.Next(i + 1); (list[i], list[j]) = (list[j], list[i]); }
    }

    /// <summary>Frees the optimizer state.</summary>
    public void Dispose() => optimizer.Dispose();
}

/// <summary>What a contrastive run did.</summary>
/// <param name="Steps">Optimizer steps.</param>
/// <param name="TrainPairs">Training pairs.</param>
/// <param name="ValidationPairs">Held-out pairs.</param>
/// <param name="ValidationLossBefore">Validation InfoNCE loss before training.</param>
/// <param name="ValidationAccuracyBefore">Validation in-batch accuracy before training.</param>
/// <param name="ValidationLossAfter">Validation InfoNCE loss after training.</param>
/// <param name="ValidationAccuracyAfter">Validation in-batch accuracy after training.</param>
/// <param name="FinalTrainLoss">Last step's batch loss.</param>
/// <param name="Seconds">Training wall time.</param>
public sealed record ContrastiveSummary(int Steps, int TrainPairs, int ValidationPairs, double ValidationLossBefore, double ValidationAccuracyBefore,
    double ValidationLossAfter, double ValidationAccuracyAfter, double FinalTrainLoss, double Seconds);
