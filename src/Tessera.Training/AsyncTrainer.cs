using System.Text.Json;
using Tessera.Data;
using Tessera.Distributed;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Training;

/// <summary>One applied update of an asynchronous run: who computed it, on which weights, from which data.</summary>
/// <param name="Update">0-based index of the update (the weights become version Update + 1).</param>
/// <param name="Worker">The rank that computed the gradient.</param>
/// <param name="WeightVersion">The weights it was computed on (≤ Update: stale by Update − WeightVersion).</param>
/// <param name="Cursor">Where the training reader stood before reading its batch.</param>
/// <param name="Loss">The loss the worker measured.</param>
public sealed record AsyncUpdate(long Update, int Worker, long WeightVersion, DataCursor Cursor, double Loss);

/// <summary>
/// Asynchronous data parallelism with a replay log. Rank 0 keeps the weights and AdamW; every other
/// rank is a worker that receives (weights of version v, a batch), computes the gradient and sends
/// it back. Rank 0 applies gradients in the order they arrive, clip + AdamW at the schedule's
/// learning rate for that update, and at once sends that worker the new weights and the next batch,
/// so the other workers' gradients are computed on older (stale) weights. Every applied update is
/// logged (<see cref="AsyncUpdate"/>, JSON lines). <see cref="Replay"/> redoes the log in one process:
/// the same gradients on the same weight versions and batches, applied in the same order, give the
/// same weights bit for bit.
/// </summary>
public static class AsyncTrainer
{
    const int TagJob = 11, TagWeights = 12, TagBatch = 13, TagGradient = 14;
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// Runs <see cref="TrainOptions.Steps"/> updates over <paramref name="comm"/> (≥ 2 ranks; every
    /// rank calls this). Each gradient is one batch of <see cref="TrainOptions.BatchSize"/>
    /// sequences. Rank 0 returns the trained model and writes the log to <paramref name="logPath"/>
    /// (atomically, at the end); workers return null.
    /// </summary>
    public static Transformer? Run(ModelConfig config, TrainOptions options, TrainData data, ICommunicator comm, string logPath)
    {
        if (comm.Size < 2) throw new ArgumentException($"Asynchronous training needs a server and at least one worker: run it under mpirun with 2 or more ranks (world size {comm.Size}).");
        Check(config, options);
        var model = new Transformer(config, options.Seed);
        try
        {
            if (comm.Rank == 0) { Serve(model, options, data, comm, logPath); return model; }
            Work(model, options, comm);
            model.Dispose();
            return null;
        }
        catch { model.Dispose(); throw; }
    }

    static void Check(ModelConfig config, TrainOptions options)
    {
        options.Validate();
        config.Validate();
        if (options.GradAccumulation != 1) throw new ArgumentException($"Asynchronous training: gradient accumulation ({options.GradAccumulation}) must be 1: every gradient is one batch.");
        if (config.Dropout > 0) throw new ArgumentException($"Asynchronous training: dropout ({config.Dropout}) is not replayable; train with dropout 0.");
    }

    static void Serve(Transformer model, TrainOptions o, TrainData data, ICommunicator comm, string logPath)
    {
        var all = model.Parameters.All;
        using var optimizer = new AdamW(all, o.LearningRate, o.Beta1, o.Beta2, o.AdamEpsilon, o.WeightDecay, model.Parameters.Decays);
        var schedule = LearningRateSchedule.From(o);
        var reader = new BatchReader(data.Train, o.BatchSize, o.SequenceLength, o.Seed, o.ShuffleData);
        int workers = comm.Size - 1, tokens = o.BatchSize * o.SequenceLength;
        long parameters = model.Parameters.ElementCount;
        var weights = new float[workers][]; var batch = new int[workers][]; var job = new long[workers][];
        var grads = new float[workers][]; var pending = new CommRequest?[workers];
        var jobVersion = new long[workers]; var jobCursor = new DataCursor[workers];
        var sends = new List<CommRequest>();
        long version = 0;
        for (int w = 0; w < workers; w++)
        {
            weights[w] = new float[parameters]; batch[w] = new int[2 * tokens]; job[w] = new long[2]; grads[w] = new float[parameters + 1];
        }

        void Dispatch(int w)
        {
            foreach (var s in sends) s.Wait(); // buffers are reused: earlier sends must have left
            sends.Clear();
            jobVersion[w] = version; jobCursor[w] = reader.Cursor;
            reader.Next(batch[w].AsSpan(0, tokens), batch[w].AsSpan(tokens));
            Flatten(all, weights[w]);
            job[w][0] = version; job[w][1] = 0;
            sends.Add(comm.SendAsync(job[w], w + 1, TagJob));
            sends.Add(comm.SendAsync(weights[w], w + 1, TagWeights));
            sends.Add(comm.SendAsync(batch[w], w + 1, TagBatch));
            pending[w] = comm.ReceiveAsync(grads[w], w + 1, TagGradient);
        }

        for (int w = 0; w < workers; w++) Dispatch(w);
        var log = new List<AsyncUpdate>();
        int next = 0;
        var wait = System.Diagnostics.Stopwatch.StartNew();
        for (long update = 0; update < o.Steps; update++)
        {
            // The first finished gradient, scanning from after the last one served (no worker starves).
            int w = -1;
            wait.Restart();
            while (w < 0)
            {
                for (int k = 0; k < workers && w < 0; k++)
                {
                    int c = (next + k) % workers;
                    if (pending[c] is { } r && r.Test()) w = c;
                }
                if (w < 0)
                {
                    if (wait.Elapsed > comm.Timeout)
                        throw new CommunicatorException($"Asynchronous training: no gradient arrived on rank 0 within {comm.Timeout.TotalSeconds:F0} s; a worker rank has probably died.");
                    Thread.Sleep(0);
                }
            }
            next = (w + 1) % workers;
            Apply(model, optimizer, grads[w], schedule.At(update), o.ClipNorm);
            version++;
            log.Add(new AsyncUpdate(update, w + 1, jobVersion[w], jobCursor[w], grads[w][parameters]));
            if (update + workers < o.Steps) Dispatch(w);       // enough jobs are out to finish the run
            else pending[w] = null;
        }
        foreach (var s in sends) s.Wait();
        for (int w = 0; w < workers; w++)
        {
            pending[w]?.Wait();                                  // a surplus gradient is dropped
            job[w][1] = 1;
            comm.SendAsync(job[w], w + 1, TagJob).Wait();
        }
        var lines = new System.Text.StringBuilder();
        foreach (var u in log) lines.Append(JsonSerializer.Serialize(u, Json)).Append('\n');
        string tmp = logPath + ".tmp";
        File.WriteAllText(tmp, lines.ToString());
        File.Move(tmp, logPath, overwrite: true);
    }

    static void Work(Transformer model, TrainOptions o, ICommunicator comm)
    {
        var all = model.Parameters.All;
        int tokens = o.BatchSize * o.SequenceLength;
        var job = new long[2]; var weights = new float[model.Parameters.ElementCount]; var batch = new int[2 * tokens];
        var grad = new float[weights.Length + 1];
        while (true)
        {
            comm.ReceiveAsync(job, 0, TagJob).Wait();
            if (job[1] != 0) return;
            comm.ReceiveAsync(weights, 0, TagWeights).Wait();
            comm.ReceiveAsync(batch, 0, TagBatch).Wait();
            Unflatten(weights, all);
            grad[^1] = (float)Gradient(model, batch, o, tokens);
            FlattenGrad(all, grad);
            comm.SendAsync(grad, 0, TagGradient).Wait();
        }
    }

    /// <summary>Forward and backward of one batch into zeroed gradients; returns the cross-entropy.</summary>
    static double Gradient(Transformer model, int[] batch, TrainOptions o, int tokens)
    {
        // Every gradient buffer exists and is zero before backward, so workers and the replay take
        // the same (accumulating) kernel path whatever they computed before.
        foreach (var p in model.Parameters.All) Graph.LeafGradient(p).Clear();
        using var g = new Graph();
        var output = model.Forward(g, batch.AsSpan(0, tokens), o.BatchSize, o.SequenceLength, batch.AsSpan(tokens));
        g.Backward(output.Loss!);
        return output.CrossEntropy!.Item();
    }

    static void Apply(Transformer model, AdamW optimizer, float[] grad, float learningRate, float clipNorm)
    {
        int at = 0;
        foreach (var p in model.Parameters.All)
        {
            var g = Graph.LeafGradient(p);
            grad.AsSpan(at, g.Length).CopyTo(g);
            at += g.Length;
        }
        GradClip.ClipGlobalNorm(model.Parameters.All, clipNorm > 0 ? clipNorm : double.PositiveInfinity);
        optimizer.LearningRate = learningRate;
        optimizer.Step();
    }

    /// <summary>
    /// Replays <paramref name="logPath"/> in this process: for each logged update, the gradient of
    /// its batch (read at its cursor) on its weight version, applied in log order. Returns the
    /// model, bit-identical to rank 0's at the end of the logged run.
    /// </summary>
    public static Transformer Replay(ModelConfig config, TrainOptions options, TrainData data, string logPath)
    {
        Check(config, options);
        var log = ReadLog(logPath);
        var master = new Transformer(config, options.Seed);
        try
        {
            using var worker = new Transformer(config, options.Seed);
            using var optimizer = new AdamW(master.Parameters.All, options.LearningRate, options.Beta1, options.Beta2, options.AdamEpsilon, options.WeightDecay, master.Parameters.Decays);
            var schedule = LearningRateSchedule.From(options);
            int tokens = options.BatchSize * options.SequenceLength;
            // Keep each weight version until its last use.
            var lastUse = new Dictionary<long, long>();
            foreach (var u in log) lastUse[u.WeightVersion] = u.Update;
            var versions = new Dictionary<long, float[]>();
            var flat = new float[master.Parameters.ElementCount];
            if (lastUse.ContainsKey(0)) { Flatten(master.Parameters.All, flat); versions[0] = (float[])flat.Clone(); }
            var batch = new int[2 * tokens];
            var grad = new float[flat.Length + 1];
            for (int i = 0; i < log.Count; i++)
            {
                var u = log[i];
                if (u.Update != i) throw new InvalidDataException($"{logPath}: entry {i} is update {u.Update}; the log is not in order.");
                if (!versions.TryGetValue(u.WeightVersion, out var w))
                    throw new InvalidDataException($"{logPath}: update {u.Update} used weight version {u.WeightVersion}, which the log cannot have produced by then.");
                Unflatten(w, worker.Parameters.All);
                var reader = new BatchReader(data.Train, options.BatchSize, options.SequenceLength, options.Seed, options.ShuffleData, u.Cursor);
                reader.Next(batch.AsSpan(0, tokens), batch.AsSpan(tokens));
                Gradient(worker, batch, options, tokens);
                FlattenGrad(worker.Parameters.All, grad);
                Apply(master, optimizer, grad, schedule.At(u.Update), options.ClipNorm);
                if (lastUse.TryGetValue(u.WeightVersion, out long last) && last == u.Update) versions.Remove(u.WeightVersion);
                if (lastUse.ContainsKey(u.Update + 1)) { Flatten(master.Parameters.All, flat); versions[u.Update + 1] = (float[])flat.Clone(); }
            }
            return master;
        }
        catch { master.Dispose(); throw; }
    }

    /// <summary>Reads a replay log (JSON lines of <see cref="AsyncUpdate"/>); errors name the file and line.</summary>
    public static List<AsyncUpdate> ReadLog(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Replay log {path} does not exist.", path);
        var list = new List<AsyncUpdate>();
        int n = 0;
        foreach (string line in File.ReadLines(path))
        {
            n++;
            if (line.Length == 0) continue;
            try { list.Add(JsonSerializer.Deserialize<AsyncUpdate>(line, Json) ?? throw new JsonException("null entry")); }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{n}: not a replay log entry ({e.Message})."); }
        }
        return list;
    }

    static void Flatten(IReadOnlyList<Tensor> ps, float[] into)
    {
        int at = 0;
        foreach (var p in ps) { var s = p.AsSpan("AsyncTrainer"); s.CopyTo(into.AsSpan(at)); at += s.Length; }
    }

    static void FlattenGrad(IReadOnlyList<Tensor> ps, float[] into)
    {
        int at = 0;
        foreach (var p in ps) { var s = Graph.LeafGradient(p); s.CopyTo(into.AsSpan(at)); at += s.Length; }
    }

    static void Unflatten(float[] from, IReadOnlyList<Tensor> ps)
    {
        int at = 0;
        foreach (var p in ps) { var s = p.AsSpan("AsyncTrainer"); from.AsSpan(at, s.Length).CopyTo(s); at += s.Length; }
    }
}
