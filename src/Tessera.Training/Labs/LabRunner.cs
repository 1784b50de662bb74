using System.Diagnostics;
using System.Text.Json;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Model;

namespace Tessera.Training.Labs;

/// <summary>
/// How every run of a lab trains: the same batch shape, learning-rate schedule (warmup then
/// cosine to a tenth), seed and evaluation windows, so runs differ only in what the lab varies.
/// The defaults (256-token steps, a high peak LR) suit the labs' tiny models and budgets, where
/// a run of a few hundred thousand tokens must still take hundreds of optimizer steps.
/// </summary>
public sealed record LabTraining
{
    /// <summary>Sequences per step.</summary>
    public int BatchSize { get; init; } = 4;
    /// <summary>Tokens per sequence.</summary>
    public int SequenceLength { get; init; } = 64;
    /// <summary>Peak learning rate at width ≤ <see cref="LearningRateWidth"/>.</summary>
    public float LearningRate { get; init; } = 1e-2f;
    /// <summary>
    /// Wider models get LearningRate · LearningRateWidth / dim (0 = one rate for all): Adam's
    /// per-weight step must shrink like 1/width for the update of a layer's output to stay the
    /// same size (the μP rule). One rate for every width would favour the smallest models.
    /// </summary>
    public int LearningRateWidth { get; init; } = 32;
    /// <summary>
    /// The cosine schedule ends at this share of the peak rate. Low, because with the labs' small
    /// batches the last steps' gradient noise otherwise decides a run's final loss.
    /// </summary>
    public double MinLearningRateShare { get; init; } = 0.01;
    /// <summary>Share of the steps spent warming up.</summary>
    public double WarmupFraction { get; init; } = 0.05;
    /// <summary>Validation batches per evaluation: the same windows, evenly spread over the validation split, for every run.</summary>
    public int EvalBatches { get; init; } = 128;
    /// <summary>Seeds weights, data order and dropout masks.</summary>
    public ulong Seed { get; init; } = 1337;
    /// <summary>A run shorter than this many steps is refused as "budget too small to train".</summary>
    public long MinSteps { get; init; } = 20;

    /// <summary>Tokens one optimizer step consumes.</summary>
    public long TokensPerStep => (long)BatchSize * SequenceLength;

    /// <summary>Peak learning rate of a model of width <paramref name="dim"/>.</summary>
    public float LearningRateFor(int dim) => LearningRateWidth > 0 && dim > LearningRateWidth ? LearningRate * LearningRateWidth / dim : LearningRate;

    /// <summary>The trainer options of a run of <paramref name="steps"/> steps of a model of width <paramref name="dim"/>.</summary>
    public TrainOptions Options(long steps, int dim) => new TrainOptions
    {
        Steps = steps, BatchSize = BatchSize, SequenceLength = SequenceLength, LearningRate = LearningRateFor(dim),
        MinLearningRate = (float)(LearningRateFor(dim) * MinLearningRateShare), WarmupSteps = Math.Max(1, (long)Math.Round(steps * WarmupFraction)),
        EvalEvery = 0, EvalBatches = EvalBatches, CheckpointEvery = 0, Seed = Seed,
    }.Validate();
}

/// <summary>
/// One training run of a lab: a model trained on <see cref="Tokens"/> tokens, drawn from the
/// whole training pool or, when <see cref="UniqueTokens"/> &gt; 0, from a subset of that many
/// unique tokens repeated for as many epochs as it takes.
/// </summary>
public sealed record LabRunSpec(string Name, ModelConfig Config, long Tokens, long UniqueTokens = 0);

/// <summary>What one lab run measured. FLOPs = <see cref="FlopsPerToken"/> × tokens (attention and lm_head included).</summary>
public sealed record LabRunResult(
    string Name, int Layers, int Dim, int Experts, int TopK, float Dropout,
    long Parameters, long ActiveParameters, long NonEmbeddingParameters,
    long Steps, long Tokens, long UniqueTokens, double Epochs, double FlopsPerToken, double Flops,
    double FinalTrainLoss, double ValLoss, double Seconds, double TokensPerSecond);

/// <summary>
/// Trains lab runs in-process and caches each result as <c>runs/NAME.json</c> in the lab
/// folder, keyed by everything that determines it, so an interrupted sweep resumes where it
/// stopped and a re-run with unchanged settings only re-fits.
/// </summary>
public sealed class LabRunner(LabCorpus corpus, LabTraining training, string? folder, Action<string>? log = null)
{
    /// <summary>The corpus runs read.</summary>
    public LabCorpus Corpus => corpus;
    /// <summary>The shared training settings.</summary>
    public LabTraining Training => training;

    /// <summary>Optimizer steps a run of <paramref name="tokens"/> tokens takes (rounded to whole steps).</summary>
    public long StepsFor(long tokens) => Math.Max(0, (long)Math.Round((double)tokens / training.TokensPerStep));

    /// <summary>
    /// Every check that can fail before a run trains, as one clear <see cref="ArgumentException"/>:
    /// a budget too small for <see cref="LabTraining.MinSteps"/> steps, a unique-token subset too
    /// small for one window or larger than the pool, a vocabulary or context mismatch.
    /// </summary>
    public void Check(LabRunSpec spec)
    {
        spec.Config.Validate();
        long steps = StepsFor(spec.Tokens);
        if (steps < training.MinSteps)
            throw new ArgumentException($"Run {spec.Name}: a budget of {spec.Tokens:N0} tokens is {steps} steps of {training.TokensPerStep:N0} tokens, too small to train (at least {training.MinSteps} steps); raise the compute budget or shrink the model.");
        if (spec.Config.VocabSize < corpus.VocabSize)
            throw new ArgumentException($"Run {spec.Name}: the model's vocabulary ({spec.Config.VocabSize}) is smaller than the data's ({corpus.VocabSize}).");
        if (training.SequenceLength > spec.Config.ContextLength)
            throw new ArgumentException($"Run {spec.Name}: sequence length {training.SequenceLength} exceeds the model's context length {spec.Config.ContextLength}.");
        long pool = corpus.Train.TokenCount;
        if (spec.UniqueTokens > pool)
            throw new ArgumentException($"Run {spec.Name}: {spec.UniqueTokens:N0} unique tokens requested but the training pool holds {pool:N0}.");
        if (spec.UniqueTokens is > 0 && spec.UniqueTokens < training.SequenceLength + 1)
            throw new ArgumentException($"Run {spec.Name}: {spec.UniqueTokens:N0} unique tokens cannot fill one window of {training.SequenceLength + 1}.");
        if (pool < training.SequenceLength + 1 || corpus.Validation.TokenCount < training.SequenceLength + 1)
            throw new ArgumentException($"The lab data is too small for sequence length {training.SequenceLength}: train {pool:N0}, validation {corpus.Validation.TokenCount:N0} tokens.");
    }

    /// <summary>The cached result of <paramref name="spec"/> when one with the same key exists, else null.</summary>
    public LabRunResult? Cached(LabRunSpec spec)
    {
        if (folder is null) return null;
        string path = CachePath(spec);
        if (!File.Exists(path)) return null;
        return FromCache(File.ReadAllText(path), Key(spec));
    }

    /// <summary>The result in a cache file's text when its key is <paramref name="key"/> (snake_case or the PascalCase of older files), else null.</summary>
    internal static LabRunResult? FromCache(string json, string key)
    {
        try
        {
            var cached = JsonNaming.Deserialize<CachedRun>(json);
            return cached is not null && cached.Key == key ? cached.Result : null;
        }
        catch (JsonException) { return null; }
    }

    /// <summary>Trains <paramref name="spec"/> (or returns its cached result) and caches what it measured.</summary>
    public LabRunResult Run(LabRunSpec spec, CancellationToken cancel = default)
    {
        Check(spec);
        if (Cached(spec) is { } hit)
        {
            log?.Invoke($"  {spec.Name}: cached (val loss {hit.ValLoss:F4})");
            return hit;
        }
        var config = spec.Config;
        long steps = StepsFor(spec.Tokens);
        var options = training.Options(steps, config.Dim);
        string scratch = folder is null ? Directory.CreateTempSubdirectory("tessera-lab-").FullName : Path.Combine(folder, "runs");
        Directory.CreateDirectory(scratch);
        string subsetPath = Path.Combine(scratch, spec.Name + ".train.bin");
        // One token more than the budget: windows of T + 1 tokens advance by T, so U + 1 tokens hold U/T whole windows.
        TokenShard? subset = spec.UniqueTokens > 0 ? corpus.WriteSubset(subsetPath, Math.Min(spec.UniqueTokens + 1, corpus.Train.TokenCount), training.Seed) : null;
        try
        {
            // Exactly EvalBatches batches of windows; a piece boundary inside a window only mixes context.
            string samplePath = Path.Combine(scratch, "validation-sample.bin");
            using var sample = corpus.WriteValidationSample(samplePath, (long)training.EvalBatches * training.TokensPerStep + 1);
            var data = new TrainData([subset ?? corpus.Train], [sample]);
            using var trainer = new Trainer(config, options, data);
            var clock = Stopwatch.StartNew();
            long every = Math.Max(1, steps / 4);
            double lastLoss = double.NaN;
            trainer.StepCompleted = r =>
            {
                lastLoss = r.Loss;
                if (r.Step % every == 0 && r.Step != r.Steps)
                    log?.Invoke($"    step {r.Step}/{r.Steps} loss {r.Loss:F4} | {r.TokensPerSecond:N0} tok/s | ETA {r.Eta.TotalSeconds:F0} s");
            };
            EvalReport? eval = null;
            trainer.Evaluated = e => eval = e;
            trainer.Run(cancel);
            cancel.ThrowIfCancellationRequested();
            double seconds = clock.Elapsed.TotalSeconds;
            long tokens = steps * training.TokensPerStep;
            long unique = spec.UniqueTokens > 0 ? spec.UniqueTokens : corpus.Train.TokenCount;
            double perToken = config.TrainingFlopsPerToken(training.SequenceLength);
            var result = new LabRunResult(spec.Name, config.Layers, config.Dim, config.Experts, config.TopK, config.Dropout,
                config.ParameterCount, config.ActiveParameterCount, LabModels.NonEmbeddingParameters(config),
                steps, tokens, unique, (double)tokens / unique, perToken, perToken * tokens,
                lastLoss, (eval ?? trainer.Evaluate()).Loss, seconds, tokens / Math.Max(seconds, 1e-9));
            if (!double.IsFinite(result.ValLoss))
                throw new InvalidOperationException($"Run {spec.Name} diverged (validation loss {result.ValLoss}); lower the learning rate.");
            if (folder is not null)
                AtomicFile.WriteAllText(CachePath(spec), JsonNaming.Serialize(new CachedRun(Key(spec), result)));
            log?.Invoke($"  {spec.Name}: val loss {result.ValLoss:F4} | N {result.NonEmbeddingParameters:N0} | D {tokens:N0} | C {result.Flops:0.00e+0} | {seconds:F0} s, {result.TokensPerSecond:N0} tok/s");
            return result;
        }
        finally
        {
            subset?.Dispose();
            if (File.Exists(subsetPath)) File.Delete(subsetPath);
            if (File.Exists(Path.Combine(scratch, "validation-sample.bin"))) File.Delete(Path.Combine(scratch, "validation-sample.bin"));
            if (folder is null) Directory.Delete(scratch, recursive: true);
        }
    }

    internal sealed record CachedRun(string Key, LabRunResult Result);

    string CachePath(LabRunSpec spec) => Path.Combine(folder!, "runs", spec.Name + ".json");

    /// <summary>Everything a run's result depends on: model, budget, subset, training settings and data.</summary>
    string Key(LabRunSpec spec)
        => $"{spec.Config.ToHuggingFaceJson()}|{spec.Tokens}|{spec.UniqueTokens}|{training}|{corpus.Train.TokenCount}|{corpus.Validation.TokenCount}|{corpus.VocabSize}|spread-validation|chunked-subsets";
}
