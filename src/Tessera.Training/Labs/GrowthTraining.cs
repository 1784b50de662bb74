using System.Diagnostics;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Model;

namespace Tessera.Training.Labs;

/// <summary>A held-out split a growth lab scores every model on (bits per byte needs its byte count).</summary>
public sealed record HeldOutSet(string Name, TokenShard Shard, long Bytes);

/// <summary>One evaluation of a growth lab run: after <see cref="Step"/> steps, <see cref="AddedFlops"/> training FLOPs past the shared base.</summary>
public sealed record CurvePoint(long Step, long Tokens, double AddedFlops, IReadOnlyList<double> Loss, IReadOnlyList<double> BitsPerByte);

/// <summary>
/// The pieces the upcycling and branch-train-mix labs share: a dense base trained once and cached
/// as a checkpoint, continued training of an existing model with evaluations along the way, and
/// scoring on several held-out sets with the trainer's own <see cref="Trainer.Evaluate"/>.
/// </summary>
public static class GrowthTraining
{
    /// <summary>
    /// Trainer options of a continuation of <paramref name="steps"/> steps: the lab's batch shape and
    /// schedule shape (warmup, cosine to a share of the peak), peak LR = the lab's rate for this width ×
    /// <paramref name="lrShare"/>.
    /// </summary>
    public static TrainOptions Options(LabTraining t, long steps, int dim, double lrShare, ulong seed)
    {
        float peak = (float)(t.LearningRateFor(dim) * lrShare);
        return new TrainOptions
        {
            Steps = steps, BatchSize = t.BatchSize, SequenceLength = t.SequenceLength, LearningRate = peak,
            MinLearningRate = (float)(peak * t.MinLearningRateShare), WarmupSteps = Math.Max(1, (long)Math.Round(steps * t.WarmupFraction)),
            EvalEvery = 0, EvalBatches = t.EvalBatches, CheckpointEvery = 0, Seed = seed, PeakFlops = 1,
        }.Validate();
    }

    /// <summary>
    /// The dense base: loaded from <c>folder/base</c> when a checkpoint made with the same key is there,
    /// else trained on <paramref name="train"/> for <paramref name="steps"/> steps and saved there.
    /// </summary>
    public static Transformer Base(ModelConfig config, LabTraining t, long steps, TokenShard train, string folder, Action<string>? log, CancellationToken cancel)
    {
        string dir = Path.Combine(folder, "base");
        string keyFile = Path.Combine(dir, "key.txt");
        string key = $"{config.ToHuggingFaceJson()}|{steps}|{t}|{train.TokenCount}|{train.VocabSize}";
        if (File.Exists(keyFile) && File.ReadAllText(keyFile) == key && Checkpoint.List(dir).Count > 0)
        {
            log?.Invoke($"  base: cached ({Checkpoint.List(dir)[^1]})");
            return Checkpoint.LoadModel(dir);
        }
        var options = t.Options(steps, config.Dim) with { PeakFlops = 1 };
        var model = new Transformer(config, t.Seed);
        try
        {
            var clock = Stopwatch.StartNew();
            using (var trainer = new Trainer(model, options, new TrainData([train])))
                for (long s = 0; s < steps; s++)
                {
                    cancel.ThrowIfCancellationRequested();
                    var r = trainer.TrainStep();
                    if ((s + 1) % Math.Max(1, steps / 4) == 0) log?.Invoke($"    base step {r.Step}/{steps} loss {r.Loss:F4} | {r.TokensPerSecond:N0} tok/s");
                }
            Directory.CreateDirectory(dir);
            Checkpoint.Save(dir, steps, model);
            AtomicFile.WriteAllText(keyFile, key);
            log?.Invoke($"  base: {steps} steps in {clock.Elapsed.TotalSeconds:F0} s → {dir}");
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The held-out set of <paramref name="corpus"/> a growth lab scores on: the labs' evaluation sample
    /// (<see cref="LabCorpus.WriteValidationSample"/>, evenly spread pieces, EvalBatches batches) written to
    /// <paramref name="path"/>; its byte count is the sample's tokens × the whole split's bytes per token.
    /// The caller disposes the shard.
    /// </summary>
    public static HeldOutSet Sample(LabCorpus corpus, string name, LabTraining t, string path)
    {
        var shard = corpus.WriteValidationSample(path, (long)t.EvalBatches * t.TokensPerStep + 1);
        long bytes = corpus.ValidationBytes <= 0 ? 0 : (long)Math.Round((double)shard.TokenCount * corpus.ValidationBytes / corpus.Validation.TokenCount);
        return new HeldOutSet(name, shard, bytes);
    }

    /// <summary>Mean validation loss (nats/token) and bits per byte of <paramref name="model"/> on each set.</summary>
    public static (double[] Loss, double[] BitsPerByte) Evaluate(Transformer model, IReadOnlyList<HeldOutSet> sets, LabTraining t)
    {
        var loss = new double[sets.Count];
        var bpb = new double[sets.Count];
        var options = t.Options(Math.Max(1, t.MinSteps), model.Config.Dim) with { PeakFlops = 1 };
        for (int i = 0; i < sets.Count; i++)
        {
            using var scorer = new Trainer(model, options, new TrainData([sets[i].Shard], [sets[i].Shard], sets[i].Bytes));
            var e = scorer.Evaluate();
            loss[i] = e.Loss;
            bpb[i] = e.BitsPerByte;
        }
        return (loss, bpb);
    }

    /// <summary>
    /// Trains <paramref name="model"/> in place for <paramref name="options"/>.Steps steps on
    /// <paramref name="train"/> (several shards: a mixture weighted by size) and evaluates it on
    /// <paramref name="sets"/> <paramref name="evaluations"/> times, evenly spaced (the last at the
    /// end). FLOPs count <paramref name="flopsPerToken"/> per training token from <paramref name="flopsBefore"/> on.
    /// </summary>
    public static List<CurvePoint> Continue(Transformer model, TrainOptions options, IReadOnlyList<TokenShard> train, IReadOnlyList<HeldOutSet> sets,
        LabTraining t, int evaluations, double flopsPerToken, double flopsBefore, string name, Action<string>? log, CancellationToken cancel)
    {
        var curve = new List<CurvePoint>();
        long steps = options.Steps, tokensPerStep = options.TokensPerStep;
        var clock = Stopwatch.StartNew();
        using var trainer = new Trainer(model, options, new TrainData(train));
        long next = 1;
        for (int e = 1; e <= evaluations; e++)
        {
            long until = Math.Max(next, (long)Math.Round((double)steps * e / evaluations));
            for (; next <= until; next++)
            {
                cancel.ThrowIfCancellationRequested();
                trainer.TrainStep();
            }
            long tokens = until * tokensPerStep;
            var (loss, bpb) = Evaluate(model, sets, t);
            curve.Add(new CurvePoint(until, tokens, flopsBefore + flopsPerToken * tokens, loss, bpb));
        }
        log?.Invoke($"  {name}: {steps} steps, {steps * tokensPerStep:N0} tokens in {clock.Elapsed.TotalSeconds:F0} s; held-out: {string.Join(", ", sets.Select((s, i) => $"{s.Name} {curve[^1].BitsPerByte[i]:F4} bpb"))}");
        return curve;
    }
}
