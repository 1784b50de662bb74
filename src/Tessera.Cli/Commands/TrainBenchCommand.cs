using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Tessera.Bench;
using Tessera.Kernels;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera bench train</c>: ms per full training step (forward, backward, clipping, AdamW) and
/// tokens/s for the tiny and small presets, dense and MoE, against the same model trained by
/// PyTorch CPU in the same run (reference/bench_train.py), with the ratio and MFU.
/// </summary>
public static class TrainBenchCommand
{
    /// <summary>
    /// The benchmarked presets and their default (B, T): ≈1M-parameter models at 8×128, ≈10M at
    /// 4×256, medium (≈28M) and large (≈175M active) at 4×512. The default run is the first four
    /// (short); medium and large are named with --presets (documented in docs/training-performance.md).
    /// </summary>
    static readonly (string Preset, int Batch, int Seq)[] Shapes =
        [("tiny", 8, 128), ("tiny-moe", 8, 128), ("small", 4, 256), ("small-moe", 4, 256),
         ("medium", 4, 512), ("medium-moe", 4, 512), ("large", 4, 512), ("large-moe", 4, 512)];

    static string ShapeNames => string.Join(", ", Array.ConvertAll(Shapes, s => s.Preset));

    /// <summary>Builds the <c>tessera bench train</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var presets = new Option<string>("--presets") { Description = $"Comma-separated subset of {ShapeNames}.", DefaultValueFactory = _ => "tiny,tiny-moe,small,small-moe" };
        var seq = new Option<int>("--seq") { Description = "Sequence length for every preset (0: each preset's default; 256–1024 for medium and large).", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch") { Description = "Batch size for every preset (0: each preset's default).", DefaultValueFactory = _ => 0 };
        var memoryLimit = new Option<double>("--memory-limit-gb") { Description = "Refuse configs whose estimated training memory exceeds this (0: the memory available to the process).", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "Threads for ours and for torch.set_num_threads.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var steps = new Option<int>("--steps") { Description = "Timed steps per config (after the warm-up steps), both sides.", DefaultValueFactory = _ => 6 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up steps per config, both sides; ours adds up to 8 more while a step still takes new buffer memory (a mixture of experts' early steps), and says how many.", DefaultValueFactory = _ => 2 };
        var noTorch = new Option<bool>("--no-torch") { Description = "Skip the PyTorch comparison." };
        var profile = new Option<bool>("--profile") { Description = "Also print our time per op (forward/backward) and optimizer, ms per step (to stderr)." };
        var scaling = new Option<string>("--scaling") { Description = "Two thread counts, e.g. 1,2: alternate steps between them in one process and print where the second count's time goes per op family (wall clock; replaces the normal run)." };
        var splitAb = new Option<bool>("--split-ab") { Description = "Alternate steps between the GEMM's static and dynamic (claimed-block) split at --threads, like --scaling (results are identical; timing only)." };
        var gemmAb = new Option<string?>("--gemm-ab") { Description = $"Alternate steps between one of the GEMM's timing-only switches off and on at --threads, like --split-ab ({string.Join(", ", GemmBench.AbSwitches.Keys)}; results are identical; timing only)." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("train", "Training-step time and tokens/s of the tiny/small presets (dense and MoE) vs PyTorch CPU, with ratio and MFU.")
        {
            presets, threads, steps, warmup, noTorch, profile, json, seq, batch, memoryLimit, scaling, splitAb, gemmAb,
        };
        cmd.SetAction(parse =>
        {
            int n = parse.GetValue(threads), s = parse.GetValue(steps), w = parse.GetValue(warmup);
            if (n < 1 || s < 1 || w < 0) throw new ArgumentException($"--threads ({n}) and --steps ({s}) must be ≥ 1 and --warmup ({w}) ≥ 0.");
            int seqLen = parse.GetValue(seq), batchSize = parse.GetValue(batch);
            double limitGb = parse.GetValue(memoryLimit);
            if (seqLen < 0 || batchSize < 0 || limitGb < 0) throw new ArgumentException($"--seq ({seqLen}), --batch ({batchSize}) and --memory-limit-gb ({limitGb}) must be ≥ 0.");
            long limit = limitGb > 0 ? (long)(limitGb * 1e9) : TrainMemoryEstimate.AvailableBytes;
            var chosen = Select(parse.GetValue(presets)!, batchSize, seqLen);
            // Refuse every config that cannot fit before anything is allocated (or any config has run).
            foreach (var (name, b, t) in chosen) TrainMemoryEstimate.EnsureFits(ModelConfig.Preset(name), b, t, limit, $"bench train {name}");
            if (parse.GetValue(scaling) is { Length: > 0 } pair)
            {
                var counts = pair.Split(',', StringSplitOptions.TrimEntries);
                if (counts.Length != 2 || !int.TryParse(counts[0], out int ta) || !int.TryParse(counts[1], out int tb) || ta < 1 || tb < 1)
                    throw new ArgumentException($"--scaling: expected two positive thread counts such as 1,2, got '{pair}'.");
                WorkerPool.SetSharedThreadCount(ta);
                _ = GemmPeak.PerThreadGflops;
                foreach (var (name, b, t) in chosen)
                {
                    Tessera.Tensors.BufferPool.Trim();
                    TrainThreadScaling.Run(ModelConfig.Preset(name), name, b, t, ta, tb, s, w, CreateTrainer, line => Console.Error.WriteLine(line));
                }
                return 0;
            }
            string? abName = parse.GetValue(gemmAb);
            if (abName is not null && !GemmBench.AbSwitches.ContainsKey(abName))
                throw new ArgumentException($"--gemm-ab: '{abName}' is not one of {string.Join(", ", GemmBench.AbSwitches.Keys)}.");
            if (parse.GetValue(splitAb) || abName is not null)
            {
                if (parse.GetValue(splitAb) && abName is not null) throw new ArgumentException("--split-ab and --gemm-ab each pick the switch to alternate; give one.");
                // --split-ab is --gemm-ab dynamic-split with its sides named by the split.
                var flip = GemmBench.AbSwitches[abName ?? "dynamic-split"];
                var (offName, onName) = abName is null ? ("static", "dynamic") : ($"{abName} off", $"{abName} on");
                WorkerPool.SetSharedThreadCount(n);
                _ = GemmPeak.PerThreadGflops;
                try
                {
                    foreach (var (name, b, t) in chosen)
                    {
                        Tessera.Tensors.BufferPool.Trim();
                        TrainThreadScaling.Run(ModelConfig.Preset(name), name, b, t,
                            new TrainThreadScaling.Side(n, offName, () => flip(false)),
                            new TrainThreadScaling.Side(n, onName, () => flip(true)),
                            s, w, CreateTrainer, line => Console.Error.WriteLine(line));
                    }
                }
                finally { flip(true); }
                return 0;
            }
            bool asJson = parse.GetValue(json);
            if (parse.GetValue(profile)) Tessera.Tensors.OpProfile.Enabled = true; // TESSERA_PROFILE=1|cpu also enables it
            var rows = Run(chosen, n, s, w, !parse.GetValue(noTorch), out double peak, out string? note,
                line => Console.Error.WriteLine(line));
            if (asJson) Console.WriteLine(JsonSerializer.Serialize(ToJson(rows, n, s, w, peak, note), JsonNaming.Line));
            else Print(rows, n, s, w, peak, note);
            return 0;
        });
        return cmd;
    }

    /// <summary>One benchmarked config: our timing and, when torch ran, its timing.</summary>
    sealed record Row(string Name, ModelConfig Config, int Batch, int Seq, long Parameters, long ActiveParameters,
        ThroughputResult Ours, double OursCpuMsPerStep, TorchTrainTiming? Torch)
    {
        /// <summary>Warm-up steps ours added while the buffer pool still grew, and the MiB it took in the timed steps.</summary>
        public (int Steps, double PoolGrowthMiB) ExtraWarmup { get; init; }

        public double? Ratio => Torch is { } t ? t.MsPerStep / Ours.MsPerStep : null;
    }

    static List<(string Preset, int Batch, int Seq)> Select(string list, int batch, int seq)
    {
        var chosen = new List<(string, int, int)>();
        foreach (var name in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int i = Array.FindIndex(Shapes, s => string.Equals(s.Preset, name, StringComparison.OrdinalIgnoreCase));
            if (i < 0) throw new ArgumentException($"--presets: '{name}' is not one of {ShapeNames}.");
            var (p, b, t) = Shapes[i];
            chosen.Add((p, batch > 0 ? batch : b, seq > 0 ? seq : t));
        }
        if (chosen.Count == 0) throw new ArgumentException("--presets: name at least one preset.");
        return chosen;
    }

    static List<Row> Run(List<(string Preset, int Batch, int Seq)> shapes, int threads, int steps, int warmup, bool torch,
        out double peakFlops, out string? note, Action<string> progress)
    {
        WorkerPool.SetSharedThreadCount(threads);
        // The same measured peak training divides by (per-thread probe × threads, cached for the process).
        double perThread = GemmPeak.PerThreadGflops;
        peakFlops = GemmPeak.PeakFlops(threads);
        progress($"peak {peakFlops / 1e9:F0} GFLOP/s (FMA probe: {perThread:F0} GFLOP/s per thread × {threads})");
        double bandwidth = 0, profilePeak = peakFlops / 1e9;
        if (Tessera.Tensors.OpProfile.Enabled && Tessera.Tensors.OpProfile.UseThreadCpuTime)
        {
            // A CPU-time profile is judged against peak and bandwidth on the same clock: a busy machine
            // slows the wall-clock probes, which would flatter every op.
            profilePeak = GemmPeak.MeasureGflopsOnCallingThread(Tessera.Tensors.OpProfile.Now) * threads;
            bandwidth = MemoryBandwidth.MeasureGBpsOnCallingThread(Tessera.Tensors.OpProfile.Now) * threads;
            progress($"profile clock = thread CPU time: peak {profilePeak:F0} GFLOP/s, copy bandwidth {bandwidth:F1} GB/s " +
                $"(one thread's probe and 256 MB copy on that clock × {threads}; read + write counted)");
        }
        else if (Tessera.Tensors.OpProfile.Enabled)
        {
            bandwidth = MemoryBandwidth.MeasureGBps(WorkerPool.Shared);
            progress($"copy bandwidth {bandwidth:F1} GB/s ({threads} thread(s), 256 MB buffers, read + write counted)");
        }
        note = torch ? null : "PyTorch comparison skipped: --no-torch";
        var rows = new List<Row>();
        foreach (var (preset, b, t) in shapes)
        {
            var config = ModelConfig.Preset(preset);
            long total;
            using (var model = new Transformer(config)) total = model.Parameters.ElementCount;
            progress($"ours  {preset}: B={b} T={t}, {warmup} warm-up + {steps} timed steps ...");
            Tessera.Tensors.BufferPool.Trim(); // the previous config's buffer sizes would only crowd this one's
            var ours = MeasureOurs(config, b, t, steps, warmup, peakFlops, out double cpuMs, out double meanMs, out int gcs, out int extra, out double growth);
            progress($"ours  {preset}: {ours.MsPerStep:F1} ms/step (process CPU {cpuMs:F1} ms/step, {gcs} GCs in the timed steps; " +
                $"{extra} more warm-up step(s) until a step took ≤ {GrowthTolerance >> 20} MiB of new buffer memory, {growth:F0} MiB taken in the timed steps)");
            if (Tessera.Tensors.OpProfile.Enabled)
            {
                bool cpuClock = Tessera.Tensors.OpProfile.UseThreadCpuTime;
                TrainStepProfile.Print(progress, steps, cpuClock ? cpuMs : meanMs, profilePeak, bandwidth, total,
                    cpuClock ? "thread CPU time; exact at --threads 1" : "wall clock");
                if (cpuClock)
                {
                    // MFU on the CPU-time clock: what the step would reach with the machine to itself.
                    double flops = config.TrainingFlopsPerToken(t) * b * t;
                    progress($"  MFU on the profile clock: {flops / 1e9:F1} GFLOP per step / {cpuMs:F1} ms process CPU = " +
                        $"{flops / (cpuMs / 1000) / 1e9:F1} GFLOP/s = {100 * flops / (cpuMs / 1000) / 1e9 / profilePeak:F1}% of {profilePeak:F0} GFLOP/s");
                }
            }
            TorchTrainTiming? timing = null;
            if (torch && note is null)
            {
                // One torch process per config, right after ours, so a change in machine load hits both sides alike.
                var r = TrainTorchReference.Run([ToTorch(preset, config, b, t)], threads, steps, warmup, progress);
                note = r.Note;
                timing = r.Find(preset);
                if (timing is not null && timing.Parameters != total)
                    throw new InvalidOperationException($"bench train: {preset} has {total} parameters here but {timing.Parameters} in reference/bench_train.py; the models differ.");
            }
            rows.Add(new Row(preset, config, b, t, total, config.ActiveParameterCount, ours, cpuMs, timing) { ExtraWarmup = (extra, growth) });
        }
        return rows;
    }

    /// <summary>Warm-up steps added at most, while the buffer pool still grows (see <see cref="MeasureOurs"/>).</summary>
    const int MaxExtraWarmup = 8;

    /// <summary>New memory a warm-up step may take and still count as steady (the pool's bookkeeping, small tensors).</summary>
    const long GrowthTolerance = 4L << 20;

    /// <summary>
    /// Times full training steps of a freshly initialised model on random tokens, as
    /// <see cref="TrainThroughput.Measure"/> does (same Trainer, same data path through a temporary
    /// shard), but reports the median step rather than the mean (as the torch side does), resets the
    /// op profile after the warm-up so that it covers the timed steps only, and also reports process
    /// CPU time per step, which a busy machine inflates less than wall time. After the requested warm-up it
    /// runs up to <see cref="MaxExtraWarmup"/> more steps while the last one still took new buffer memory
    /// (<paramref name="extraWarmup"/>), and reports the memory taken in the timed steps (<paramref name="poolGrowthMiB"/>).
    /// </summary>
    static ThroughputResult MeasureOurs(ModelConfig config, int batch, int seq, int steps, int warmup, double peakFlops,
        out double cpuMsPerStep, out double meanMs, out int gcs, out int extraWarmup, out double poolGrowthMiB)
    {
        var (trainer, data) = CreateTrainer(config, batch, seq, steps + warmup + MaxExtraWarmup);
        using (data)
        using (trainer)
        {
            long before = Tessera.Tensors.BufferPool.AllocatedBytes;
            for (int i = 0; i < warmup; i++) { before = Tessera.Tensors.BufferPool.AllocatedBytes; trainer.TrainStep(); }
            // Steady state: while the last warm-up step still took new memory from the system, warm up further. A
            // mixture-of-experts layer's per-expert row counts move for the first steps of a run (the router leaves its
            // initial state), and each new buffer size costs first-touch page faults (~1 GB/s of new memory on this VM),
            // which a long run pays once; a dense model stops growing after its first step.
            extraWarmup = 0;
            while (warmup > 0 && extraWarmup < MaxExtraWarmup && Tessera.Tensors.BufferPool.AllocatedBytes - before > GrowthTolerance)
            {
                before = Tessera.Tensors.BufferPool.AllocatedBytes;
                trainer.TrainStep();
                extraWarmup++;
            }
            long pool0 = Tessera.Tensors.BufferPool.AllocatedBytes;
            Tessera.Tensors.OpProfile.Reset();
            int gc0 = GC.CollectionCount(0);
            var process = System.Diagnostics.Process.GetCurrentProcess();
            var cpu0 = process.TotalProcessorTime;
            var times = new double[steps];
            for (int i = 0; i < steps; i++)
            {
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                trainer.TrainStep();
                times[i] = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            process.Refresh();
            cpuMsPerStep = (process.TotalProcessorTime - cpu0).TotalMilliseconds / steps;
            gcs = GC.CollectionCount(0) - gc0;
            poolGrowthMiB = (Tessera.Tensors.BufferPool.AllocatedBytes - pool0) / (double)(1 << 20);
            // The median step, as reference/bench_train.py reports: a step slowed by other processes does not move it.
            meanMs = times.Average();
            Array.Sort(times);
            double ms = times[steps / 2];
            double tps = (double)batch * seq / (ms / 1000);
            return new ThroughputResult(config, batch, seq, steps, ms, tps, config.TrainingFlopsPerToken(seq) * tps / peakFlops);
        }
    }

    /// <summary>
    /// A fresh model's Trainer on random tokens written to a temporary shard (the normal data path);
    /// disposing the second item closes the shard and deletes its folder.
    /// </summary>
    internal static (Trainer Trainer, IDisposable Data) CreateTrainer(ModelConfig config, int batch, int seq, int totalSteps)
    {
        var options = new TrainOptions
        {
            Steps = totalSteps, BatchSize = batch, SequenceLength = seq, WarmupSteps = 0, Seed = 1,
            PeakFlops = GemmPeak.PeakFlops(WorkerPool.Shared.ThreadCount), EvalEvery = 0, CheckpointEvery = 0,
        }.Validate();
        var data = new RandomShard(config, batch, seq);
        return (new Trainer(config, options, new TrainData([data.Shard])), data);
    }

    /// <summary>Random tokens in a temporary shard; Dispose closes it and deletes the folder.</summary>
    sealed class RandomShard : IDisposable
    {
        readonly string dir = Directory.CreateTempSubdirectory("tessera-bench-train-").FullName;
        public readonly Tessera.Data.TokenShard Shard;

        public RandomShard(ModelConfig config, int batch, int seq)
        {
            var rng = new Tessera.Tensors.Rng(1);
            var tokens = new int[Math.Max(4 * batch, 16) * seq + 1];
            for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(config.VocabSize);
            string path = Path.Combine(dir, "random.bin");
            Tessera.Data.TokenShard.Write(path, [tokens], config.VocabSize);
            Shard = Tessera.Data.TokenShard.Open(path);
        }

        public void Dispose()
        {
            Shard.Dispose();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    static TrainTorchConfig ToTorch(string name, ModelConfig c, int batch, int seq)
    {
        if (c.SlidingWindow != 0 || c.CapacityFactor != 0)
            throw new NotSupportedException($"bench train: preset {name} uses a sliding window or expert capacity, which reference/bench_train.py does not model.");
        return new TrainTorchConfig(name, c.VocabSize, c.Dim, c.Layers, c.Heads, c.KvHeads, c.HiddenDim, c.Experts, c.TopK, c.TiedEmbeddings, batch, seq);
    }

    static void Print(List<Row> rows, int threads, int steps, int warmup, double peak, string? note)
    {
        AnsiConsole.MarkupLine($"training step = forward + backward + clip + AdamW, fp32, random tokens; threads={threads}, " +
            $"{warmup} warm-up + {steps} timed steps per config, median step; peak {peak / 1e9:F0} GFLOP/s (measured)");
        var table = new Table().AddColumns("config", "params", "active", "B×T", "ms/step", "tok/s", "torch", "ratio", "MFU");
        foreach (var r in rows)
            table.AddRow(r.Name, Millions(r.Parameters), Millions(r.ActiveParameters), $"{r.Batch}×{r.Seq}",
                $"{r.Ours.MsPerStep:F1}", $"{r.Ours.TokensPerSecond:F0}",
                r.Torch is { } t ? $"{t.MsPerStep:F1}" : "—",
                r.Ratio is { } x ? $"{x:F2}×" : "—",
                $"{r.Ours.Mfu * 100:F1}%");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]ms/step, tok/s, MFU: ours; torch: PyTorch ms/step; ratio = torch ms / ours ms (> 1: we are faster). " +
            "MFU = model FLOPs (6·active matmul params + attention, per token) × tokens/s / peak.[/]");
        var version = rows.Find(r => r.Torch is not null);
        if (note is not null) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(note)}[/]");
        else if (version is null) AnsiConsole.MarkupLine("[yellow]PyTorch reported no timings.[/]");
    }

    static string Millions(long n) => (n / 1e6).ToString("F2", CultureInfo.InvariantCulture) + "M";

    static object ToJson(List<Row> rows, int threads, int steps, int warmup, double peak, string? note) => new
    {
        threads, steps, warmup, peak_gflops = peak / 1e9,
        configs = rows.ConvertAll(r => new
        {
            name = r.Name, batch = r.Batch, seq = r.Seq, parameters = r.Parameters, active_parameters = r.ActiveParameters,
            ours = new { ms_per_step = r.Ours.MsPerStep, tokens_per_s = r.Ours.TokensPerSecond, mfu = r.Ours.Mfu, process_cpu_ms_per_step = r.OursCpuMsPerStep,
                extra_warmup_steps = r.ExtraWarmup.Steps, pool_growth_mib = r.ExtraWarmup.PoolGrowthMiB },
            torch = r.Torch is { } t ? new { ms_per_step = t.MsPerStep, tokens_per_s = t.TokensPerSecond } : null,
            ratio = r.Ratio,
        }),
        torch_note = note,
    };
}
