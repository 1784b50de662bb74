using System.Diagnostics;
using Tessera.Data;
using Tessera.Distributed;
using Tessera.Kernels;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Training;

/// <summary>
/// Pre-trains a <see cref="Transformer"/>: per step, <c>GradAccumulation</c> micro-batches of
/// (B, T) windows from a <see cref="BatchReader"/>, each loss scaled by 1/accumulation and
/// back-propagated; then global-norm clipping, the warmup + cosine learning rate, and one AdamW
/// step (weight decay on linear maps only, see <see cref="ModelParameters.Decays"/>).
/// <see cref="Run"/> adds periodic evaluation and checkpoints. Same seed, options, data and thread
/// count ⇒ bit-identical runs, including across <see cref="Resume"/>. Shards with a loss mask
/// (<see cref="TokenShard.HasLossMask"/>) are trained on their masked-in tokens only: the
/// cross-entropy is the mean over those positions.
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
    readonly Parallelism? parallel;
    readonly GradientReducer? reducer;
    readonly Zero1Shards? zero;
    readonly ExpertParallel? experts;
    readonly List<(Tensor[] W1, Tensor[] W3, Tensor[] W2)> expertWeights = [];
    readonly float[][][]? stash;         // per local slice, per parameter: the slice's gradient (single-process reference only)
    readonly int[]? sliceInputs, sliceTargets;
    readonly long[]? sliceWindows;
    readonly double[] sliceLoss, sliceTotal; // per (micro-batch, slice) of the global batch
    double sessionSeconds;
    long sessionSteps;
    double priorSeconds;

    /// <summary>
    /// A fresh run: the model is built from <paramref name="config"/> and initialised from
    /// <see cref="TrainOptions.Seed"/>. Checks every input first and throws one clear
    /// <see cref="ArgumentException"/> before allocating anything. Checkpoints go to
    /// <paramref name="runDirectory"/> (null = no checkpoints).
    /// </summary>
    /// <remarks>
    /// With <paramref name="parallel"/> the global batch is split over ranks (see
    /// <see cref="Parallelism"/>): every rank must make the same call; rank 0's initial weights are
    /// broadcast, only rank 0 writes checkpoints and evaluates in <see cref="Run"/>.
    /// </remarks>
    public Trainer(ModelConfig config, TrainOptions options, TrainData data, string? runDirectory = null, Parallelism? parallel = null)
        : this(CheckThenBuild(config, options, data, parallel), ownsModel: true, options, data, runDirectory, state: null, checkpoint: null, parallel)
    {
    }

    /// <summary>Trains an existing model (not disposed by the trainer), e.g. one loaded from elsewhere.</summary>
    public Trainer(Transformer model, TrainOptions options, TrainData data, string? runDirectory = null)
        : this(Checked(model, options, data, null), ownsModel: false, options, data, runDirectory, state: null, checkpoint: null, null)
    {
    }

    Trainer(Transformer model, bool ownsModel, TrainOptions options, TrainData data, string? runDirectory, TrainerState? state, string? checkpoint,
        Parallelism? parallel)
    {
        this.ownsModel = ownsModel;
        this.parallel = parallel;
        Model = model;
        Options = options;
        PeakFlops = options.PeakFlops > 0 ? options.PeakFlops : GemmPeak.PeakFlops(WorkerPool.Shared.ThreadCount);
        Data = data;
        RunDirectory = runDirectory;
        schedule = LearningRateSchedule.From(options);
        var parameters = model.Parameters;
        if (parallel is { Communicator.Size: > 1 })
        {
            // One set of starting weights everywhere (rank 0's), whatever each rank loaded or drew.
            foreach (var t in parameters.All) parallel.Communicator.Broadcast(t.AsSpan("Trainer"), root: 0);
            if (parallel.Zero1) zero = new Zero1Shards(parallel.Communicator, parameters.All);
            else if (parallel.ShardExperts)
            {
                experts = new ExpertParallel(parallel.Communicator, model.Config.Experts);
                var replicated = new List<Tensor>();
                var expertSet = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
                for (int l = 0; l < model.Config.Layers; l++)
                {
                    string m = $"model.layers.{l}.block_sparse_moe.experts.";
                    if (!parameters.Contains(m + "0.w1.weight")) continue;
                    var w = (new Tensor[model.Config.Experts], new Tensor[model.Config.Experts], new Tensor[model.Config.Experts]);
                    for (int e = 0; e < model.Config.Experts; e++)
                    {
                        w.Item1[e] = parameters[$"{m}{e}.w1.weight"]; w.Item2[e] = parameters[$"{m}{e}.w3.weight"]; w.Item3[e] = parameters[$"{m}{e}.w2.weight"];
                        expertSet.Add(w.Item1[e]); expertSet.Add(w.Item2[e]); expertSet.Add(w.Item3[e]);
                    }
                    expertWeights.Add(w);
                }
                foreach (var t in parameters.All) if (!expertSet.Contains(t)) replicated.Add(t);
                reducer = new GradientReducer(parallel.Communicator, replicated, parallel.BucketBytes); // expert gradients stay with their owners
            }
            else reducer = new GradientReducer(parallel.Communicator, parameters.All, parallel.BucketBytes);
        }
        else if (parallel is { Zero1: true }) zero = new Zero1Shards(parallel.Communicator, parameters.All);
        optimizer = new AdamW(zero?.Owned ?? parameters.All, options.LearningRate, options.Beta1, options.Beta2, options.AdamEpsilon, options.WeightDecay, parameters.Decays);
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
        // Shards with a loss mask (prompt/completion data) train on their completion tokens only.
        train = new BatchReader(data.Train, options.BatchSize, options.SequenceLength, options.Seed, options.ShuffleData, cursor, lossMask: true, options.AlignDocuments);
        inputs = new int[options.BatchSize * options.SequenceLength];
        targets = new int[inputs.Length];
        windows = new long[options.BatchSize];
        int slices = parallel?.Slices ?? 1;
        sliceLoss = new double[options.GradAccumulation * slices];
        sliceTotal = new double[sliceLoss.Length];
        if (parallel is not null)
        {
            int rows = options.BatchSize / slices;
            sliceInputs = new int[rows * options.SequenceLength];
            sliceTargets = new int[sliceInputs.Length];
            sliceWindows = new long[rows];
            if (parallel.LocalSlices > 1)
            {
                stash = new float[parallel.LocalSlices][][];
                for (int j = 0; j < stash.Length; j++)
                {
                    stash[j] = new float[parameters.Count][];
                    for (int i = 0; i < parameters.Count; i++) stash[j][i] = new float[parameters.All[i].Length];
                }
            }
        }
        if (data.Validation is { Count: > 0 } v)
            foreach (var s in v) validationTokens += s.TokenCount;
    }

    static Transformer CheckThenBuild(ModelConfig config, TrainOptions options, TrainData data, Parallelism? parallel)
    {
        parallel?.CheckSameRun(config, options, data, step: 0);
        config.Validate();
        CheckRun(config, options, data, parallel);
        return new Transformer(config, options.Seed);
    }

    static Transformer Checked(Transformer model, TrainOptions options, TrainData data, Parallelism? parallel)
    {
        CheckRun(model.Config, options, data, parallel);
        return model;
    }

    /// <summary>Every check that can fail before training starts, each a one-line message.</summary>
    static void CheckRun(ModelConfig config, TrainOptions options, TrainData data, Parallelism? parallel)
    {
        options.Validate();
        if (parallel is not null)
        {
            int n = parallel.Communicator.Size, slices = parallel.Slices;
            if (parallel.LocalSlices < 1 || (parallel.LocalSlices > 1 && n > 1))
                throw new ArgumentException($"Distributed training: {parallel.LocalSlices} local slices per rank; more than one is only the single-process reference (world size 1, here {n}).");
            if (options.BatchSize % slices != 0)
                throw new ArgumentException($"Distributed training: the batch of {options.BatchSize} sequences does not split into {slices} equal slices " +
                                            $"({n} rank(s) × {parallel.LocalSlices}); use a batch size divisible by {slices}.");
            if (parallel.ShardExperts && (!config.IsMoe || config.Experts % n != 0 || parallel.Zero1))
                throw new ArgumentException(!config.IsMoe ? "Expert parallelism needs an MoE model (experts > 1)."
                    : parallel.Zero1 ? "Expert parallelism and ZeRO-1 cannot be combined yet; choose one."
                    : $"Expert parallelism: {config.Experts} experts do not split evenly over {n} ranks; use a world size that divides the expert count.");
            if (slices > 1 && config.Dropout > 0)
                throw new ArgumentException($"Distributed training: dropout ({config.Dropout}) draws one mask stream per process, so sliced batches would not match; train with dropout 0.");
        }
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
    /// <remarks>With <paramref name="parallel"/>, every rank calls this on the same checkpoint; the world size may differ from the run that wrote it.</remarks>
    public static Trainer Resume(string path, TrainData data, long? steps = null, Parallelism? parallel = null)
    {
        string dir = Checkpoint.Resolve(path);
        var state = Checkpoint.LoadState(dir);
        // The peak belongs to the machine running now, not to the run: a resumed run measures it again.
        var options = ((steps is { } s ? state.Options with { Steps = s } : state.Options) with { PeakFlops = 0 }).Validate();
        var model = Checkpoint.LoadModelVerified(dir);
        try
        {
            parallel?.CheckSameRun(model.Config, options, data, state.Step);
            CheckRun(model.Config, options, data, parallel);
            return new Trainer(model, ownsModel: true, options, data, Path.GetDirectoryName(Path.GetFullPath(dir)), state, dir, parallel);
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
    /// <summary>FLOP/s that <see cref="StepReport.Mfu"/> divides by: <see cref="TrainOptions.PeakFlops"/>, or the measured <see cref="GemmPeak.PeakFlops"/> when that is 0.</summary>
    public double PeakFlops { get; }
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
    /// <summary>How the batch is spread (null: one process, one slice).</summary>
    public Parallelism? Parallel => parallel;
    /// <summary>The bucketed gradient reducer of a multi-rank data-parallel run (null otherwise): its timings feed the benchmarks.</summary>
    public GradientReducer? Reducer => reducer;
    /// <summary>True on the rank that writes checkpoints, evaluates and reports (rank 0; always in one process).</summary>
    public bool IsLeader => parallel is null || parallel.Communicator.Rank == 0;

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
        if (parallel is null)
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
        else (ce, total, loads) = SlicedBackward(objective);
        double clip = o.ClipNorm > 0 ? o.ClipNorm : double.PositiveInfinity;
        double norm = zero is not null ? GradClip.ClipGlobalNorm(zero.Owned, clip, zero.GatherChunkSums)
            // Expert parallelism: a chunk of an expert this rank does not own has no gradient here (sum 0);
            // the element-wise max over ranks picks the owner's sum and leaves the replicated ones as they are.
            : experts is not null ? GradClip.ClipGlobalNorm(Model.Parameters.All, clip, s => { parallel!.Communicator.Allreduce<double>(s, s, ReduceOp.Max); return s; })
            : GradClip.ClipGlobalNorm(Model.Parameters.All, clip);
        optimizer.Step();
        zero?.AllgatherWeights();
        Step++;
        TokensSeen += o.TokensPerStep;

        double seconds = clock.Elapsed.TotalSeconds;
        sessionSeconds += seconds;
        sessionSteps++;
        double tokensPerSecond = o.TokensPerStep / Math.Max(seconds, 1e-9);
        // Not clamped: a figure above 1 against a measured peak would mean the FLOP count is wrong.
        double mfu = Model.Config.TrainingFlopsPerToken(o.SequenceLength) * tokensPerSecond / PeakFlops;
        var eta = TimeSpan.FromSeconds(sessionSeconds / sessionSteps * Math.Max(0, o.Steps - Step));
        var report = new StepReport(Step, o.Steps, ce, total, LearningRate, norm, TokensSeen, seconds, tokensPerSecond,
            TimeSpan.FromSeconds(priorSeconds + sessionSeconds), eta, mfu, loads ?? []);
        StepCompleted?.Invoke(report);
        return report;
    }

    /// <summary>
    /// The data-parallel forward/backward of one step: every micro-batch's global batch is read on
    /// every rank (same reader, same cursor) and this rank computes its slices alone, each loss
    /// scaled by 1/(accumulation·slices). Micro-batches accumulate in place; only the last one's
    /// backward feeds the bucket reducer, so nothing is communicated during accumulation. The
    /// single-process reference keeps each slice's gradient apart and adds them in slice order.
    /// Reported losses are gathered and added in (micro-batch, slice) order, the same on any world size.
    /// </summary>
    (double Ce, double Total, ExpertLoad[]? Loads) SlicedBackward(Func<Graph, ModelOutput, TrainBatch, Tensor>? objective)
    {
        var o = Options;
        var p = parallel!;
        var comm = p.Communicator;
        var all = Model.Parameters.All;
        int accum = o.GradAccumulation, slices = p.Slices, local = p.LocalSlices, rows = o.BatchSize / slices, T = o.SequenceLength;
        float scale = 1f / (accum * slices);
        var sliceBatch = objective is null ? null : new TrainBatch(sliceInputs!, sliceTargets!, sliceWindows!, rows, T);
        ExpertLoad[]? loads = null;
        var mine = new double[2 * accum * local];
        experts?.BeginStep();
        for (int m = 0; m < accum; m++)
        {
            train.Next(inputs, targets, objective is null ? default : windows);
            for (int j = 0; j < local; j++)
            {
                int s = comm.Rank * local + j;
                inputs.AsSpan(s * rows * T, rows * T).CopyTo(sliceInputs);
                targets.AsSpan(s * rows * T, rows * T).CopyTo(sliceTargets);
                if (objective is not null) windows.AsSpan(s * rows, rows).CopyTo(sliceWindows);
                if (stash is not null && m > 0)
                    for (int i = 0; i < all.Count; i++) stash[j][i].CopyTo(all[i].Grad!.AsSpan("Trainer"));
                else if (stash is not null) Model.Parameters.ZeroGrad();
                using var g = new Graph { DropoutRng = rng, Experts = experts };
                if (reducer is not null && m == accum - 1)
                {
                    reducer.Begin();
                    g.LeafGradientReady = reducer.OnGradientReady;
                }
                var output = Model.Forward(g, sliceInputs, rows, T, sliceTargets);
                var loss = objective is null ? output.Loss! : objective(g, output, sliceBatch!);
                mine[2 * (m * local + j)] = output.CrossEntropy!.Item();
                mine[2 * (m * local + j) + 1] = loss.Item();
                g.Backward(scale == 1f ? loss : g.Scale(loss, scale));
                loads = Accumulate(loads, output.ExpertLoads);
                if (stash is not null)
                    for (int i = 0; i < all.Count; i++) all[i].Grad!.AsSpan("Trainer").CopyTo(stash[j][i]);
            }
        }
        if (stash is not null)
            for (int i = 0; i < all.Count; i++)
            {
                var gi = all[i].Grad!.AsSpan("Trainer");
                stash[0][i].CopyTo(gi);
                for (int j = 1; j < local; j++) OrderedSum.AddInOrder(gi, stash[j][i]);
            }
        experts?.FinishGradients();
        reducer?.Finish();
        zero?.ReduceScatterGradients();

        // Losses: every rank's (micro-batch, slice) values, added in that order.
        var gathered = new double[mine.Length * comm.Size];
        comm.Allgather<double>(mine, gathered);
        double ce = 0, total = 0;
        for (int m = 0; m < accum; m++)
            for (int s = 0; s < slices; s++)
            {
                int at = 2 * ((s / local) * accum * local + m * local + s % local);
                ce += gathered[at] / (accum * slices);
                total += gathered[at + 1] / (accum * slices);
            }
        return (ce, total, loads);
    }

    static ExpertLoad[] Accumulate(ExpertLoad[]? sum, IReadOnlyList<ExpertLoad> add)
    {
        if (sum is null) return [.. add];
        for (int i = 0; i < sum.Length; i++) sum[i] = sum[i].Plus(add[i]);
        return sum;
    }

    /// <summary>
    /// Mean validation cross-entropy over up to EvalBatches batches of the validation split, read in
    /// file order from its start (the same windows every time), and bits per byte. With a loss mask
    /// on the validation shards the loss is over their trained tokens and bits per byte is NaN.
    /// </summary>
    public EvalReport Evaluate()
    {
        if (Data.Validation is not { Count: > 0 } shards) throw new InvalidOperationException("Evaluate: this run has no validation shards.");
        var o = Options;
        var reader = new BatchReader(shards, o.BatchSize, o.SequenceLength, o.Seed, shuffle: false, lossMask: true, alignDocuments: o.AlignDocuments);
        // A split smaller than one batch is evaluated as one smaller batch.
        int batch = (int)Math.Min(o.BatchSize, reader.WindowCount);
        if (batch < o.BatchSize) reader = new BatchReader(shards, batch, o.SequenceLength, o.Seed, shuffle: false, lossMask: true, alignDocuments: o.AlignDocuments);
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
        // A masked loss is over the trained tokens only, so it has no bytes-per-token to convert with (NaN).
        long bytes = reader.AppliesLossMask ? 0 : Data.ValidationBytes;
        var report = new EvalReport(Step, loss, EvalReport.BitsPerByteOf(loss, validationTokens, bytes), batches * ids.Length, loads ?? []);
        Evaluated?.Invoke(report);
        return report;
    }

    /// <summary>
    /// Expert parallelism: copies every expert's weights and moments from its owner to all ranks
    /// (every rank must call it; <see cref="Run"/> does before evaluating and checkpointing).
    /// A no-op otherwise.
    /// </summary>
    public void SynchronizeExperts() => experts?.Synchronize(expertWeights, optimizer);

    /// <summary>ZeRO-1: an AdamW over every parameter holding the owners' moments (for checkpoints).</summary>
    AdamW GatherMoments()
    {
        var all = Model.Parameters.All;
        var o = Options;
        var full = new AdamW(all, optimizer.LearningRate, o.Beta1, o.Beta2, o.AdamEpsilon, o.WeightDecay, Model.Parameters.Decays) { StepCount = optimizer.StepCount };
        try
        {
            zero!.Gather(optimizer.FirstMoment, [.. Enumerable.Range(0, all.Count).Select(full.FirstMoment)]);
            zero.Gather(optimizer.SecondMoment, [.. Enumerable.Range(0, all.Count).Select(full.SecondMoment)]);
            return full;
        }
        catch { full.Dispose(); throw; }
    }

    /// <summary>The state a checkpoint stores besides weights and moments.</summary>
    public TrainerState State => new()
    {
        Step = Step, TokensSeen = TokensSeen, OptimizerStep = optimizer.StepCount, Cursor = train.Cursor,
        Rng = Convert.ToHexString(rng.State.ToBytes()), LearningRate = LearningRate,
        ElapsedSeconds = priorSeconds + sessionSeconds, Options = Options, Distillation = ObjectiveReference,
    };

    /// <summary>Writes a checkpoint of the current step to the run folder and prunes old ones; returns its folder.</summary>
    /// <remarks>
    /// Distributed: every rank calls it (ZeRO-1 gathers the moment shards first); only rank 0
    /// writes, the others return an empty string once it has.
    /// </remarks>
    public string SaveCheckpoint()
    {
        if (RunDirectory is null) throw new InvalidOperationException("SaveCheckpoint: this trainer has no run folder.");
        using var full = zero is null ? null : GatherMoments();
        SynchronizeExperts();
        if (!IsLeader)
        {
            parallel!.Communicator.Barrier();
            return "";
        }
        string dir = Checkpoint.Save(RunDirectory, Step, Model, full ?? optimizer, State, CheckpointExtras);
        if (parallel is { Communicator.Size: > 1 }) parallel.Communicator.Barrier();
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
            if (canEval && (end || (Options.EvalEvery > 0 && Step % Options.EvalEvery == 0)))
            {
                SynchronizeExperts();
                if (IsLeader) Evaluate();
            }
            if (RunDirectory is not null && (end || (Options.CheckpointEvery > 0 && Step % Options.CheckpointEvery == 0))) SaveCheckpoint();
            if (cancel.IsCancellationRequested) break;
        }
        SynchronizeExperts(); // every rank ends with the whole model
        return last;
    }

    /// <summary>Frees the optimizer state, and the model when the trainer built or loaded it.</summary>
    public void Dispose()
    {
        experts?.Dispose();
        optimizer.Dispose();
        if (ownsModel) Model.Dispose();
    }
}
