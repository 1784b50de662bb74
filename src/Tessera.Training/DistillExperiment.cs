using System.Text.Json;
using System.Diagnostics;
using Tessera.Model;

namespace Tessera.Training;

/// <summary>One validation point of a learning curve.</summary>
public sealed record CurvePoint(long Step, long Tokens, double Loss, double BitsPerByte);

/// <summary>A trained student: held-out loss (nats/token) and bits per byte after the last step, its curve and cost.</summary>
public sealed record StudentResult(string Name, double ValLoss, double BitsPerByte, double FinalTrainLoss, IReadOnlyList<CurvePoint> Curve,
    double Seconds, string? Checkpoint);

/// <summary>What <see cref="DistillExperiment.Run"/> measured.</summary>
public sealed record DistillResult(
    ModelConfig TeacherConfig, ModelConfig StudentConfig, TrainOptions Train, DistillOptions Distill,
    double TeacherValLoss, double TeacherBitsPerByte, StudentResult Scratch, StudentResult Distilled,
    long CacheWindows, long CacheBytes, double CacheSeconds, long ValidationTokensEvaluated)
{
    /// <summary>Scratch bpb − distilled bpb: positive when distillation helped.</summary>
    public double BitsPerByteGain => Scratch.BitsPerByte - Distilled.BitsPerByte;
}

/// <summary>
/// The distillation experiment: the same student architecture trained twice on the same tokens in
/// the same order from the same initial weights — once from scratch (cross-entropy only) and once
/// distilled from the teacher (<see cref="DistillObjective"/>) — with the teacher's, the scratch
/// student's and the distilled student's held-out bits per byte measured on the same validation
/// windows. The teacher runs once, up front, to fill a <see cref="DistillCache"/> for exactly the
/// windows the student will read.
/// </summary>
public static class DistillExperiment
{
    /// <summary>Fewest optimizer steps a comparison is run for.</summary>
    public const long MinSteps = 10;

    /// <summary>
    /// Every check that can fail before work starts, each one clear line: options, vocabulary and
    /// context compatibility, data with a validation split, and a budget large enough to train.
    /// </summary>
    public static void Check(ModelConfig teacher, ModelConfig student, TrainOptions options, DistillOptions distill, TrainData data)
    {
        distill.Validate();
        options.Validate();
        student.Validate();
        if (teacher.VocabSize != student.VocabSize)
            throw new ArgumentException($"Teacher/student vocabulary mismatch: the teacher has {teacher.VocabSize} tokens, the student {student.VocabSize}; distillation needs the same tokenizer.");
        if (options.SequenceLength > teacher.ContextLength)
            throw new ArgumentException($"Sequence length {options.SequenceLength} exceeds the teacher's context length {teacher.ContextLength}.");
        if (options.SequenceLength > student.ContextLength)
            throw new ArgumentException($"Sequence length {options.SequenceLength} exceeds the student's context length {student.ContextLength}.");
        if (distill.TopK > teacher.VocabSize)
            throw new ArgumentException($"Distillation top-k {distill.TopK} exceeds the vocabulary of {teacher.VocabSize}.");
        if (data.Train is not { Count: > 0 }) throw new ArgumentException("Distillation needs training shards.");
        foreach (var s in data.Train)
            if (s.VocabSize > student.VocabSize)
                throw new ArgumentException($"Teacher/student vocabulary mismatch: the training shard {s.Path} was tokenized for {s.VocabSize} tokens, the models have {student.VocabSize}.");
        if (data.Validation is not { Count: > 0 } || data.ValidationBytes <= 0)
            throw new ArgumentException("Distillation compares held-out bits per byte: it needs validation shards and their byte count.");
        if (options.Steps < MinSteps || options.Steps <= options.WarmupSteps)
            throw new ArgumentException($"A budget of {options.Steps} steps is too small to train: the comparison needs at least {MinSteps} steps and more than the {options.WarmupSteps} warmup steps.");
    }

    /// <summary>
    /// Runs the experiment. Students checkpoint into <paramref name="outDir"/>/scratch and
    /// /distilled (<paramref name="checkpointExtras"/> may add files, e.g. the tokenizer); the
    /// teacher cache is <paramref name="cachePath"/> (default <paramref name="outDir"/>/teacher-topk.bin;
    /// a matching file from an earlier run is reused). <paramref name="log"/> gets progress lines.
    /// </summary>
    public static DistillResult Run(Transformer teacher, ModelConfig student, TrainOptions options, DistillOptions distill, TrainData data,
        string outDir, string? cachePath = null, Action<string>? log = null, Action<string>? checkpointExtras = null, CancellationToken cancel = default,
        bool resume = false)
    {
        Check(teacher.Config, student, options, distill, data);
        // Checkpoints every tenth of the run make a killed experiment resumable (--resume); they do not change the numbers.
        options = options with { CheckpointEvery = options.CheckpointEvery > 0 ? options.CheckpointEvery : Math.Max(1, options.Steps / 10), KeepCheckpoints = 1 };
        Directory.CreateDirectory(outDir);
        cachePath ??= Path.Combine(outDir, "teacher-topk.bin");

        double teacherLoss, teacherBpb; long evalTokens;
        using (var judge = new Trainer(teacher, options, data))
        {
            var e = judge.Evaluate();
            (teacherLoss, teacherBpb, evalTokens) = (e.Loss, e.BitsPerByte, e.Tokens);
        }
        log?.Invoke($"teacher: held-out {teacherLoss:F4} nats/token, {teacherBpb:F4} bits/byte ({evalTokens:N0} tokens)");

        var scratch = TrainStudent("scratch", student, options, data, Path.Combine(outDir, "scratch"), null, log, checkpointExtras, cancel, resume);

        var clock = Stopwatch.StartNew();
        var planned = DistillCache.PlannedWindows(data.Train, options);
        using var cache = DistillCache.Build(cachePath, teacher, data.Train, options.SequenceLength, distill.TopK, distill.Temperature, planned, distill.TeacherBatch,
            (done, total) => { if (done == total || done % (distill.TeacherBatch * 64) == 0) log?.Invoke($"teacher cache: {done}/{total} windows"); });
        double cacheSeconds = clock.Elapsed.TotalSeconds;
        log?.Invoke($"teacher cache: {planned.Count} windows × {options.SequenceLength} positions × top-{distill.TopK} in {cacheSeconds:F1} s → {cache.Path}");

        var objective = new DistillObjective(cache, distill, student);
        var distilled = TrainStudent("distilled", student, options, data, Path.Combine(outDir, "distilled"), objective, log, checkpointExtras, cancel, resume);
        return new DistillResult(teacher.Config, student, options, distill, teacherLoss, teacherBpb, scratch, distilled,
            planned.Count, cache.FileBytes, cacheSeconds, evalTokens);
    }

    const string CurveFile = "curve.json";

    static StudentResult TrainStudent(string name, ModelConfig config, TrainOptions options, TrainData data, string dir,
        DistillObjective? objective, Action<string>? log, Action<string>? checkpointExtras, CancellationToken cancel, bool resume)
    {
        bool resuming = resume && Checkpoint.List(dir).Count > 0;
        if (!resuming && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        var clock = Stopwatch.StartNew();
        using var trainer = resuming ? Trainer.Resume(dir, data, options.Steps) : new Trainer(config, options, data, dir);
        if (resuming)
        {
            // The checkpoint says which objective it was trained with; it must be this one.
            var saved = trainer.ObjectiveReference;
            var wanted = objective?.Reference;
            if (saved != wanted)
                throw new ArgumentException($"{dir}: the checkpoint was trained with {Describe(saved)}, this run asks for {Describe(wanted)}; start afresh without --resume.");
            log?.Invoke($"{name}: resuming at step {trainer.Step}/{options.Steps}");
        }
        if (objective is not null)
        {
            trainer.Objective = objective.Loss;
            trainer.ObjectiveReference = objective.Reference;
        }
        // The curve so far lives beside the checkpoints (written before each one), so a resumed run reports all of it.
        string curvePath = Path.Combine(dir, CurveFile);
        var curve = resuming && File.Exists(curvePath)
            ? (JsonSerializer.Deserialize<List<CurvePoint>>(File.ReadAllText(curvePath), Tessera.Kernels.IO.JsonNaming.Line) ?? [])
                // Only the points an uninterrupted run has: an evaluation made because the run was stopped is off the schedule.
                .Where(c => c.Step <= trainer.Step && (c.Step == 0 || c.Step == options.Steps || (options.EvalEvery > 0 && c.Step % options.EvalEvery == 0))).ToList()
            : [];
        trainer.Evaluated = e =>
        {
            curve.Add(new CurvePoint(e.Step, e.Step * options.TokensPerStep, e.Loss, e.BitsPerByte));
            log?.Invoke($"{name} @ {e.Step}: val loss {e.Loss:F4} | {e.BitsPerByte:F4} bits/byte");
        };
        trainer.CheckpointExtras = staging =>
        {
            checkpointExtras?.Invoke(staging);
            Tessera.Kernels.IO.AtomicFile.WriteAllText(curvePath, JsonSerializer.Serialize(curve, Tessera.Kernels.IO.JsonNaming.Line));
        };
        long every = Math.Max(1, options.Steps / 10);
        trainer.StepCompleted = r =>
        {
            if (r.Step % every == 0 || r.Step == 1)
                log?.Invoke($"{name} step {r.Step}/{r.Steps} | ce {r.Loss:F4} | loss {r.TotalLoss:F4}" +
                            (objective is null ? "" : $" | T²·KL {objective.LastKL:F4}") + $" | {r.TokensPerSecond:N0} tok/s");
        };
        if (!resuming) trainer.Evaluate();                // step 0: both students start from the same weights
        var last = trainer.Run(cancel);
        string? checkpoint = Checkpoint.List(dir) is { Count: > 0 } saved2 ? saved2[^1] : null;
        var final = curve[^1];
        return new StudentResult(name, final.Loss, final.BitsPerByte, last?.Loss ?? double.NaN, curve, clock.Elapsed.TotalSeconds, checkpoint);
    }

    static string Describe(DistillReference? r) => r is null ? "plain cross-entropy" : $"distillation from {r.CachePath} ({r.Options})";
}
