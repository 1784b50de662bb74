using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Data;
using Tessera.Distributed;
using Tessera.Model;
using Tessera.Tensors;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera bench distributed</c>: data-parallel step time at 1, 2 and 4 ranks (mpirun on this
/// machine), the ordered all-reduce's bandwidth against Open MPI's own all-reduce by message size,
/// how much of the communication backward hides, PyTorch DDP on gloo with the same model and
/// global batch (bench/ddp_torch.py), and a cost model projecting to 8–256 nodes
/// (docs/distributed.md explains it). The driver starts one mpirun job per world size, each
/// running this command with <c>--rank-job</c>.
/// </summary>
public static class DistributedBenchCommand
{
    /// <summary>Builds the <c>tessera bench distributed</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var ranks = new Option<string>("--ranks") { Description = "World sizes to time (comma-separated).", DefaultValueFactory = _ => "1,2,4" };
        var preset = new Option<string>("--preset") { Description = "Model preset (the same model on the PyTorch side).", DefaultValueFactory = _ => "tiny-moe" };
        var batch = new Option<int>("--batch") { Description = "Global batch (sequences), split over the ranks.", DefaultValueFactory = _ => 8 };
        var seq = new Option<int>("--seq") { Description = "Tokens per sequence.", DefaultValueFactory = _ => 64 };
        var steps = new Option<int>("--steps") { Description = "Timed steps per world size (after the warm-up).", DefaultValueFactory = _ => 5 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up steps.", DefaultValueFactory = _ => 2 };
        var noTorch = new Option<bool>("--no-torch") { Description = "Skip the PyTorch DDP comparison." };
        var gbps = new Option<double>("--network-gbps") { Description = "Stated per-node network bandwidth for the cost model, Gbit/s.", DefaultValueFactory = _ => 100 };
        var latency = new Option<double>("--latency-us") { Description = "Stated per-message latency for the cost model, µs.", DefaultValueFactory = _ => 5 };
        var job = new Option<string?>("--rank-job") { Description = "Internal: run one mpirun rank (steps | bandwidth).", Hidden = true };
        var shard = new Option<string?>("--shard") { Description = "Internal: the token shard of a rank job.", Hidden = true };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("distributed", "Data-parallel step time at 1/2/4 ranks, all-reduce bandwidth, overlap, PyTorch DDP (gloo) and a cost model to 256 nodes.")
        {
            ranks, preset, batch, seq, steps, warmup, noTorch, gbps, latency, job, shard, json,
        };
        cmd.SetAction(p =>
        {
            var config = ModelConfig.Preset(p.GetValue(preset)!);
            int b = p.GetValue(batch), t = p.GetValue(seq), s = p.GetValue(steps), w = p.GetValue(warmup);
            if (b < 1 || t < 1 || t > config.ContextLength || s < 1 || w < 0)
                throw new ArgumentException($"--batch ({b}), --steps ({s}) must be ≥ 1, --warmup ({w}) ≥ 0 and --seq ({t}) in [1, {config.ContextLength}].");
            if (p.GetValue(job) is { } mode) { RankJob(mode, config, b, t, s, w, p.GetValue(shard)!); return 0; }
            var worlds = p.GetValue(ranks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            foreach (int n in worlds)
                if (n < 1 || b % n != 0) throw new ArgumentException($"--ranks: world size {n} does not divide the batch of {b} sequences.");
            var result = Drive(p.GetValue(preset)!, config, worlds, b, t, s, w, !p.GetValue(noTorch), p.GetValue(gbps), p.GetValue(latency));
            if (p.GetValue(json)) Console.WriteLine(result.ToJsonString());
            else Print(result);
            return 0;
        });
        return cmd;
    }

    // ---- driver --------------------------------------------------------------------------------

    static JsonObject Drive(string presetName, ModelConfig config, int[] worlds, int batch, int seq, int steps, int warmup, bool torch, double gbps, double latencyUs)
    {
        string? mpirun = FindOnPath("mpirun") ?? FindOnPath("mpiexec")
            ?? throw new ArgumentException("bench distributed: mpirun not found (install with: apt-get install openmpi-bin libopenmpi-dev).");
        var dir = Directory.CreateTempSubdirectory("tessera-bench-dist-");
        try
        {
            string shard = Path.Combine(dir.FullName, "train.bin");
            var rng = new Rng(11);
            var tokens = new int[Math.Max(200_000, 4 * batch * (seq + 1))];
            for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(config.VocabSize);
            TokenShard.Write(shard, [tokens], config.VocabSize);
            string common = $"--preset {presetName} --batch {batch} --seq {seq} --steps {steps} --warmup {warmup} --shard \"{shard}\"";
            var result = new JsonObject
            {
                ["preset"] = presetName, ["parameters"] = config.ParameterCount, ["batch"] = batch, ["seq"] = seq, ["steps"] = steps,
                ["cores"] = Environment.ProcessorCount,
                ["note"] = "mpirun --oversubscribe on this machine's cores, shared with other work: figures are contended",
            };
            var stepRows = new JsonArray();
            foreach (int n in worlds)
            {
                Console.Error.WriteLine($"timing {n} rank(s)…");
                stepRows.Add(MpiJson(mpirun, n, $"--rank-job steps {common}"));
            }
            result["ranks"] = stepRows;
            int bwWorld = worlds.Where(n => n > 1).DefaultIfEmpty(2).Min();
            Console.Error.WriteLine($"all-reduce bandwidth on {bwWorld} ranks…");
            result["allreduce"] = MpiJson(mpirun, bwWorld, $"--rank-job bandwidth {common}");
            if (torch)
            {
                var torchRows = new JsonArray();
                foreach (int n in worlds.Where(n => n > 1))
                {
                    Console.Error.WriteLine($"PyTorch DDP (gloo) on {n} processes…");
                    torchRows.Add(TorchDdp(config, n, batch, seq, steps, warmup));
                }
                result["torch_ddp"] = torchRows;
            }
            result["cost_model"] = CostModel(config, stepRows, batch, seq, gbps, latencyUs);
            return result;
        }
        finally
        {
            try { dir.Delete(recursive: true); } catch (IOException) { }
        }
    }

    static JsonNode MpiJson(string mpirun, int n, string args)
    {
        var (self, prefix) = SelfCommand();
        var (code, stdout, stderr) = Exec(mpirun, $"-np {n} --allow-run-as-root --oversubscribe --bind-to none {self} {prefix}bench distributed {args}", TimeSpan.FromMinutes(10));
        string? line = JsonLine(stdout);
        if (code != 0 || line is null)
            throw new InvalidOperationException($"bench distributed: the {n}-rank job failed (exit {code}): {Last(stderr)}");
        return JsonNode.Parse(line)!;
    }

    static JsonNode TorchDdp(ModelConfig c, int n, int batch, int seq, int steps, int warmup)
    {
        const string Python = "/usr/bin/python3";
        string? script = FindUp("bench/ddp_torch.py");
        if (!File.Exists(Python) || script is null) return new JsonObject { ["world"] = n, ["note"] = $"skipped: {(script is null ? "bench/ddp_torch.py" : Python)} not found" };
        var cfg = JsonSerializer.Serialize(new
        {
            vocab = c.VocabSize, dim = c.Dim, layers = c.Layers, heads = c.Heads, kv_heads = c.KvHeads, hidden = c.HiddenDim,
            experts = c.Experts, top_k = c.TopK, tied = c.TiedEmbeddings, batch, seq,
        });
        var (code, stdout, stderr) = Exec(Python, $"\"{script}\" --world {n} --steps {steps} --warmup {warmup} --config '{cfg}'", TimeSpan.FromMinutes(10),
            TorchEnvironment(), shell: true);
        string? line = JsonLine(stdout);
        return code == 0 && line is not null ? JsonNode.Parse(line)! : new JsonObject { ["world"] = n, ["note"] = $"failed (exit {code}): {Last(stderr)}" };
    }

    /// <summary>What makes torch 1.13 CPU fast here (as `tessera bench train` runs it): passive OpenMP waits, tcmalloc when installed.</summary>
    static Dictionary<string, string> TorchEnvironment()
    {
        var env = new Dictionary<string, string> { ["OMP_WAIT_POLICY"] = "passive" };
        const string Tcmalloc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";
        if (File.Exists(Tcmalloc)) env["LD_PRELOAD"] = Tcmalloc;
        return env;
    }

    /// <summary>
    /// Weak scaling: every node keeps the per-rank batch of the largest measured world and the
    /// measured compute per token; a step adds the ring all-reduce of all gradients,
    /// 2·(N−1)/N·4P bytes at the stated bandwidth plus 2·(N−1) latencies per bucket, of which the
    /// measured hidden share overlaps backward (≈ 2/3 of compute).
    /// </summary>
    static JsonObject CostModel(ModelConfig c, JsonArray rows, int batch, int seq, double gbps, double latencyUs)
    {
        var largest = rows.OrderBy(r => r!["world"]!.GetValue<int>()).Last()!;
        int world = largest["world"]!.GetValue<int>();
        double computeS = largest["compute_ms"]!.GetValue<double>() / 1e3;
        double tokensPerRank = (double)batch / world * seq;
        double perToken = computeS / tokensPerRank;
        double hidden = world > 1 ? Math.Clamp(largest["hidden_share"]?.GetValue<double>() ?? 0, 0, 1) : 0;
        long p = c.ParameterCount;
        double bytes = 4.0 * p, bw = gbps * 1e9 / 8;
        int buckets = (int)Math.Max(1, Math.Ceiling(bytes / GradientReducer.DefaultBucketBytes));
        var proj = new JsonArray();
        foreach (int nodes in new[] { 1, 8, 16, 32, 64, 128, 256 })
        {
            double comm = nodes == 1 ? 0 : 2.0 * (nodes - 1) / nodes * bytes / bw + buckets * 2.0 * (nodes - 1) * latencyUs * 1e-6;
            double overlap = Math.Min(comm * hidden, computeS * 2 / 3);
            double step = computeS + comm - overlap;
            proj.Add(new JsonObject
            {
                ["nodes"] = nodes, ["step_ms"] = step * 1e3, ["comm_ms"] = comm * 1e3,
                ["tokens_per_s"] = nodes * tokensPerRank / step, ["scaling_efficiency"] = computeS / step,
            });
        }
        return new JsonObject
        {
            ["compute_s_per_token"] = perToken, ["tokens_per_node_step"] = tokensPerRank, ["gradient_bytes"] = bytes, ["network_gbps"] = gbps,
            ["latency_us"] = latencyUs, ["hidden_share"] = hidden, ["buckets"] = buckets, ["projection"] = proj,
        };
    }

    static void Print(JsonObject r)
    {
        Console.WriteLine($"model {r["preset"]} ({r["parameters"]:N0} params), global batch {r["batch"]} × {r["seq"]}, {r["steps"]} timed steps; {r["note"]}");
        Console.WriteLine();
        Console.WriteLine("ranks  step ms  compute ms  comm alone ms  exposed ms  hidden share  tokens/s");
        foreach (var x in r["ranks"]!.AsArray())
            Console.WriteLine($"{x!["world"],5}  {D(x, "step_ms"),7:F1}  {D(x, "compute_ms"),10:F1}  {D(x, "comm_ms"),13:F2}  {D(x, "exposed_ms"),10:F2}  {D(x, "hidden_share"),12:P0}  {D(x, "tokens_per_s"),8:F0}");
        Console.WriteLine();
        var ar = r["allreduce"]!;
        Console.WriteLine($"all-reduce on {ar["world"]} ranks (median µs; bus bandwidth GB/s = 2(N−1)/N · bytes / time)");
        Console.WriteLine("   bytes   ordered µs  ordered GB/s   MPI µs   MPI GB/s");
        foreach (var x in ar["sizes"]!.AsArray())
            Console.WriteLine($"{x!["bytes"],8}  {D(x, "ordered_us"),10:F1}  {D(x, "ordered_busbw_gbs"),12:F2}  {D(x, "mpi_us"),7:F1}  {D(x, "mpi_busbw_gbs"),9:F2}");
        if (r["torch_ddp"] is JsonArray torch)
        {
            Console.WriteLine();
            Console.WriteLine("PyTorch DDP (gloo), same model and global batch:");
            foreach (var x in torch)
                Console.WriteLine(x!["note"] is { } note ? $"  world {x["world"]}: {note}"
                    : $"  world {x["world"]}: step {D(x, "step_ms"):F1} ms, compute {D(x, "compute_ms"):F1} ms, comm alone {D(x, "comm_ms"):F2} ms, exposed {D(x, "exposed_ms"):F2} ms, hidden {D(x, "hidden_share"):P0}");
        }
        var cm = r["cost_model"]!;
        Console.WriteLine();
        Console.WriteLine($"cost model: {D(cm, "compute_s_per_token") * 1e6:F1} µs/token measured, {cm["network_gbps"]} Gbit/s and {cm["latency_us"]} µs stated, hidden share {D(cm, "hidden_share"):P0}");
        Console.WriteLine("  nodes   step ms   comm ms   tokens/s   efficiency");
        foreach (var x in cm["projection"]!.AsArray())
            Console.WriteLine($"  {x!["nodes"],5}  {D(x, "step_ms"),8:F1}  {D(x, "comm_ms"),8:F2}  {D(x, "tokens_per_s"),9:F0}  {D(x, "scaling_efficiency"),10:P1}");
    }

    static double D(JsonNode? n, string key) => n?[key] is JsonValue v && v.TryGetValue(out double d) ? d : double.NaN;

    // ---- rank jobs (under mpirun) --------------------------------------------------------------

    static void RankJob(string mode, ModelConfig config, int batch, int seq, int steps, int warmup, string shardPath)
    {
        using var comm = MpiCommunicator.World();
        try
        {
            if (mode == "steps") StepJob(comm, config, batch, seq, steps, warmup, shardPath);
            else if (mode == "bandwidth") BandwidthJob(comm);
            else throw new ArgumentException($"--rank-job: unknown mode '{mode}' (steps | bandwidth).");
        }
        catch (Exception e) when (e is not ArgumentException && comm.Size > 1)
        {
            Console.Error.WriteLine($"error: rank {comm.Rank} of {comm.Size}: {e.Message}");
            comm.Abort(CliRunner.Failure);
        }
    }

    static void StepJob(MpiCommunicator comm, ModelConfig config, int batch, int seq, int steps, int warmup, string shardPath)
    {
        using var shard = TokenShard.Open(shardPath);
        var data = new TrainData([shard]);
        var options = new TrainOptions { Steps = 1_000_000, BatchSize = batch, SequenceLength = seq, WarmupSteps = 10, EvalEvery = 0, CheckpointEvery = 0 };
        using var ddp = new Trainer(config, options, data, null, new Parallelism(comm));
        // The same per-rank work with no communication at all: what the step costs without data parallelism.
        using var alone = new Trainer(config, options with { BatchSize = batch / comm.Size }, data, null, new Parallelism(new LocalCommunicator()));
        var step = new List<double>(); var compute = new List<double>(); var exposed = new List<double>(); var commAlone = new List<double>();
        for (int i = 0; i < warmup + steps; i++)
        {
            comm.Barrier();
            var sw = Stopwatch.StartNew();
            ddp.TrainStep();
            double s = sw.Elapsed.TotalMilliseconds;
            double e = (ddp.Reducer?.ExposedSeconds ?? 0) * 1e3;
            sw.Restart();
            alone.TrainStep();
            double c = sw.Elapsed.TotalMilliseconds;
            // All buckets reduced back to back with nothing to overlap: the communication's own time.
            double a = 0;
            if (ddp.Reducer is { } r)
            {
                comm.Barrier();
                sw.Restart();
                r.Begin(); r.Finish();
                a = sw.Elapsed.TotalMilliseconds;
            }
            if (i < warmup) continue;
            step.Add(s); compute.Add(c); exposed.Add(e); commAlone.Add(a);
        }
        if (comm.Rank != 0) return;
        double ms = Median(step), comms = Median(commAlone), exp = Median(exposed);
        Console.WriteLine(new JsonObject
        {
            ["world"] = comm.Size, ["step_ms"] = ms, ["compute_ms"] = Median(compute), ["comm_ms"] = comms, ["exposed_ms"] = exp,
            ["hidden_share"] = comm.Size > 1 && comms > 0 ? Math.Clamp(1 - exp / comms, 0, 1) : null,
            ["buckets"] = ddp.Reducer?.BucketCount ?? 0, ["tokens_per_s"] = batch * seq / (ms / 1e3), ["library"] = comm.Description,
        }.ToJsonString());
    }

    static void BandwidthJob(MpiCommunicator comm)
    {
        var sizes = new JsonArray();
        int n = comm.Size;
        for (int floats = 256; floats <= 4 << 20; floats *= 4)
        {
            var sum = new OrderedSum(comm, floats);
            var x = new float[floats];
            sum.Input.AsSpan().Fill(comm.Rank + 1);
            x.AsSpan().Fill(comm.Rank + 1);
            int reps = Math.Clamp((int)(64L * 256 / floats * 16), 3, 200);
            var ordered = new List<double>(); var native = new List<double>();
            for (int i = 0; i < reps + 2; i++)
            {
                comm.Barrier();
                long t0 = Stopwatch.GetTimestamp();
                sum.Start(); sum.Wait();
                long t1 = Stopwatch.GetTimestamp();
                comm.Allreduce<float>(x, x, ReduceOp.Sum);
                long t2 = Stopwatch.GetTimestamp();
                if (i < 2) continue;
                ordered.Add(Stopwatch.GetElapsedTime(t0, t1).TotalSeconds);
                native.Add(Stopwatch.GetElapsedTime(t1, t2).TotalSeconds);
            }
            double bytes = 4.0 * floats, factor = 2.0 * (n - 1) / n;
            double o = Median(ordered), m = Median(native);
            sizes.Add(new JsonObject
            {
                ["bytes"] = (long)bytes, ["ordered_us"] = o * 1e6, ["ordered_busbw_gbs"] = factor * bytes / o / 1e9,
                ["mpi_us"] = m * 1e6, ["mpi_busbw_gbs"] = factor * bytes / m / 1e9,
            });
        }
        if (comm.Rank == 0) Console.WriteLine(new JsonObject { ["world"] = n, ["sizes"] = sizes }.ToJsonString());
    }

    // ---- plumbing ------------------------------------------------------------------------------

    static double Median(List<double> xs)
    {
        if (xs.Count == 0) return double.NaN;
        var s = xs.Order().ToArray();
        return s[s.Length / 2];
    }

    /// <summary>How to start this program again: the apphost, or dotnet plus tessera.dll.</summary>
    static (string Exe, string Prefix) SelfCommand()
    {
        string host = Environment.ProcessPath!;
        string dll = typeof(DistributedBenchCommand).Assembly.Location;
        return Path.GetFileNameWithoutExtension(host) == "dotnet" ? (host, $"\"{dll}\" ") : (host, "");
    }

    static (int Code, string Stdout, string Stderr) Exec(string file, string args, TimeSpan timeout, IDictionary<string, string>? env = null, bool shell = false)
    {
        var psi = shell ? new ProcessStartInfo("/bin/sh", ["-c", $"\"{file}\" {args}"]) : new ProcessStartInfo(file, args);
        psi.RedirectStandardOutput = true; psi.RedirectStandardError = true; psi.UseShellExecute = false;
        psi.Environment["OMPI_MCA_btl"] = "self,vader";
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout)) { p.Kill(entireProcessTree: true); return (-1, "", $"timed out after {timeout.TotalSeconds:F0} s"); }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The last line holding a JSON object (a terminal may prefix escape codes to a rank's output).</summary>
    static string? JsonLine(string stdout)
        => stdout.Split('\n').Where(l => l.Contains('{')).Select(l => l[l.IndexOf('{')..].Trim()).LastOrDefault();

    static string Last(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "(no output)";

    static string? FindOnPath(string name)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    static string? FindUp(string relative)
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, relative))) return Path.Combine(d.FullName, relative);
        return null;
    }
}
