using System.CommandLine;
using System.Text.Json;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Distributed;
using Tessera.Model;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera train</c>: pre-train a dense or MoE transformer from a preset plus flags.</summary>
public static class TrainCommand
{
    /// <summary>Builds the <c>tessera train</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Prepared shards (a folder with meta.json), a text file/folder, or `embedded`.", DefaultValueFactory = _ => "embedded" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer directory or `bytes` (for text data; prepared data names its own).", DefaultValueFactory = _ => "bytes" };
        var output = new Option<string>("--out") { Description = "Run folder (checkpoints, tokenizer, data).", DefaultValueFactory = _ => "runs/train" };
        var resume = new Option<bool>("--resume") { Description = "Continue exactly from the latest complete checkpoint in --out." };
        var initFrom = new Option<string?>("--init-from") { Description = "Start from these weights (a run folder's latest checkpoint or a checkpoint folder) with a fresh optimizer and step count; the shape comes from its config.json." };
        var preset = new Option<string>("--preset") { Description = $"Model preset: {string.Join(", ", ModelConfig.Presets.Keys)}.", DefaultValueFactory = _ => "tiny-moe" };
        var arch = new Option<string?>("--arch") { Description = $"Architecture family: {string.Join(", ", Tessera.Model.Architectures.ArchitectureRegistry.Names)} (default: the preset's, llama)." };
        var headDim = new Option<int?>("--head-dim") { Description = "Per-head width (default dim / heads; Gemma and Qwen3 set it independently)." };
        var attnSoftCap = new Option<float?>("--attn-softcap") { Description = "Attention logit soft-cap (0 = off; Gemma2 uses 50)." };
        var finalSoftCap = new Option<float?>("--final-softcap") { Description = "Final logit soft-cap (0 = off; Gemma2 uses 30)." };
        var layers = new Option<int?>("--layers") { Description = "Transformer blocks." };
        var dim = new Option<int?>("--dim") { Description = "Residual width." };
        var heads = new Option<int?>("--heads") { Description = "Query heads (must divide dim)." };
        var kvHeads = new Option<int?>("--kv-heads") { Description = "Key/value heads (must divide heads)." };
        var hidden = new Option<int?>("--hidden") { Description = "SwiGLU width of the MLP or of each expert." };
        var experts = new Option<int?>("--experts") { Description = "Experts per MoE layer (1 = dense)." };
        var topK = new Option<int?>("--top-k") { Description = "Experts per token." };
        var context = new Option<int?>("--context") { Description = "Model context length." };
        var window = new Option<int?>("--window") { Description = "Sliding attention window (0 = full causal)." };
        var capacity = new Option<float?>("--capacity") { Description = "Expert capacity factor (0 = dropless)." };
        var dropout = new Option<float?>("--dropout") { Description = "Dropout on embeddings and residual branches (0 = off)." };
        var alignDocuments = new Option<bool>("--align-documents") { Description = "Start every training window at a document (for prompt/completion data whose answers need the whole prompt)." };
        var steps = new Option<long>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => 500 };
        var batch = new Option<int>("--batch") { Description = "Sequences per micro-batch.", DefaultValueFactory = _ => 8 };
        var seq = new Option<int>("--seq") { Description = "Tokens per sequence (≤ context).", DefaultValueFactory = _ => 128 };
        var accum = new Option<int>("--accum") { Description = "Micro-batches per optimizer step.", DefaultValueFactory = _ => 1 };
        var lr = new Option<float>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 3e-3f };
        var minLr = new Option<float>("--min-lr") { Description = "Final learning rate of the cosine decay.", DefaultValueFactory = _ => 3e-4f };
        var warmup = new Option<long>("--warmup") { Description = "Linear warmup steps.", DefaultValueFactory = _ => 50 };
        var clip = new Option<float>("--clip") { Description = "Global gradient-norm clip (0 = off).", DefaultValueFactory = _ => 1f };
        var wd = new Option<float>("--weight-decay") { Description = "AdamW weight decay (linear maps only).", DefaultValueFactory = _ => 0.1f };
        var evalEvery = new Option<long>("--eval-every") { Description = "Evaluate every N steps (0 = at the end).", DefaultValueFactory = _ => 100 };
        var evalBatches = new Option<int>("--eval-batches") { Description = "Validation batches per evaluation.", DefaultValueFactory = _ => 20 };
        var ckptEvery = new Option<long>("--checkpoint-every") { Description = "Checkpoint every N steps (0 = at the end).", DefaultValueFactory = _ => 100 };
        var seed = new Option<ulong>("--seed") { Description = "Seed for weights, data order and RNG.", DefaultValueFactory = _ => 1337UL };
        var distributed = new Option<bool>("--distributed") { Description = "Data-parallel over MPI (on by itself under mpirun): --batch is the global batch, split over the ranks." };
        var zero1 = new Option<bool>("--zero1") { Description = "With MPI: shard the AdamW moments over the ranks (ZeRO-1)." };
        var expertParallel = new Option<bool>("--expert-parallel") { Description = "With MPI: spread each MoE layer's experts over the ranks (all-to-all dispatch)." };
        var asyncMode = new Option<bool>("--async") { Description = "With MPI: asynchronous training, rank 0 applies gradients as workers push them; every update is logged to <out>/async-log.jsonl." };
        var replay = new Option<string?>("--replay") { Description = "Redo an asynchronous run from its log in this one process (same flags as the run); the weights match bit for bit." };
        var textFraction = new Option<double>("--text-fraction") { Description = "With --data shapes: fraction of text-only documents in the image–text stream.", DefaultValueFactory = _ => 0.1 };
        var causal = new Option<bool>("--causal") { Description = "With --data shapes: causal attention everywhere instead of prefix-LM over image + question." };
        var quick = new Option<bool>("--quick") { Description = "With --data shapes or fashion-mnist: the ≤ 5 min recipe." };
        var shapesExtras = ShapesCommands.ExtraOptions();
        var json = BenchCommand.JsonOption();
        var cmd = new Command("train", "Pre-train a dense or mixture-of-experts transformer of any registered architecture, with periodic eval and atomic checkpoints.")
        {
            data, tokenizer, output, resume, initFrom, preset, arch, headDim, attnSoftCap, finalSoftCap, layers, dim, heads, kvHeads, hidden, experts, topK, context, window, capacity, dropout,
            steps, batch, seq, accum, lr, minLr, warmup, clip, wd, evalEvery, evalBatches, ckptEvery, seed, distributed, zero1, expertParallel, asyncMode, replay, json,
            textFraction, causal, quick, alignDocuments,
        };
        foreach (var o in shapesExtras.All) cmd.Options.Add(o);   // shapes world: curriculum, video, embedder (docs/multimodal.md)
        foreach (var o in ModuleTrainCommand.All) cmd.Options.Add(o);   // module training on a frozen base (docs/modules.md)
        foreach (var o in ContrastiveTrainCommand.All) cmd.Options.Add(o);   // bi-encoder fine-tuning (docs/retrieval.md)
        foreach (var o in RetroTrainCommand.All) cmd.Options.Add(o);   // RETRO-style training with a passage index (docs/retrieval.md)
        cmd.SetAction((p, cancel) =>
        {
            if (p.GetValue(data) == "shapes")   // the image–text shapes world (docs/multimodal.md)
                return Task.FromResult(ShapesCommands.Train(ShapesCommands.Recipe(p.GetValue(quick), p.GetResult(steps) is null or { Implicit: true } ? null : (int)p.GetValue(steps),
                    p.GetResult(batch) is null or { Implicit: true } ? null : p.GetValue(batch), p.GetResult(lr) is null or { Implicit: true } ? null : p.GetValue(lr), p.GetValue(dim), p.GetValue(layers),
                    p.GetValue(textFraction), p.GetValue(causal), p.GetValue(seed)).With(shapesExtras, p), p.GetValue(output)!, p.GetValue(json), cancel));
            if (p.GetValue(data) == "fashion-mnist")   // Fashion-MNIST by prompting (docs/multimodal.md)
                return Task.FromResult(FashionMnistCommand.Train(FashionMnistCommand.Recipe(p.GetValue(quick), p.GetResult(steps) is null or { Implicit: true } ? null : (int)p.GetValue(steps),
                    p.GetResult(batch) is null or { Implicit: true } ? null : p.GetValue(batch), p.GetResult(lr) is null or { Implicit: true } ? null : p.GetValue(lr),
                    p.GetValue(dim), p.GetValue(layers), p.GetValue(seed)),
                    p.GetValue(output)!, p.GetValue(json)));
            // Under mpirun every rank runs this; MPI comes up first so that any error is reported per rank.
            if (!p.GetValue(distributed) && !MpiCommunicator.LaunchedByMpirun) return Task.FromResult(Action(p, null, cancel));
            var comm = MpiCommunicator.World();
            try { return Task.FromResult(Action(p, new Parallelism(comm, 1, p.GetValue(zero1), ShardExperts: p.GetValue(expertParallel)), cancel)); }
            catch (Exception e) when (e is not ArgumentException && comm.Size > 1)
            {
                // A failed collective or a dead peer: end every rank now instead of leaving them waiting.
                Console.Error.WriteLine($"error: rank {comm.Rank} of {comm.Size}: {e.Message}");
                Console.Error.Flush();
                comm.Abort(CliRunner.Failure);
                throw;
            }
            catch (ArgumentException e) when (comm.Size > 1) { throw new ArgumentException($"rank {comm.Rank} of {comm.Size}: {e.Message}", e); }
            finally { comm.Dispose(); }
        });
        int Action(ParseResult p, Parallelism? parallel, CancellationToken cancel)
        {
            bool leader = parallel is null || parallel.Communicator.Rank == 0;
            bool quiet = p.GetValue(json) || !leader;
            if (p.GetValue(asyncMode) && parallel is null) throw new ArgumentException("--async runs under mpirun (rank 0 serves, the other ranks compute gradients).");
            if (p.GetValue(replay) is not null && parallel is not null) throw new ArgumentException("--replay runs in one process, not under mpirun.");
            string outDir = p.GetValue(output)!;
            var options = new TrainOptions
            {
                Steps = p.GetValue(steps), BatchSize = p.GetValue(batch), SequenceLength = p.GetValue(seq), GradAccumulation = p.GetValue(accum),
                LearningRate = p.GetValue(lr), MinLearningRate = p.GetValue(minLr), WarmupSteps = p.GetValue(warmup), ClipNorm = p.GetValue(clip),
                WeightDecay = p.GetValue(wd), EvalEvery = p.GetValue(evalEvery), EvalBatches = p.GetValue(evalBatches),
                CheckpointEvery = p.GetValue(ckptEvery), Seed = p.GetValue(seed), AlignDocuments = p.GetValue(alignDocuments),
            }.Validate();
            if (ContrastiveTrainCommand.Requested(p)) return ContrastiveTrainCommand.Run(p, options, p.GetValue(initFrom), outDir, p.GetValue(json), cancel);
            if (ModuleTrainCommand.Requested(p)) return ModuleTrainCommand.Run(p, options, p.GetValue(data)!, outDir, p.GetValue(resume), p.GetValue(json), cancel);
            string tokSource = p.GetValue(tokenizer)!, dataArg = p.GetValue(data)!;
            var mixture = DataMixture.Parse(dataArg);   // --data a,b: several prepared folders as one mixture
            if (mixture is not null) dataArg = mixture[0].Directory;
            Tessera.Retrieval.Retro.RetroTrainingOptions? retro = null;
            if (RetroTrainCommand.Requested(p))
                (options, retro) = RetroTrainCommand.Adjust(p, seq, options, parallel is not null, p.GetValue(asyncMode) || p.GetValue(replay) is not null, mixture is not null);
            // Everything that can be checked cheaply is checked before any tokenizing or training.
            bool prepared0 = Directory.Exists(dataArg) && File.Exists(Path.Combine(dataArg, PreparedData.MetaFile));
            string runTok = Path.Combine(outDir, Checkpoint.TokenizerFolder);
            (string Checkpoint, ModelConfig Config)? start = p.GetValue(initFrom) is { } initPath ? InitFrom.Resolve(initPath) : null;
            if (start is { } s0)
            {
                var c0 = s0.Config;
                InitFrom.CheckFlags(s0.Checkpoint, c0, p.GetValue(resume), p.GetResult(preset) is { Implicit: false }, parallel is not null,
                [
                    new("--arch", p.GetValue(arch), c0.Architecture), new("--layers", p.GetValue(layers), c0.Layers), new("--dim", p.GetValue(dim), c0.Dim),
                    new("--heads", p.GetValue(heads), c0.Heads), new("--kv-heads", p.GetValue(kvHeads), c0.KvHeads), new("--hidden", p.GetValue(hidden), c0.HiddenDim),
                    new("--experts", p.GetValue(experts), c0.Experts), new("--top-k", p.GetValue(topK), c0.TopK), new("--context", p.GetValue(context), c0.ContextLength),
                    new("--window", p.GetValue(window), c0.SlidingWindow), new("--capacity", p.GetValue(capacity), c0.CapacityFactor), new("--head-dim", p.GetValue(headDim), c0.HeadDim),
                    new("--attn-softcap", p.GetValue(attnSoftCap), c0.AttentionSoftCap), new("--final-softcap", p.GetValue(finalSoftCap), c0.FinalSoftCap), new("--dropout", p.GetValue(dropout), c0.Dropout),
                ]);
                if (p.GetValue(replay) is not null) throw new ArgumentException("--init-from and --replay cannot be combined: a replay rebuilds its run from the seed.");
                if (!prepared0 && p.GetResult(tokenizer) is null or { Implicit: true } && InitFrom.CheckpointTokenizer(s0.Checkpoint) is { } own) tokSource = own;
            }
            if (prepared0) tokSource = PreparedData.Load(dataArg).TokenizerPath();
            var tok = p.GetValue(resume) ? RunSetup.LoadRunTokenizer(runTok) : TokenizerFiles.Load(tokSource);
            ModelConfig config;
            if (start is { } s1)
            {
                config = s1.Config;
                if (tok.VocabSize != config.VocabSize)
                    throw new ArgumentException($"--init-from: the tokenizer {tokSource} has {tok.VocabSize} ids, the checkpoint's model {config.VocabSize} ({s1.Checkpoint}); use the base's tokenizer for the data.");
            }
            else
            {
                // With --index the rows set the sequence length, and the context grows to hold them unless --context says otherwise
                // (a row and its BOS, so `eval ralm --layout retro` can score a whole row with the inference engine).
                int? contextLength = p.GetValue(context) ?? (retro is null ? null : Math.Max(options.SequenceLength + 1, ModelConfig.Preset(p.GetValue(preset)!).ContextLength));
                config = RunSetup.BuildConfig(p.GetValue(preset)!, tok.VocabSize, p.GetValue(layers), p.GetValue(dim), p.GetValue(heads),
                    p.GetValue(kvHeads), p.GetValue(hidden), p.GetValue(experts), p.GetValue(topK), contextLength, p.GetValue(window), p.GetValue(capacity),
                    p.GetValue(arch), p.GetValue(headDim), p.GetValue(attnSoftCap), p.GetValue(finalSoftCap));
                if (p.GetValue(dropout) is { } dp) config = (config with { Dropout = dp }).Validate();
            }
            if (options.SequenceLength > config.ContextLength)
                throw new ArgumentException(retro is not null
                    ? $"--index: a row is {options.SequenceLength} tokens (k·2C + 3C), more than the model's context length {config.ContextLength}; use a smaller --retro-chunk or --neighbours" + (start is null ? " or set --context" : "")
                    : $"--seq {options.SequenceLength} exceeds the model's context length {config.ContextLength} (set --context)");
            TrainMemoryEstimate.EnsureFits(config, options.BatchSize, options.SequenceLength, TrainMemoryEstimate.AvailableBytes, "train"); // before anything is allocated
            // Rank 0 prepares the data and the run folder; the others wait, then read the same files.
            PreparedData? prepared = null;
            if (leader)
            {
                prepared = RunSetup.ResolveData(dataArg, tokSource, Path.Combine(outDir, "data"), quiet);
                if (!p.GetValue(resume)) RunSetup.CopyTokenizer(tokSource, runTok);
            }
            parallel?.Communicator.Barrier();
            prepared ??= PreparedData.Load(prepared0 ? dataArg : Path.Combine(outDir, "data"));
            Tessera.Retrieval.Retro.RetroDataSummary? retroData = null;
            if (retro is not null) (prepared, retroData) = RetroTrainCommand.Prepare(p, retro, prepared, outDir, p.GetValue(resume), quiet, cancel);
            if (p.GetValue(asyncMode) || p.GetValue(replay) is not null)
            {
                using var shard = RunSetup.Open(prepared, Split.Train);
                var trainData = new TrainData([shard]);
                string log = p.GetValue(replay) ?? Path.Combine(outDir, "async-log.jsonl");
                using var trained = parallel is null ? AsyncTrainer.Replay(config, options, trainData, log)
                    : AsyncTrainer.Run(config, options, trainData, parallel.Communicator, log);
                if (trained is null) return 0;
                string saved = Checkpoint.Save(Path.Combine(outDir, parallel is null ? "replay" : "async"), options.Steps, trained);
                string hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(saved, "model.safetensors"))))[..16];
                Console.WriteLine(p.GetValue(json)
                    ? JsonSerializer.Serialize(new { mode = parallel is null ? "replay" : "async", log, checkpoint = saved, weights_sha256 = hash })
                    : $"{(parallel is null ? "replayed" : "asynchronous run:")} {options.Steps} updates | log {log} | weights → {saved} (sha256 {hash}…)");
                return 0;
            }
            using var initial = start is { } s2 ? Checkpoint.LoadModel(s2.Checkpoint) : null;
            var result = Run(config, options, prepared, outDir, p.GetValue(resume), quiet, cancel, parallel,
                initial, start is { } s3 ? Lineage.Of(s3.Checkpoint, "init-from") : null, mixture);
            if (retroData is not null)
            {
                // The masked validation loss is over chunk u+1 only (RETRO's measure); its bytes give bits per byte.
                var bpb = RetroTrainCommand.HeldOutBitsPerByte(result.ValLoss, retroData, options);
                result = result with { ValBitsPerByte = bpb ?? double.NaN };
                if (bpb is { } measured) RetroTrainCommand.WriteResult(outDir, retroData, result.Parameters, options.Seed, result.Steps, measured);
                if (!quiet)
                    Console.WriteLine(bpb is { } b ? $"held-out bits/byte on chunk u+1 of the validation rows: {b:F4}"
                        : "held-out bits/byte: not computed (the evaluation did not cover every validation row)");
            }
            if (p.GetValue(json) && leader) Console.WriteLine(JsonSerializer.Serialize(result, JsonNaming.Line));
            return 0;
        }
        return cmd;
    }

    /// <summary>The final figures of a run.</summary>
    public sealed record TrainResult(string Run, long Steps, double FinalLoss, double ValLoss, double ValBitsPerByte, double TokensPerSecond,
        double Mfu, double Seconds, long Parameters, long ActiveParameters);

    /// <summary>Trains (or resumes) and returns the final figures; shared with quickstart.</summary>
    public static TrainResult Run(ModelConfig config, TrainOptions options, PreparedData prepared, string outDir, bool resume, bool quiet, CancellationToken cancel,
        Parallelism? parallel = null, Transformer? initial = null, Lineage? lineage = null, IReadOnlyList<PreparedData>? mixture = null)
    {
        using var shards = DataMixture.Open(mixture ?? [prepared]);
        var data = shards.Data;
        // MFU is judged against this machine's measured FMA peak, not a spec-sheet figure (the trainer probes it
        // once per process). Distributed: rank 0's figure is broadcast so every rank reports the same MFU.
        if (!resume && parallel is { Communicator.Size: > 1 })
        {
            var peak = new double[1];
            if (parallel.Communicator.Rank == 0) peak[0] = Tessera.Kernels.GemmPeak.PeakFlops(Tessera.Kernels.WorkerPool.Shared.ThreadCount);
            parallel.Communicator.Broadcast<double>(peak, 0);
            options = options with { PeakFlops = peak[0] };
        }
        using var trainer = resume ? Trainer.Resume(outDir, data, options.Steps, parallel)
            : initial is not null ? new Trainer(initial, options, data, outDir) : new Trainer(config, options, data, outDir, parallel);
        string tokDir = Path.Combine(outDir, Checkpoint.TokenizerFolder);
        // A run started with --init-from keeps naming its base in every checkpoint (btm merge checks it); a resumed one carries it on.
        lineage ??= resume && Checkpoint.List(outDir) is { Count: > 0 } saved ? Lineage.Read(saved[^1]) : null;
        trainer.CheckpointExtras = staging =>
        {
            RunSetup.CopyTokenizer(File.Exists(Path.Combine(tokDir, "bytes")) ? "bytes" : tokDir, Path.Combine(staging, Checkpoint.TokenizerFolder));
            lineage?.WriteTo(staging);
        };
        var m = trainer.Model.Config;
        if (!quiet)
            Console.WriteLine($"model: {m.Layers} layers, dim {m.Dim}, {m.Heads} heads ({m.KvHeads} kv), " +
                              (m.IsMoe ? $"{m.Experts} experts top-{m.TopK}" : "dense") +
                              $", {m.ParameterCount:N0} params ({m.ActiveParameterCount:N0} active) | " +
                              $"{options.Steps} steps × {options.TokensPerStep:N0} tokens | train {prepared.Train.Tokens:N0} tokens" +
                              (resume ? $" | resuming at step {trainer.Step}" : "") +
                              (parallel is { Communicator.Size: > 1 } w ? $" | {w.Communicator.Size} ranks × {options.BatchSize / w.Slices} sequences{(w.Zero1 ? ", ZeRO-1" : "")}{(w.ShardExperts ? ", experts spread over ranks" : "")}" : "") + $" | peak {trainer.PeakFlops / 1e9:F0} GFLOP/s (measured)");
        RunSetup.AttachProgress(trainer, Math.Max(1, options.Steps / 25), quiet);
        EvalReport? lastEval = null;
        var onEval = trainer.Evaluated;
        trainer.Evaluated = e => { lastEval = e; onEval?.Invoke(e); };
        var sw = System.Diagnostics.Stopwatch.StartNew();
        double tokensPerSecondSum = 0, mfuSum = 0; int reports = 0;
        var onStep = trainer.StepCompleted;
        trainer.StepCompleted = r => { if (r.Step > 1) { tokensPerSecondSum += r.TokensPerSecond; mfuSum += r.Mfu; reports++; } onStep?.Invoke(r); };
        var last = trainer.Run(cancel);
        if (trainer.IsLeader) lastEval ??= trainer.Evaluate();
        lastEval ??= new EvalReport(trainer.Step, double.NaN, double.NaN, 0, []);
        return new TrainResult(Path.GetFullPath(outDir), trainer.Step, last?.Loss ?? double.NaN, lastEval.Loss, lastEval.BitsPerByte,
            reports == 0 ? 0 : tokensPerSecondSum / reports, reports == 0 ? 0 : mfuSum / reports, sw.Elapsed.TotalSeconds,
            m.ParameterCount, m.ActiveParameterCount);
    }
}
