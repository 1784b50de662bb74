using System.CommandLine;
using System.Text.Json;
using Tessera.Data;
using Tessera.Model;
using Tessera.Text;
using Tessera.Training;
using Tessera.Training.Experiments;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera distill</c>: trains one student architecture twice on the same tokens — from scratch
/// and distilled from a teacher run — and writes results.json, report.md and bpb.svg with the
/// teacher's, the scratch student's and the distilled student's held-out bits per byte.
/// </summary>
public static class DistillCommand
{
    /// <summary>Builds the <c>tessera distill</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var teacher = new Option<string?>("--teacher") { Description = "Teacher: a checkpoint, a run folder, or a quickstart folder (its model/); `quick` trains a tiny one (the default with --quick)." };
        var student = new Option<string?>("--student") { Description = $"Student preset ({string.Join(", ", ModelConfig.Presets.Keys)}; default tiny), changed by the shape flags below." };
        var layers = new Option<int?>("--layers") { Description = "Student transformer blocks." };
        var dim = new Option<int?>("--dim") { Description = "Student residual width." };
        var heads = new Option<int?>("--heads") { Description = "Student query heads." };
        var kvHeads = new Option<int?>("--kv-heads") { Description = "Student key/value heads." };
        var hidden = new Option<int?>("--hidden") { Description = "Student SwiGLU width (per expert for an MoE)." };
        var experts = new Option<int?>("--experts") { Description = "Student experts per layer (1 = dense)." };
        var topK = new Option<int?>("--top-k") { Description = "Student experts per token." };
        var context = new Option<int?>("--context") { Description = "Student context length." };
        var studentTokenizer = new Option<string?>("--student-tokenizer") { Description = "Tokenizer the student is meant for (checked: it must be the teacher's)." };
        var data = new Option<string?>("--data") { Description = "Prepared data (meta.json) in the teacher's tokenizer (default: the teacher run's data/, else the embedded corpus)." };
        var output = new Option<string>("--out") { Description = "Run folder for the students, the teacher cache and the report.", DefaultValueFactory = _ => "runs/distill" };
        var cache = new Option<string?>("--cache") { Description = "Teacher-logit cache file (default OUT/teacher-topk.bin; reused when it matches)." };
        var steps = new Option<long?>("--steps") { Description = "Optimizer steps for each student (default 600; quick 60)." };
        var batch = new Option<int?>("--batch") { Description = "Sequences per step (default 16; quick 8)." };
        var seq = new Option<int?>("--seq") { Description = "Tokens per sequence (default 128; quick 64)." };
        var lr = new Option<float?>("--lr") { Description = "Peak learning rate (default 4e-3; quick 5e-3)." };
        var warmup = new Option<long?>("--warmup") { Description = "Warmup steps (default steps/20)." };
        var evalEvery = new Option<long?>("--eval-every") { Description = "Evaluate both students every N steps (default steps/10)." };
        var evalBatches = new Option<int?>("--eval-batches") { Description = "Validation batches per evaluation (default 16; quick 8)." };
        var alpha = new Option<float>("--alpha") { Description = "Weight of the distillation term (1 − alpha weighs cross-entropy).", DefaultValueFactory = _ => 0.5f };
        var temperature = new Option<float>("--temperature") { Description = "Softmax temperature of the distillation term.", DefaultValueFactory = _ => 1f };
        var logitsTopK = new Option<int>("--logits-top-k") { Description = "Teacher logits cached per position.", DefaultValueFactory = _ => 64 };
        var renormalise = new Option<bool>("--renormalise") { Description = "Renormalise the teacher over its top-k instead of keeping the rest of its mass as one bin." };
        var seed = new Option<ulong>("--seed") { Description = "Seed for the students' weights and data order.", DefaultValueFactory = _ => 1337UL };
        var resume = new Option<bool>("--resume") { Description = "Continue a killed run: each student resumes from its latest checkpoint (the distilled one with its saved objective), the teacher cache from the windows it holds." };
        var quick = new Option<bool>("--quick") { Description = "CI size: a tiny teacher on the embedded corpus (unless --teacher), a tiny student, 60 steps; checks the pipeline in about a minute." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("distill", "Distil a teacher into a smaller student and compare with the same student trained from scratch on the same tokens.")
        {
            teacher, student, layers, dim, heads, kvHeads, hidden, experts, topK, context, studentTokenizer, data, output, cache,
            steps, batch, seq, lr, warmup, evalEvery, evalBatches, alpha, temperature, logitsTopK, renormalise, seed, quick, resume, json,
        };
        cmd.SetAction((p, cancel) =>
        {
            bool asJson = p.GetValue(json), isQuick = p.GetValue(quick);
            string outDir = p.GetValue(output)!;
            Action<string>? log = asJson ? null : Console.WriteLine;
            var distill = new DistillOptions
            {
                Alpha = p.GetValue(alpha), Temperature = p.GetValue(temperature), TopK = p.GetValue(logitsTopK), TailBin = !p.GetValue(renormalise),
            }.Validate();
            var baseOptions = isQuick ? DistillQuick.StudentOptions : new TrainOptions { Steps = 600, BatchSize = 16, SequenceLength = 128, LearningRate = 4e-3f, MinLearningRate = 4e-4f, EvalBatches = 16 };
            long n = p.GetValue(steps) ?? baseOptions.Steps;
            var options = baseOptions with
            {
                Steps = n, BatchSize = p.GetValue(batch) ?? baseOptions.BatchSize, SequenceLength = p.GetValue(seq) ?? baseOptions.SequenceLength,
                LearningRate = p.GetValue(lr) ?? baseOptions.LearningRate, MinLearningRate = (p.GetValue(lr) ?? baseOptions.LearningRate) / 10,
                WarmupSteps = p.GetValue(warmup) ?? Math.Max(1, n / 20), EvalEvery = p.GetValue(evalEvery) ?? Math.Max(1, n / 10),
                EvalBatches = p.GetValue(evalBatches) ?? baseOptions.EvalBatches, Seed = p.GetValue(seed),
            };
            options.Validate();
            if (options.Steps < DistillExperiment.MinSteps || options.Steps <= options.WarmupSteps)
                throw new ArgumentException($"--steps {options.Steps} is too small to train: the comparison needs at least {DistillExperiment.MinSteps} steps and more than the {options.WarmupSteps} warmup steps.");

            // The teacher: its checkpoint, tokenizer and (by default) data, all resolved before any work.
            string teacherArg = p.GetValue(teacher) ?? (isQuick ? "quick" : throw new ArgumentException("--teacher is required (a checkpoint, run folder or quickstart folder), or use --quick."));
            bool quickTeacher = teacherArg == "quick";
            string? checkpoint = quickTeacher ? null : ResolveTeacher(teacherArg);
            string tokenizerDir = quickTeacher ? Path.Combine(outDir, "quick", "tokenizer") : TeacherTokenizer(checkpoint!);
            ModelConfig? teacherConfig = checkpoint is null ? null
                : ModelConfig.FromHuggingFaceJson(File.ReadAllText(Path.Combine(checkpoint, Checkpoint.ConfigFile)), Path.Combine(checkpoint, Checkpoint.ConfigFile));
            if (p.GetValue(studentTokenizer) is { } st && !quickTeacher) CheckSameTokenizer(tokenizerDir, st);

            PreparedData prepared;
            if (quickTeacher) prepared = DistillQuick.PrepareEmbedded(Path.Combine(outDir, "quick"), log);
            else
            {
                var tok = RunSetup.LoadRunTokenizer(tokenizerDir);
                if (tok.VocabSize != teacherConfig!.VocabSize)
                    throw new ArgumentException($"Teacher/student vocabulary mismatch: the teacher has {teacherConfig.VocabSize} tokens, its tokenizer {tok.VocabSize}.");
                string tokSource = File.Exists(Path.Combine(tokenizerDir, "bytes")) ? "bytes" : tokenizerDir;
                string dataArg = p.GetValue(data) ?? TeacherData(teacherArg, tok.VocabSize) ?? "embedded";
                if (Directory.Exists(dataArg) && File.Exists(Path.Combine(dataArg, PreparedData.MetaFile)) && PreparedData.Load(dataArg).VocabSize != tok.VocabSize)
                    throw new ArgumentException($"Teacher/student vocabulary mismatch: {dataArg} was tokenized for {PreparedData.Load(dataArg).VocabSize} tokens, the teacher has {tok.VocabSize}.");
                prepared = RunSetup.ResolveData(dataArg, tokSource, Path.Combine(outDir, "data"), asJson);
            }
            int vocab = prepared.VocabSize;
            var studentConfig = isQuick && p.GetValue(layers) is null && p.GetValue(dim) is null && p.GetValue(student) is null
                ? DistillQuick.Student(vocab)
                : RunSetup.BuildConfig(p.GetValue(student) ?? "tiny", vocab, p.GetValue(layers), p.GetValue(dim), p.GetValue(heads), p.GetValue(kvHeads),
                    p.GetValue(hidden), p.GetValue(experts), p.GetValue(topK), p.GetValue(context), null, null);

            using var train = RunSetup.Open(prepared, Split.Train);
            using var val = RunSetup.Open(prepared, Split.Validation);
            var trainData = new TrainData([train], [val], prepared.Validation.Bytes);
            DistillExperiment.Check(teacherConfig ?? DistillQuick.Teacher(vocab), studentConfig, options, distill, trainData);

            string runTok = quickTeacher ? Path.Combine(outDir, "quick", "tokenizer") : tokenizerDir;
            Action<string> extras = staging => RunSetup.CopyTokenizer(File.Exists(Path.Combine(runTok, "bytes")) ? "bytes" : runTok, Path.Combine(staging, Checkpoint.TokenizerFolder));
            using var teacherModel = quickTeacher
                ? DistillQuick.TrainTeacher(trainData, vocab, Path.Combine(outDir, "quick", "teacher"), log, extras)
                : Checkpoint.LoadModel(checkpoint!);
            log?.Invoke($"teacher: {DistillReport.Describe(teacherModel.Config)}, {teacherModel.Config.ParameterCount:N0} params | student: {DistillReport.Describe(studentConfig)}, " +
                        $"{studentConfig.ParameterCount:N0} params | {options.Steps} steps × {options.TokensPerStep:N0} tokens each | α {distill.Alpha}, T {distill.Temperature}, top-{distill.TopK}" +
                        (distill.TailBin ? " + rest bin" : " renormalised"));
            var result = DistillExperiment.Run(teacherModel, studentConfig, options, distill, trainData, outDir, p.GetValue(cache), log, extras, cancel, p.GetValue(resume));
            string command = "tessera " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));
            var files = DistillReport.Write(outDir, result, command);
            if (asJson) Console.WriteLine(File.ReadAllText(Path.Combine(outDir, ExperimentReport.ResultsFile)));
            else
            {
                Console.WriteLine($"held-out bits/byte: teacher {result.TeacherBitsPerByte:F4} | student from scratch {result.Scratch.BitsPerByte:F4} | distilled student {result.Distilled.BitsPerByte:F4} " +
                                  $"(Δ {result.BitsPerByteGain:+0.0000;-0.0000})");
                Console.WriteLine($"report → {string.Join(", ", files)}");
            }
            return Task.FromResult(0);
        });
        return cmd;
    }

    /// <summary>The teacher's checkpoint folder from a checkpoint, a run folder or a quickstart folder.</summary>
    static string ResolveTeacher(string path)
    {
        if (!Directory.Exists(path)) throw new ArgumentException($"teacher run not found: {path}");
        string model = Path.Combine(path, "model");
        bool quickstart = !File.Exists(Path.Combine(path, Checkpoint.ManifestFile)) && Checkpoint.List(path).Count == 0 && Directory.Exists(model);
        return Checkpoint.Resolve(quickstart ? model : path);
    }

    /// <summary>The tokenizer folder a checkpoint carries, else its run folder's.</summary>
    static string TeacherTokenizer(string checkpoint)
    {
        foreach (var dir in new[] { Path.Combine(checkpoint, Checkpoint.TokenizerFolder), Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpoint))!, Checkpoint.TokenizerFolder) })
            if (Directory.Exists(dir)) return dir;
        throw new ArgumentException($"the teacher checkpoint {checkpoint} carries no tokenizer/ folder, so the student's vocabulary cannot be checked against it");
    }

    /// <summary>
    /// Prepared data beside the teacher in its vocabulary: data/ in the given folder, its parent or
    /// grandparent (a quickstart folder, its model/ run folder, or a checkpoint inside it).
    /// </summary>
    static string? TeacherData(string teacherArg, int vocab)
    {
        string? dir = Path.GetFullPath(teacherArg);
        for (int up = 0; up < 3 && dir is not null; up++, dir = Path.GetDirectoryName(dir))
        {
            string candidate = Path.Combine(dir, "data");
            if (File.Exists(Path.Combine(candidate, PreparedData.MetaFile)) && PreparedData.Load(candidate).VocabSize == vocab) return candidate;
        }
        return null;
    }

    /// <summary>Teacher and student must share one tokenizer: same vocabulary and the same files.</summary>
    static void CheckSameTokenizer(string teacherDir, string studentPath)
    {
        var a = RunSetup.LoadRunTokenizer(teacherDir);
        var b = TokenizerFiles.Load(studentPath);
        if (a.VocabSize != b.VocabSize)
            throw new ArgumentException($"Teacher/student vocabulary mismatch: the teacher's tokenizer has {a.VocabSize} tokens, {studentPath} has {b.VocabSize}.");
        if (Directory.Exists(studentPath))
            foreach (var f in Directory.GetFiles(teacherDir))
            {
                string other = Path.Combine(studentPath, Path.GetFileName(f));
                if (!File.Exists(other) || !File.ReadAllBytes(f).AsSpan().SequenceEqual(File.ReadAllBytes(other)))
                    throw new ArgumentException($"Teacher/student vocabulary mismatch: {studentPath} differs from the teacher's tokenizer ({Path.GetFileName(f)}).");
            }
    }
}
