using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Tessera.Data;
using Tessera.Training.ResumeWorker;
using Xunit.Abstractions;

namespace Tessera.Training.Tests;

/// <summary>
/// Exact resume. An uninterrupted in-process run of <see cref="ResumeRun"/> is the reference;
/// a separate worker process trains the same run, checkpointing every step, and is SIGKILLed
/// (Process.Kill) — once after some checkpoint is complete, once while a checkpoint is half
/// written. Resuming from what is on disk must reproduce the reference's per-step losses and
/// its final weights and AdamW moments bit for bit.
/// </summary>
public class ResumeTests(ITestOutputHelper output)
{
    static string WorkerDll => typeof(ResumeTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "ResumeWorker").Value!;

    sealed record Reference(long[] LossBits, Dictionary<string, int[]> Final, DataCursor Cursor);

    static Reference RunUninterrupted(TokenShard shard)
    {
        using var t = new Trainer(ResumeRun.Config, ResumeRun.Options, new TrainData([shard]));
        var bits = new List<long>();
        t.StepCompleted = r => bits.Add(BitConverter.DoubleToInt64Bits(r.TotalLoss));
        t.Run();
        return new Reference([.. bits], TestData.Snapshot(t), t.Cursor);
    }

    Process StartWorker(string run, string shard, string side, long stallAt, int delayMs)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        Assert.True(File.Exists(WorkerDll), $"resume worker not built at {WorkerDll}");
        var psi = new ProcessStartInfo(dotnet) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "exec", WorkerDll, run, shard, side, stallAt.ToString(CultureInfo.InvariantCulture), delayMs.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    static void WaitFor(Func<bool> condition, Process worker, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (worker.HasExited) throw new Xunit.Sdk.XunitException($"worker exited (code {worker.ExitCode}) before {what}: {worker.StandardError.ReadToEnd()}");
            if (clock.Elapsed > TimeSpan.FromSeconds(60)) { worker.Kill(true); throw new TimeoutException($"timed out waiting for {what}"); }
            Thread.Sleep(2);
        }
    }

    /// <summary>Losses the killed worker logged, by step (1-based).</summary>
    static Dictionary<long, long> WorkerLosses(string side)
    {
        var d = new Dictionary<long, long>();
        foreach (var f in Directory.GetFiles(side, "losses-*.log"))
            foreach (var line in File.ReadAllLines(f))
            {
                var parts = line.Split(' ');
                if (parts.Length == 2 && parts[1].Length == 16) d[long.Parse(parts[0], CultureInfo.InvariantCulture)] = long.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            }
        return d;
    }

    void ResumeAndCompare(string run, TokenShard shard, Reference reference, Dictionary<long, long> before, long expectedStart)
    {
        using var t = Trainer.Resume(run, new TrainData([shard]));
        output.WriteLine($"resuming at step {t.Step} of {ResumeRun.Options.Steps}");
        if (expectedStart > 0) Assert.Equal(expectedStart, t.Step);
        Assert.InRange(t.Step, 1, ResumeRun.Options.Steps - 1);
        for (long s = 1; s <= t.Step; s++)
        {
            Assert.True(before.ContainsKey(s), $"worker did not log step {s}");
            Assert.True(reference.LossBits[s - 1] == before[s], $"step {s}: the worker's loss differs from the uninterrupted run");
        }
        t.StepCompleted = r => Assert.True(reference.LossBits[r.Step - 1] == BitConverter.DoubleToInt64Bits(r.TotalLoss),
            $"step {r.Step} after resume: loss {r.TotalLoss:R} differs from the uninterrupted run's {BitConverter.Int64BitsToDouble(reference.LossBits[r.Step - 1]):R}");
        t.Run();
        Assert.Equal(ResumeRun.Options.Steps, t.Step);
        Assert.Equal(reference.Cursor, t.Cursor);
        TestData.AssertSame(reference.Final, TestData.Snapshot(t));
    }

    [Fact]
    public void AWorkerKilledAfterACheckpointResumesBitIdentically()
    {
        using var dir = new TempDir();
        ResumeRun.WriteShard(dir.File("shard.bin"));
        using var shard = TokenShard.Open(dir.File("shard.bin"));
        var reference = RunUninterrupted(shard);
        string run = dir.File("run"), side = dir.File("side");
        Directory.CreateDirectory(side);
        using var worker = StartWorker(run, dir.File("shard.bin"), side, stallAt: 0, delayMs: 30);
        WaitFor(() => Directory.Exists(Path.Combine(run, "step-00000005")), worker, "checkpoint 5");
        worker.Kill(entireProcessTree: true);
        worker.WaitForExit();
        ResumeAndCompare(run, shard, reference, WorkerLosses(side), expectedStart: 0);
    }

    [Fact]
    public void AWorkerKilledMidSaveLeavesThePreviousCheckpointAndResumesBitIdentically()
    {
        using var dir = new TempDir();
        ResumeRun.WriteShard(dir.File("shard.bin"));
        using var shard = TokenShard.Open(dir.File("shard.bin"));
        var reference = RunUninterrupted(shard);
        string run = dir.File("run"), side = dir.File("side");
        Directory.CreateDirectory(side);
        using var worker = StartWorker(run, dir.File("shard.bin"), side, stallAt: 6, delayMs: 0);
        WaitFor(() => File.Exists(Path.Combine(side, "stalled")), worker, "the stalled save of step 6");
        worker.Kill(entireProcessTree: true);
        worker.WaitForExit();

        // The half-written step 6 holds weights and state but no manifest, and was never published.
        string staging = File.ReadAllText(Path.Combine(side, "stalled"));
        Assert.True(File.Exists(Path.Combine(staging, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(staging, "checkpoint.json")));
        Assert.False(Directory.Exists(Path.Combine(run, "step-00000006")));
        Assert.EndsWith("step-00000005", Checkpoint.Resolve(run));
        ResumeAndCompare(run, shard, reference, WorkerLosses(side), expectedStart: 5);
        Assert.False(Directory.Exists(staging), "the dead worker's staging folder should be cleaned up by the next save");
    }
}
