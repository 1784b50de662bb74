using System.Diagnostics;
using Tessera.Data;
using Tessera.Distributed;
using Tessera.Distributed.Worker;
using Tessera.Training;

// Runs under mpirun for the Tessera.Distributed tests. Modes:
//   collectives                          every collective checked against values computed locally
//   train SHARD OUT STEPS [zero1|experts] [resume DIR] [ckpt DIR] [batch B] [seed-by-rank]   train DistRun; rank 0 writes the snapshot to OUT
//   async SHARD LOG OUT STEPS            asynchronous run, rank 0 serving; rank 0 writes the weights to OUT
//   endless SHARD                        train until killed; rank 0 prints "step N"
// Any failure prints "rank R: message" and exits 3 (after MPI_Abort, so no rank is left waiting).
ICommunicator? comm = null;
try
{
    comm = MpiCommunicator.World();
    if (Environment.GetEnvironmentVariable("TESSERA_COMM_TIMEOUT") is { } t) comm.Timeout = TimeSpan.FromSeconds(double.Parse(t, System.Globalization.CultureInfo.InvariantCulture));
    switch (args[0])
    {
        case "collectives": Collectives(comm); break;
        case "train": Train(comm, args); break;
        case "endless": Endless(comm, args[1]); break;
        case "async": Async(comm, args); break;
        default: throw new ArgumentException($"unknown mode {args[0]}");
    }
    comm.Dispose();
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine($"rank {comm?.Rank.ToString() ?? "?"}: {e.Message}");
    Console.Error.Flush();
    if (comm is { Size: > 1 } && e is not ArgumentException) comm.Abort(3);
    comm?.Dispose();
    return 3;
}

static void Train(ICommunicator comm, string[] args)
{
    using var shard = TokenShard.Open(args[1]);
    long steps = long.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture);
    bool zero1 = args.Contains("zero1");
    int at = Array.IndexOf(args, "resume");
    string? resume = at > 0 ? args[at + 1] : null;
    int ck = Array.IndexOf(args, "ckpt");
    string? ckpt = ck > 0 ? args[ck + 1] : null;
    int bb = Array.IndexOf(args, "batch");
    var options = DistRun.Options with { Steps = steps };
    if (bb > 0) options = options with { BatchSize = int.Parse(args[bb + 1], System.Globalization.CultureInfo.InvariantCulture) };
    if (args.Contains("seed-by-rank")) options = options with { Seed = options.Seed + (ulong)comm.Rank };
    var parallel = new Parallelism(comm, 1, zero1, BucketBytes: 16 << 10, ShardExperts: args.Contains("experts")); // small buckets: several of them in this tiny model
    var data = new TrainData([shard]);
    using var trainer = resume is null ? new Trainer(DistRun.Moe, options, data, ckpt, parallel) : Trainer.Resume(resume, data, steps, parallel);
    var losses = new List<double>();
    trainer.StepCompleted = r => losses.Add(r.Loss);
    trainer.Run();
    if (comm.Rank == 0) File.WriteAllBytes(args[2], DistRun.Snapshot(trainer, losses));
}

static void Async(ICommunicator comm, string[] args)
{
    using var shard = TokenShard.Open(args[1]);
    var options = DistRun.Options with { Steps = long.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture), GradAccumulation = 1, BatchSize = 2 };
    using var model = AsyncTrainer.Run(DistRun.Moe, options, new TrainData([shard]), comm, args[2]);
    if (model is not null) File.WriteAllBytes(args[3], DistRun.Weights(model));
}

static void Endless(ICommunicator comm, string shardPath)
{
    using var shard = TokenShard.Open(shardPath);
    var options = DistRun.Options with { Steps = 1_000_000, CheckpointEvery = 0 };
    using var trainer = new Trainer(DistRun.Moe, options, new TrainData([shard]), null, new Parallelism(comm));
    while (true)
    {
        var r = trainer.TrainStep();
        if (comm.Rank == 0) { Console.WriteLine($"step {r.Step}"); Console.Out.Flush(); }
    }
}

static void Collectives(ICommunicator comm)
{
    int n = comm.Size, me = comm.Rank;
    static float V(int rank, int i) => rank * 1000 + i * 0.5f;
    void Expect(bool ok, string what) { if (!ok) throw new InvalidOperationException($"collective check failed: {what}"); }

    comm.Barrier();
    // Broadcast from the last rank.
    var b = new double[5];
    if (me == n - 1) for (int i = 0; i < 5; i++) b[i] = i + 0.25;
    comm.Broadcast<double>(b, n - 1);
    for (int i = 0; i < 5; i++) Expect(b[i] == i + 0.25, $"broadcast[{i}] = {b[i]}");

    // Allreduce sum / average / max, float and double, in place and not.
    var x = new float[37]; var y = new float[37];
    for (int i = 0; i < x.Length; i++) x[i] = V(me, i);
    comm.Allreduce<float>(x, y, ReduceOp.Sum);
    for (int i = 0; i < x.Length; i++) { float s = 0; for (int r = 0; r < n; r++) s += V(r, i); Expect(y[i] == s, $"allreduce sum[{i}] = {y[i]}, expected {s}"); }
    var d = new double[3]; for (int i = 0; i < 3; i++) d[i] = me + i;
    comm.Allreduce<double>(d, d, ReduceOp.Average);
    for (int i = 0; i < 3; i++) Expect(d[i] == (n - 1) / 2.0 + i, $"allreduce average[{i}] = {d[i]}");
    var mx = new int[] { me * 3 };
    comm.Allreduce<int>(mx, mx, ReduceOp.Max);
    Expect(mx[0] == (n - 1) * 3, $"allreduce max = {mx[0]}");

    // Reduce-scatter: rank r gets the sum of every rank's block r.
    var rs = new float[4 * n]; var rsOut = new float[4];
    for (int i = 0; i < rs.Length; i++) rs[i] = V(me, i);
    comm.ReduceScatter<float>(rs, rsOut, ReduceOp.Sum);
    for (int i = 0; i < 4; i++) { float s = 0; for (int r = 0; r < n; r++) s += V(r, me * 4 + i); Expect(rsOut[i] == s, $"reduce-scatter[{i}] = {rsOut[i]}"); }

    // Allgather, allgatherv with uneven counts.
    var ag = new float[2 * n];
    comm.Allgather<float>([V(me, 0), V(me, 1)], ag);
    for (int r = 0; r < n; r++) Expect(ag[2 * r] == V(r, 0) && ag[2 * r + 1] == V(r, 1), $"allgather block {r}");
    var counts = new int[n]; for (int r = 0; r < n; r++) counts[r] = r + 1;
    var agv = new float[n * (n + 1) / 2];
    var mine = new float[me + 1]; for (int i = 0; i <= me; i++) mine[i] = V(me, i);
    comm.Allgatherv<float>(mine, agv, counts);
    for (int r = 0, at = 0; r < n; r++) for (int i = 0; i <= r; i++, at++) Expect(agv[at] == V(r, i), $"allgatherv[{at}]");

    // Alltoall (equal blocks) and alltoallv (rank i sends i+j+1 elements to rank j).
    var a2a = new float[3 * n]; var a2aOut = new float[3 * n];
    for (int j = 0; j < n; j++) for (int k = 0; k < 3; k++) a2a[3 * j + k] = V(me, 10 * j + k);
    comm.Alltoall<float>(a2a, a2aOut);
    for (int i = 0; i < n; i++) for (int k = 0; k < 3; k++) Expect(a2aOut[3 * i + k] == V(i, 10 * me + k), $"alltoall from {i}");
    var sc = new int[n]; var rc = new int[n];
    for (int j = 0; j < n; j++) { sc[j] = me + j + 1; rc[j] = j + me + 1; }
    var sv = new float[sc.Sum()]; var rv = new float[rc.Sum()];
    for (int j = 0, at = 0; j < n; j++) for (int k = 0; k < sc[j]; k++, at++) sv[at] = V(me, 100 * j + k);
    var req = comm.AlltoallvAsync(sv, sc, rv, rc);
    req.Wait();
    for (int i = 0, at = 0; i < n; i++) for (int k = 0; k < rc[i]; k++, at++) Expect(rv[at] == V(i, 100 * me + k), $"alltoallv from {i}[{k}]");

    // Non-blocking allreduce overlapping a local loop, then the ordered sum against its single-process twin.
    var big = new float[1 << 16];
    for (int i = 0; i < big.Length; i++) big[i] = V(me, i % 977) * 1e-3f;
    var pending = comm.AllreduceAsync(big, big, ReduceOp.Average);
    double busy = 0; for (int i = 0; i < 1000; i++) busy += Math.Sqrt(i);
    pending.Wait();
    for (int i = 0; i < big.Length; i += 101)
    {
        float s = 0; for (int r = 0; r < n; r++) s += V(r, i % 977) * 1e-3f;
        Expect(Math.Abs(big[i] - s / n) <= 1e-6f * Math.Abs(s) + 1e-7f, $"iallreduce average[{i}] = {big[i]} vs {s / n}");
    }
    var sum = new OrderedSum(comm, 1001);
    for (int i = 0; i < sum.Length; i++) sum.Input[i] = 1f / (me + 1) + i * 1e-7f * (me + 3);
    sum.Start(); sum.Wait();
    var twin = new float[sum.Length];
    for (int r = 0; r < n; r++)
    {
        var part = new float[sum.Length];
        for (int i = 0; i < part.Length; i++) part[i] = 1f / (r + 1) + i * 1e-7f * (r + 3);
        if (r == 0) part.CopyTo(twin); else OrderedSum.AddInOrder(twin, part);
    }
    for (int i = 0; i < twin.Length; i++) Expect(BitConverter.SingleToInt32Bits(twin[i]) == BitConverter.SingleToInt32Bits(sum.Result[i]), $"ordered sum[{i}] {sum.Result[i]} vs {twin[i]}");

    // Errors name the call and the rank.
    try { comm.Allgatherv<float>([1f], new float[n], new int[n + 1]); Expect(false, "bad counts accepted"); }
    catch (CommunicatorException e) { Expect(e.Message.Contains("MPI_Iallgatherv") && e.Message.Contains($"rank {me} of {n}"), $"error message '{e.Message}'"); }
    if (me == 0) Console.WriteLine($"collectives ok on {n} ranks: {comm.Description}");
    _ = busy;
}
