using System.Diagnostics;
using Tessera.Data;
using Tessera.Distributed.Worker;
using Tessera.Training;

namespace Tessera.Distributed.Tests;

/// <summary>Collectives under mpirun, resume on another world size, a killed rank, and bad input.</summary>
public class OperationsTests
{
    [MpiTheory]
    [InlineData(2)]
    [InlineData(4)]
    public void EveryCollectiveMatchesItsLocalDefinition(int ranks)
    {
        var job = MpiJob.Run(ranks, "collectives");
        Assert.True(job.ExitCode == 0, job.Output);
        Assert.Contains($"collectives ok on {ranks} ranks", job.Output);
    }

    [MpiFact]
    public void ResumeOnAnotherWorldSizeContinuesLikeTheSingleProcessResume()
    {
        // 2 ranks write checkpoints (rank 0 only) at steps 2 and 4; 4 ranks resume from step 2 to 4.
        using var dir = new TempDir();
        string shard = dir.File("s.bin"), run = dir.File("run");
        DistRun.WriteShard(shard);
        var first = MpiJob.Run(2, $"train {shard} {dir.File("a.bin")} 4 ckpt {run}");
        Assert.True(first.ExitCode == 0, first.Output);
        string step2 = Directory.GetDirectories(run).Single(d => Path.GetFileName(d).Contains("000002"));
        string copy = dir.File("step2");
        CopyFolder(step2, copy);                                     // the resumed runs write step 4 beside it
        var second = MpiJob.Run(4, $"train {shard} {dir.File("b.bin")} 4 resume {copy}");
        Assert.True(second.ExitCode == 0, second.Output);

        using var s = TokenShard.Open(shard);
        using var t = Trainer.Resume(copy, new TrainData([s]), 4, Parallelism.SingleProcess(4));
        var losses = new List<double>();
        t.StepCompleted = r => losses.Add(r.Loss);
        t.Run();
        var expected = DistRun.Snapshot(t, losses);
        var actual = File.ReadAllBytes(dir.File("b.bin"));
        Assert.Equal(2, losses.Count);
        Assert.True(expected.AsSpan().SequenceEqual(actual), "4-rank resume differs from the single-process resume with 4 slices");
    }

    [MpiFact]
    public void KillingOneRankEndsTheJobWithinSixtySeconds()
    {
        using var dir = new TempDir();
        DistRun.WriteShard(dir.File("s.bin"));
        TimeSpan? killedAt = null;
        var clock = Stopwatch.StartNew();
        var job = MpiJob.Run(2, $"endless {dir.File("s.bin")}", TimeSpan.FromSeconds(90), (mpirun, output) =>
        {
            // Wait for training to run, then SIGKILL rank 1 (a child of mpirun running the worker).
            while (!mpirun.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                lock (output) if (output.ToString().Contains("step 3")) break;
                Thread.Sleep(100);
            }
            int victim = WorkerPids(mpirun.Id).Last();
            killedAt = clock.Elapsed;
            Process.GetProcessById(victim).Kill();
        }, new Dictionary<string, string> { ["TESSERA_COMM_TIMEOUT"] = "30" });
        Assert.False(job.TimedOut, "the job was still running 90 s after the kill:\n" + job.Output);
        Assert.NotNull(killedAt);
        var ended = job.Elapsed - killedAt.Value;
        Assert.True(ended < TimeSpan.FromSeconds(60), $"the job ended {ended.TotalSeconds:F0} s after the kill");
        Assert.NotEqual(0, job.ExitCode);
        // Open MPI's launcher names the dead rank; our own timeout message would name the call.
        Assert.True(job.Output.Contains("signal 9") || job.Output.Contains("did not complete within") || job.Output.Contains("died"), job.Output);
    }

    [MpiFact]
    public void BatchNotDividingTheWorldFailsOnEveryRankWithOneMessage()
    {
        using var dir = new TempDir();
        DistRun.WriteShard(dir.File("s.bin"));
        var job = MpiJob.Run(4, $"train {dir.File("s.bin")} {dir.File("o.bin")} 1 batch 6", TimeSpan.FromSeconds(60));
        Assert.False(job.TimedOut, job.Output);
        Assert.NotEqual(0, job.ExitCode);
        for (int r = 0; r < 4; r++)
            Assert.Contains($"rank {r}: Distributed training: the batch of 6 sequences does not split into 4 equal slices", job.Output);
    }

    [MpiFact]
    public void ExpertCountNotDividingTheWorldFailsOnEveryRankWithOneMessage()
    {
        using var dir = new TempDir();
        DistRun.WriteShard(dir.File("s.bin"));
        var job = MpiJob.Run(3, $"train {dir.File("s.bin")} {dir.File("o.bin")} 1 batch 6 experts", TimeSpan.FromSeconds(60));
        Assert.False(job.TimedOut, job.Output);
        Assert.NotEqual(0, job.ExitCode);
        for (int r = 0; r < 3; r++)
            Assert.Contains($"rank {r}: Expert parallelism: 4 experts do not split evenly over 3 ranks", job.Output);
    }

    [MpiFact]
    public void MismatchedConfigsFailOnEveryRankWithOneMessage()
    {
        using var dir = new TempDir();
        DistRun.WriteShard(dir.File("s.bin"));
        var job = MpiJob.Run(2, $"train {dir.File("s.bin")} {dir.File("o.bin")} 1 seed-by-rank", TimeSpan.FromSeconds(60));
        Assert.False(job.TimedOut, job.Output);
        Assert.NotEqual(0, job.ExitCode);
        for (int r = 0; r < 2; r++)
            Assert.Contains($"rank {r}: Distributed training: rank(s) 1 have a different model config, training options or data than rank 0", job.Output);
    }

    [Fact]
    public void NoMpiLibraryIsOneClearError()
    {
        var job = MpiJob.RunAlone("collectives", new Dictionary<string, string> { [MpiLibrary.PathVariable] = "/nonexistent/libmpi.so" });
        Assert.Equal(3, job.ExitCode);
        Assert.Contains("No MPI library could be loaded (tried /nonexistent/libmpi.so", job.Output);
        Assert.Contains("apt-get install openmpi-bin", job.Output);
    }

    static List<int> WorkerPids(int mpirunPid)
    {
        // Children of mpirun whose command line runs the worker, in pid order.
        var pids = new List<int>();
        foreach (string d in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out int pid)) continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(d, "stat"));
                int ppid = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                if (ppid == mpirunPid && File.ReadAllText(Path.Combine(d, "cmdline")).Contains("Tessera.Distributed.Worker")) pids.Add(pid);
            }
            catch (IOException) { }
        }
        pids.Sort();
        if (pids.Count == 0) throw new InvalidOperationException($"no worker process under mpirun (pid {mpirunPid})");
        return pids;
    }

    static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string f in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
    }
}
