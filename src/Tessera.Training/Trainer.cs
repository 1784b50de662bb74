using System.Diagnostics;
using Tessera.Data;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Training;

/// <summary>
/// Pre-trains a <see cref="Transformer"/>: per step, <c>GradAccumulation</c> micro-batches of
/// (B, T) windows from a <see cref="BatchReader"/>, each loss scaled by 1/accumulation and
/// back-propagated; then global-norm clipping, the warmup + cosine learning rate, and one AdamW
/// step (weight decay on linear maps only, see <see cref="ModelParameters.Decays"/>).
/// <see cref="Run"/> adds periodic evaluation and checkpoints. Same seed, options, data and thread
/// count ⇒ bit-identical runs, including across <see cref="Resume"/>.
/// </summary>
public sealed class Trainer : IDisposable
{
    readonly bool ownsModel;
    readonly AdamW optimizer;
    readonly BatchReader train;
    readonly Rng rng;
    readonly LearningRateSchedule schedule;
    readonly int[] inputs, targets;
    readonly long[] windows;
    readonly long validationTokens;
    double sessionSeconds;
    long sessionSteps;
    double priorSeconds;

    /// <summary>
    /// A fresh run: the model is built from <paramref name="config"/> and initialised from
    /// <see cref="TrainOptions.Seed"/>. Checks every input first and throws one clear
    /// <see cref="ArgumentException"/> before allocating anything. Checkpoints go to
    /// <paramref name="runDirectory"/> (null = no checkpoints).
    /// </summary>
    public Trainer(ModelConfig config, TrainOptions options, TrainData data, string? runDirectory = null)
        : this(CheckThenBuild(config, options, data), ownsModel: true, options, data, runDirectory, state: null, checkpoint: null)
    {
    }

    /// <summary>Trains an existing model (not disposed by the trainer), e.g. one loaded from elsewhere.</summary>
    public Trainer(Transformer model, TrainOptions options, TrainData data, string? runDirectory = null)
        : this(Checked(model, options, data), ownsModel: false, options, data, runDirectory, state: null, checkpoint: null)
    {
    }

    Trainer(Transformer model, bool ownsModel, TrainOptions options, TrainData data, string? runDirectory, TrainerState? state, string? checkpoint)
    {
        this.ownsModel = ownsModel;
        Model = model;
        Options = options;
        Data = data;
        RunDirectory = runDirectory;
        schedule = LearningRateSchedule.From(options);
        var parameters = model.Parameters;
        optimizer = new AdamW(parameters.All, options.LearningRate, options.Beta1, options.Beta2, options.AdamEpsilon, options.WeightDecay, parameters.Decays);
        rng = new Rng(options.Seed ^ 0x5452_4149_4E45_5221UL);
        var cursor = default(DataCursor);
        if (state is not null)
        {
            try { Checkpoint.LoadOptimizer(checkpoint!, optimizer, state.OptimizerStep); }
            catch { optimizer.Dispose(); throw; }
            Step = state.Step;
            TokensSeen = state.TokensSeen;
            cursor = state.Cursor;
            rng.State = state.RngState();
            priorSeconds = state.ElapsedSeconds;
            LearningRate = state.LearningRate;
            ObjectiveReference = state.Distillation;
        }
        train = new BatchReader(data.Train, options.BatchSize, options.SequenceLength, options.Seed, options.ShuffleData, cursor);
        inputs = new int[options.BatchSize * options.SequenceLength];
        targets = new int[inputs.Length];
        windows = new long[options.BatchSize];
        if (data.Validation is { Count: > 0 } v)
            foreach (var s in v) validationTokens += s.TokenCount;
    }

    static Transformer CheckThenBuild(ModelConfig config, TrainOptions options, TrainData data)
    {
        config.Validate();
        CheckRun(config, options, data);
        return new Transformer(config, options.Seed);
    }

    static Transformer Checked(Transformer model, TrainOptions options, TrainData data)
    {
        CheckRun(model.Config, options, data);
        return model;
    }

    /// <summary>Every check that can fail before training starts, each a one-line message.</summary>
    static void CheckRun(ModelConfig config, TrainOptions options, TrainData data)
    {
        options.Validate();
        if (options.SequenceLength > config.ContextLength)
            throw new ArgumentException($"Sequence length {options.SequenceLength} exceeds the model's context length {config.ContextLength}.");
        if (data.Train is null || data.Train.Count == 0) throw new ArgumentException("Training needs at least one token shard.");
        CheckShards("training", data.Train, config, options);
        if (data.Validation is { Count: > 0 } v) CheckShards("validation", v, config, options);
    }

    static void CheckShards(string split, IReadOnlyList<TokenShard> shards, ModelConfig config, TrainOptions options)
    {
        long longest = 0;
        foreach (var s in shards)
        {
            if (s.VocabSize > config.VocabSize)
                throw new ArgumentException($"The {split} shard {s.Path} was tokenized for a vocabulary of {s.VocabSize}, larger than the model's {config.VocabSize}.");
            longest = Math.Max(longest, s.TokenCount);
        }
        if (longest < options.SequenceLength + 1)
            throw new ArgumentException($"Context length {options.SequenceLength} is longer than the {split} data: a window needs {options.SequenceLength + 1} tokens in one shard, the largest has {longest}.");
    }

    /// <summary>
    /// Continues the run saved at <paramref name="path"/> (a checkpoint folder, or a run folder whose
    /// latest complete checkpoint is used) exactly where it stopped. The checkpoint is verified
    /// first; a corrupt file fails with an error naming it. <paramref name="steps"/> overrides the
    /// saved total (which also stretches the cosine schedule). New checkpoints go to the run folder.
    /// </summary>
    public static Trainer Resume(string path, TrainData data, long? steps = null)
    {
        string dir = Checkpoint.Resolve(path);
        var state = Checkpoint.LoadState(dir);
        var options = (steps is { } s ? state.Options with { Steps = s } : state.Options).Validate();
        var model = Checkpoint.LoadModelVerified(dir);
        try
        {
            CheckRun(model.Config, options, data);
            return new Trainer(model, ownsModel: true, options, data, Path.GetDirectoryName(Path.GetFullPath(dir)), state, dir);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The model being trained.</summary>
    public Transformer Model { get; }
    /// <summary>The run's options.</summary>
    public TrainOptions Options { get; }
    /// <summary>The data.</summary>
    public TrainData Data { get; }
    /// <summary>Where checkpoints go (null: nowhere).</summary>
    public string? RunDirectory { get; }
    /// <summary>Completed optimizer steps.</summary>
    public long Step { get; private set; }
    /// <summary>Training tokens consumed.</summary>
    public long TokensSeen { get; private set; }
    /// <summary>Learning rate of the latest step.</summary>
    public float LearningRate { get; private set; }
    /// <summary>The training reader's position.</summary>
    public DataCursor Cursor => train.Cursor;
    /// <summary>The optimizer (moments and step count).</summary>
    public AdamW Optimizer => optimizer;
    /// <summary>Trainer-level random stream (saved in checkpoints): dropout masks are drawn from it.</summary>
    public Rng Random => rng;

    /// <summary>Called after every step.</summary>
    public Action<StepReport>? StepCompleted { get; set; }
    /// <summary>Called after every evaluation.</summary>
    public Action<EvalReport>? Evaluated { get; set; }
    /// <summary>Called with the folder of every completed checkpoint.</summary>
    public Action<string>? CheckpointSaved { get; set; }
    /// <summary>
    /// Called with each checkpoint's staging folder before its manifest is written, to add files
    /// (the CLI copies the tokenizer into <see cref="Checkpoint.TokenizerFolder"/>).
    /// </summary>
    public Action<string>? CheckpointExtras { get; set; }
    /// <summary>
    /// Replaces the optimised loss of each micro-batch (null: the model's <see cref="ModelOutput.Loss"/>,
    /// cross-entropy plus router terms). Called after the forward pass with the graph, its output
    /// (targets given, so the cross-entropy is there) and the batch; returns a scalar on that graph.
    /// Step reports keep <see cref="StepReport.Loss"/> = cross-entropy and put this in TotalLoss.
    /// Distillation uses it; a hook cannot be saved, so set <see cref="ObjectiveReference"/> too.
    /// </summary>
    public Func<Graph, ModelOutput, TrainBatch, Tensor>? Objective { get; set; }

    /// <summary>
    /// What <see cref="Objective"/> is, saved in every checkpoint's trainer state; after
    /// <see cref="Resume"/> it holds the saved one, and <see cref="Run"/> refuses to continue a run
    /// that had an objective until the caller has rebuilt it (<see cref="DistillExperiment"/> does).
    /// </summary>
    public DistillReference? ObjectiveReference { get; set; }

    /// <summary>One optimizer step over GradAccumulation micro-batches.</summary>
    public StepReport TrainStep()
    {
        var clock = Stopwatch.StartNew();
        var o = Options;
        int accum = o.GradAccumulation;
        LearningRate = schedule.At(Step);
        optimizer.LearningRate = LearningRate;
        Model.Parameters.ZeroGrad();
        double ce = 0, total = 0;
        ExpertLoad[]? loads = null;
        var objective = Objective;
        var batch = objective is null ? null : new TrainBatch(inputs, targets, windows, o.BatchSize, o.SequenceLength);
        for (int m = 0; m < accum; m++)
        {
            train.Next(inputs, targets, objective is null ? default : windows);
            // Dropout masks come from the trainer's saved stream (unused when dropout is 0), so resume stays exact.
            using var g = new Graph { DropoutRng = rng };
            var output = Model.Forward(g, inputs, o.BatchSize, o.SequenceLength, targets);
            var loss = objective is null ? output.Loss! : objective(g, output, batch!);
            ce += output.CrossEntropy!.Item() / accum;
            total += loss.Item() / accum;
            g.Backward(accum == 1 ? loss : g.Scale(loss, 1f / accum));
            loads = Accumulate(loads, output.ExpertLoads);
        }
        double norm = GradClip.ClipGlobalNorm(Model.Parameters.All, o.ClipNorm > 0 ? o.ClipNorm : double.PositiveInfinity);
        optimizer.Step();
        Step++;
        TokensSeen += o.TokensPerStep;

        double seconds = clock.Elapsed.TotalSeconds;
        sessionSeconds += seconds;
        sessionSteps++;
        double tokensPerSecond = o.TokensPerStep / Math.Max(seconds, 1e-9);
        double mfu = Model.Config.TrainingFlopsPerToken(o.SequenceLength) * tokensPerSecond / o.PeakFlops;
        var eta = TimeSpan.FromSeconds(sessionSeconds / sessionSteps * Math.Max(0, o.Steps - Step));
        var report = new StepReport(Step, o.Steps, ce, total, LearningRate, norm, TokensSeen, seconds, tokensPerSecond,
            TimeSpan.FromSeconds(priorSeconds + sessionSeconds), eta, mfu, loads ?? []);
        StepCompleted?.Invoke(report);
        return report;
    }

    static ExpertLoad[] Accumulate(ExpertLoad[]? sum, IReadOnlyList<ExpertLoad> add)
    {
        if (sum is null) return [.. add];
        for (int i = 0; i < sum.Length; i++) sum[i] = sum[i].Plus(add[i]);
        return sum;
    }

    /// <summary>
    /// Mean validation cross-entropy over up to EvalBatches batches of the validation split, read in
    /// file order from its start (the same windows every time), and bits per byte.
    /// </summary>
    public EvalReport Evaluate()
    {
        if (Data.Validation is not { Count: > 0 } shards) throw new InvalidOperationException("Evaluate: this run has no validation shards.");
        var o = Options;
        var reader = new BatchReader(shards, o.BatchSize, o.SequenceLength, o.Seed, shuffle: false);
        // A split smaller than one batch is evaluated as one smaller batch.
        int batch = (int)Math.Min(o.BatchSize, reader.WindowCount);
        if (batch < o.BatchSize) reader = new BatchReader(shards, batch, o.SequenceLength, o.Seed, shuffle: false);
        long batches = Math.Min(o.EvalBatches, reader.WindowCount / batch);
        var ids = new int[batch * o.SequenceLength]; var tgt = new int[ids.Length];
        double sum = 0;
        ExpertLoad[]? loads = null;
        for (long i = 0; i < batches; i++)
        {
            reader.Next(ids, tgt);
            using var g = new Graph(recordGradients: false);
            var output = Model.Forward(g, ids, batch, o.SequenceLength, tgt);
            sum += output.CrossEntropy!.Item();
            loads = Accumulate(loads, output.ExpertLoads);
        }
        double loss = sum / batches;
        var report = new EvalReport(Step, loss, EvalReport.BitsPerByteOf(loss, validationTokens, Data.ValidationBytes), batches * ids.Length, loads ?? []);
        Evaluated?.Invoke(report);
        return report;
    }

    /// <summary>The state a checkpoint stores besides weights and moments.</summary>
    public TrainerState State => new()
    {
        Step = Step, TokensSeen = TokensSeen, OptimizerStep = optimizer.StepCount, Cursor = train.Cursor,
        Rng = Convert.ToHexString(rng.State.ToBytes()), LearningRate = LearningRate,
        ElapsedSeconds = priorSeconds + sessionSeconds, Options = Options, Distillation = ObjectiveReference,
    };

    /// <summary>Writes a checkpoint of the current step to the run folder and prunes old ones; returns its folder.</summary>
    public string SaveCheckpoint()
    {
        if (RunDirectory is null) throw new InvalidOperationException("SaveCheckpoint: this trainer has no run folder.");
        string dir = Checkpoint.Save(RunDirectory, Step, Model, optimizer, State, CheckpointExtras);
        Checkpoint.Prune(RunDirectory, Options.KeepCheckpoints);
        CheckpointSaved?.Invoke(dir);
        return dir;
    }

    /// <summary>
    /// Trains until <see cref="TrainOptions.Steps"/>, evaluating every EvalEvery steps and after the
    /// last (when there is validation data) and checkpointing every CheckpointEvery steps and after
    /// the last (when there is a run folder). Cancellation stops after the current step and saves
    /// a checkpoint. Returns the last step's report (null when no step was left).
    /// </summary>
    public StepReport? Run(CancellationToken cancel = default)
    {
        if (ObjectiveReference is { } saved && Objective is null)
            throw new InvalidOperationException($"This run trains with a distillation objective (teacher cache {saved.CachePath}); " +
                "continue it with `tessera distill --resume`, which rebuilds the objective, not as plain training.");
        StepReport? last = null;
        bool canEval = Data.Validation is { Count: > 0 };
        while (Step < Options.Steps)
        {
            last = TrainStep();
            bool end = Step == Options.Steps || cancel.IsCancellationRequested;
            if (canEval && (end || (Options.EvalEvery > 0 && Step % Options.EvalEvery == 0))) Evaluate();
            if (RunDirectory is not null && (end || (Options.CheckpointEvery > 0 && Step % Options.CheckpointEvery == 0))) SaveCheckpoint();
            if (cancel.IsCancellationRequested) break;
        }
        return last;
    }

    /// <summary>Frees the optimizer state, and the model when the trainer built or loaded it.</summary>
    public void Dispose()
    {
        optimizer.Dispose();
        if (ownsModel) Model.Dispose();
    }
}
