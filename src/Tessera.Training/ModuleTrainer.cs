using System.Diagnostics;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Model.Modules;
using Tessera.Tensors;

namespace Tessera.Training;

/// <summary>One module-training step's figures.</summary>
public sealed record ModuleStepReport(long Step, long Steps, double Loss, float LearningRate, double GradNorm, double Seconds);

/// <summary>
/// Trains one module on a frozen base: every base tensor has RequiresGrad off (no gradient, no
/// optimizer state, bytes unchanged), the module is attached and routed on, and AdamW updates the
/// module's tensors only, on the cross-entropy of the new domain's data. The schedule, clipping
/// and data order are the ones <see cref="Trainer"/> uses. Checkpoints (the module folder plus
/// train-state/ with the AdamW moments, step and data cursor) make a resumed run continue exactly.
/// </summary>
public sealed class ModuleTrainer : IDisposable
{
    /// <summary>Name of the folder (inside the output folder) holding the module.</summary>
    public const string ModuleFolder = "module";
    const string StateFolder = "train-state";

    readonly AdamW optimizer;
    readonly BatchReader train;
    readonly LearningRateSchedule schedule;
    readonly int[] inputs, targets;
    readonly string baseHash;

    /// <summary>
    /// Starts (or, when <paramref name="outDir"/> holds a checkpoint and <paramref name="resume"/>, continues)
    /// training module <paramref name="spec"/> on <paramref name="baseModel"/> (not disposed here; it is frozen in place).
    /// </summary>
    public ModuleTrainer(Transformer baseModel, ModuleSpec spec, TrainOptions options, TrainData data, string? outDir, bool resume = false,
        string domain = "", string dataHash = "", RouterOff? routerOff = null)
    {
        if (routerOff is not null)
        {
            if (spec.Kind != ModuleKind.Experts) throw new ArgumentException($"Module '{spec.Id}': router-off training needs an experts module (a LoRA has no router).");
            if (routerOff.Weight <= 0 || !float.IsFinite(routerOff.Weight)) throw new ArgumentException($"router-off weight must be a positive number, got {routerOff.Weight}.");
            if (routerOff.BaseData.Train is not { Count: > 0 }) throw new ArgumentException("router-off training needs base-domain token shards.");
            if (resume) throw new ArgumentException("router-off training cannot resume (its base-domain cursor is not saved); start it again.");
        }
        RouterOffTraining = routerOff;
        options.Validate();
        if (data.Train is not { Count: > 0 }) throw new ArgumentException("Module training needs at least one token shard of the new domain.");
        foreach (var s in data.Train)
            if (s.VocabSize > baseModel.Config.VocabSize)
                throw new ArgumentException($"The shard {s.Path} was tokenized for a vocabulary of {s.VocabSize}, larger than the base's {baseModel.Config.VocabSize}: prepare it with the base's tokenizer.");
        if (options.SequenceLength > baseModel.Config.ContextLength)
            throw new ArgumentException($"Sequence length {options.SequenceLength} exceeds the base's context length {baseModel.Config.ContextLength}.");
        (Base, Options, Data, OutDir, Domain, DataHash) = (baseModel, options, data, outDir, domain, dataHash);
        baseHash = ModuleFile.BaseHash(baseModel);
        foreach (var t in baseModel.Parameters.All) t.RequiresGrad = false;   // frozen: no gradient, no optimizer state
        var cursor = default(DataCursor);
        string? stateDir = outDir is null ? null : Path.Combine(outDir, StateFolder);
        if (resume && stateDir is not null && Directory.Exists(stateDir))
        {
            string moduleDir = Path.Combine(outDir!, ModuleFolder);
            Module = ModuleFile.Load(moduleDir, baseModel, baseHash);
            var manifest = ModuleFile.ReadManifest(moduleDir);
            var state = JsonNaming.Deserialize<ModuleTrainState>(File.ReadAllText(Path.Combine(stateDir, "state.json")))
                        ?? throw new InvalidDataException($"{stateDir}/state.json is empty.");
            if (state.Step != manifest.Steps)
                throw new InvalidDataException($"{outDir}: the module was saved at step {manifest.Steps} but train-state at step {state.Step} (an interrupted checkpoint); cannot resume exactly.");
            Step = state.Step; cursor = new DataCursor(state.Epoch, state.Position);
        }
        else Module = new ModelModule(spec, baseModel.Config, options.Seed ^ 0x4D4F_4455_4C45UL);
        try { baseModel.Modules.Attach(Module); }
        catch { Module.Dispose(); throw; }
        baseModel.Modules.Route([Module.Id]);
        optimizer = new AdamW(Module.Parameters.All, options.LearningRate, options.Beta1, options.Beta2, options.AdamEpsilon, options.WeightDecay, Module.Parameters.Decays);
        if (Step > 0)
        {
            using var r = SafetensorsReader.Open(Path.Combine(stateDir!, "optimizer.safetensors"));
            for (int i = 0; i < Module.Parameters.Count; i++)
            {
                r.ReadFloat32(r.Entry($"m.{i}"), optimizer.FirstMoment(i).AsSpan("resume"));
                r.ReadFloat32(r.Entry($"v.{i}"), optimizer.SecondMoment(i).AsSpan("resume"));
            }
            optimizer.StepCount = Step;
        }
        schedule = LearningRateSchedule.From(options);
        train = new BatchReader(data.Train, options.BatchSize, options.SequenceLength, options.Seed, options.ShuffleData, cursor);
        inputs = new int[options.BatchSize * options.SequenceLength];
        targets = new int[inputs.Length];
        if (routerOff is not null)
            baseReader = new BatchReader(routerOff.BaseData.Train, options.BatchSize, options.SequenceLength, options.Seed + 7, options.ShuffleData, default);
    }

    readonly BatchReader? baseReader;

    /// <summary>
    /// Router-off training (null: off): besides the new domain's loss, each micro-batch adds
    /// <see cref="RouterOff.Weight"/> × the routers' cross-entropy towards entry 0 ("base only") on a
    /// batch of the base domain, and towards the best expert (entries 1..E) on the new-domain batch, so
    /// that with the module on the routers send base-domain tokens to the base alone.
    /// </summary>
    public RouterOff? RouterOffTraining { get; }

    /// <summary>Mean over the module's layers of the router cross-entropy of the latest forward: towards entry 0 (<paramref name="toBase"/>) or towards each token's best expert.</summary>
    Tensor RouterLoss(Graph g, bool toBase)
    {
        Tensor? sum = null;
        int layers = 0;
        foreach (var (_, logits) in Module.LastRouterLogits)
        {
            int n = logits.Dim(0), entries = logits.Dim(1);
            var goal = new int[n];
            if (!toBase)
            {
                var z = logits.AsSpan("RouterLoss");
                for (int i = 0; i < n; i++)
                {
                    int best = 1;
                    for (int e = 2; e < entries; e++) if (z[i * entries + e] > z[i * entries + best]) best = e;
                    goal[i] = best;
                }
            }
            var ce = g.CrossEntropy(logits, goal);
            sum = sum is null ? ce : g.Add(sum, ce);
            layers++;
        }
        return layers == 1 ? sum! : g.Scale(sum!, 1f / layers);
    }

    /// <summary>The frozen base (the module is attached to it).</summary>
    public Transformer Base { get; }
    /// <summary>The module being trained.</summary>
    public ModelModule Module { get; }
    /// <summary>Run options (steps, batch, learning rate…).</summary>
    public TrainOptions Options { get; }
    /// <summary>The new domain's data.</summary>
    public TrainData Data { get; }
    /// <summary>Output folder (null: no checkpoints).</summary>
    public string? OutDir { get; }
    /// <summary>Domain name recorded in the manifest.</summary>
    public string Domain { get; }
    /// <summary>Data hash recorded in the manifest.</summary>
    public string DataHash { get; }
    /// <summary>Completed optimizer steps.</summary>
    public long Step { get; private set; }
    /// <summary>Called after each step.</summary>
    public Action<ModuleStepReport>? StepCompleted { get; set; }

    /// <summary>One AdamW step of the module's weights over GradAccumulation micro-batches.</summary>
    public ModuleStepReport TrainStep()
    {
        var clock = Stopwatch.StartNew();
        var o = Options;
        float lr = schedule.At(Step);
        optimizer.LearningRate = lr;
        Module.Parameters.ZeroGrad();
        double loss = 0;
        for (int m = 0; m < o.GradAccumulation; m++)
        {
            train.Next(inputs, targets);
            using (var g = new Graph())
            {
                Module.LastRouterLogits.Clear();
                var ce = Base.Forward(g, inputs, o.BatchSize, o.SequenceLength, targets).CrossEntropy!;
                loss += ce.Item() / o.GradAccumulation;
                var total = RouterOffTraining is { } r ? g.Add(ce, g.Scale(RouterLoss(g, toBase: false), r.Weight)) : ce;
                g.Backward(o.GradAccumulation == 1 ? total : g.Scale(total, 1f / o.GradAccumulation));
            }
            if (RouterOffTraining is { } off)
            {
                baseReader!.Next(inputs, targets);   // the base domain: only the routers learn from it (towards "base only")
                using var g = new Graph();
                Module.LastRouterLogits.Clear();
                Base.Forward(g, inputs, o.BatchSize, o.SequenceLength);
                g.Backward(g.Scale(RouterLoss(g, toBase: true), off.Weight / o.GradAccumulation));
            }
        }
        double norm = GradClip.ClipGlobalNorm(Module.Parameters.All, o.ClipNorm > 0 ? o.ClipNorm : double.PositiveInfinity);
        optimizer.Step();
        Step++;
        var report = new ModuleStepReport(Step, o.Steps, loss, lr, norm, clock.Elapsed.TotalSeconds);
        StepCompleted?.Invoke(report);
        return report;
    }

    /// <summary>Trains to <see cref="TrainOptions.Steps"/>, checkpointing every CheckpointEvery steps and at the end; returns the module folder (or null without an output folder).</summary>
    public string? Run(CancellationToken cancel = default, IReadOnlyDictionary<string, double>? metrics = null)
    {
        while (Step < Options.Steps && !cancel.IsCancellationRequested)
        {
            TrainStep();
            if (OutDir is not null && Options.CheckpointEvery > 0 && Step % Options.CheckpointEvery == 0 && Step < Options.Steps) Save(metrics);
        }
        return OutDir is null ? null : Save(metrics);
    }

    /// <summary>Writes the module folder and the training state (each atomically); returns the module folder.</summary>
    public string Save(IReadOnlyDictionary<string, double>? metrics = null)
    {
        string moduleDir = Path.Combine(OutDir ?? throw new InvalidOperationException("ModuleTrainer: no output folder."), ModuleFolder);
        AtomicFile.PublishDirectory(Path.Combine(OutDir, StateFolder), staging =>
        {
            var tensors = new List<SafetensorsTensor>();
            for (int i = 0; i < Module.Parameters.Count; i++)
            {
                var shape = Module.Parameters.All[i].Shape.ToArray().Select(d => (long)d).ToArray();
                tensors.Add(SafetensorsTensor.F32($"m.{i}", shape, optimizer.FirstMoment(i).AsSpan("save")));
                tensors.Add(SafetensorsTensor.F32($"v.{i}", shape, optimizer.SecondMoment(i).AsSpan("save")));
            }
            SafetensorsWriter.Write(Path.Combine(staging, "optimizer.safetensors"), tensors);
            var c = train.Cursor;
            AtomicFile.WriteAllText(Path.Combine(staging, "state.json"), JsonNaming.Serialize(new ModuleTrainState(Step, c.Epoch, c.Position, baseHash)));
        });
        ModuleFile.Save(moduleDir, Module, baseHash, Domain, DataHash, metrics, Step);
        return moduleDir;
    }

    /// <summary>
    /// Held-out loss (nats/token) and bits per byte of <paramref name="model"/> as it is routed now, over the first
    /// <paramref name="batches"/> windows-batches of <paramref name="data"/>'s validation split in file order.
    /// </summary>
    public static (double Loss, double BitsPerByte) HeldOut(Transformer model, TrainData data, int batch, int seq, int batches)
    {
        if (data.Validation is not { Count: > 0 } shards) throw new ArgumentException("Held-out evaluation needs validation shards.");
        long tokens = 0; foreach (var s in shards) tokens += s.TokenCount;
        var reader = new BatchReader(shards, batch, seq, 0, shuffle: false);
        int b = (int)Math.Min(batch, reader.WindowCount);
        if (b < batch) reader = new BatchReader(shards, b, seq, 0, shuffle: false);
        long n = Math.Max(1, Math.Min(batches, reader.WindowCount / b));
        var ids = new int[b * seq]; var tgt = new int[ids.Length];
        double sum = 0;
        for (long i = 0; i < n; i++)
        {
            reader.Next(ids, tgt);
            using var g = new Graph(recordGradients: false);
            sum += model.Forward(g, ids, b, seq, tgt).CrossEntropy!.Item();
        }
        double loss = sum / n;
        return (loss, EvalReport.BitsPerByteOf(loss, tokens, data.ValidationBytes));
    }

    /// <summary>Detaches the module from the base and frees it and the optimizer (the base stays frozen and usable).</summary>
    public void Dispose()
    {
        Base.Modules.Detach(Module.Id);
        Base.Modules.Route(null);
        Module.Dispose();
        optimizer.Dispose();
    }
}

/// <summary>Router-off training: the base domain's data, and the weight of the router losses (see <see cref="ModuleTrainer.RouterOffTraining"/>).</summary>
public sealed record RouterOff(TrainData BaseData, float Weight = 1f);

/// <summary>train-state/state.json of a module run.</summary>
public sealed record ModuleTrainState(long Step, long Epoch, long Position, string BaseHash);
