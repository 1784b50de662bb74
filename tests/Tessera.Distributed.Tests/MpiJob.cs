using System.Diagnostics;
using System.Reflection;

// The MPI jobs oversubscribe the machine's cores; run test classes one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Tessera.Distributed.Tests;

/// <summary>Launches the worker under mpirun and collects what it printed.</summary>
public static class MpiJob
{
    /// <summary>Path of mpirun, or null when Open MPI / MPICH is not installed.</summary>
    public static readonly string? Mpirun = Find("mpirun") ?? Find("mpiexec");

    public const string InstallHint = "mpirun not found: the MPI tests are skipped (install with: apt-get install openmpi-bin libopenmpi-dev).";

    public static string Worker => typeof(MpiJob).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "DistributedWorker").Value!;

    public sealed record Result(int ExitCode, string Output, TimeSpan Elapsed, bool TimedOut);

    /// <summary>Runs <paramref name="ranks"/> copies of the worker with <paramref name="args"/>; kills the job after <paramref name="limit"/>.</summary>
    public static Result Run(int ranks, string args, TimeSpan? limit = null, Action<Process, System.Text.StringBuilder>? watch = null, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(Mpirun!, $"-np {ranks} --allow-run-as-root --oversubscribe --bind-to none dotnet \"{Worker}\" {args}")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.Environment["OMPI_MCA_btl"] = "self,vader"; // loopback only: shared memory between local ranks
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        return Start(psi, limit ?? TimeSpan.FromSeconds(120), watch);
    }

    /// <summary>Runs the worker alone (no mpirun).</summary>
    public static Result RunAlone(string args, IDictionary<string, string> env)
    {
        var psi = new ProcessStartInfo("dotnet", $"\"{Worker}\" {args}") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (k, v) in env) psi.Environment[k] = v;
        return Start(psi, TimeSpan.FromSeconds(60), null);
    }

    static Result Start(ProcessStartInfo psi, TimeSpan limit, Action<Process, System.Text.StringBuilder>? watch)
    {
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var text = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        p.BeginOutputReadLine(); p.BeginErrorReadLine();
        watch?.Invoke(p, text);
        bool exited = p.WaitForExit(limit);
        if (!exited) { p.Kill(entireProcessTree: true); p.WaitForExit(); }
        else p.WaitForExit(); // drain the redirected streams
        lock (text) return new Result(exited ? p.ExitCode : -1, text.ToString(), clock.Elapsed, !exited);
    }

    static string? Find(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string f = Path.Combine(dir, name);
            if (File.Exists(f)) return f;
        }
        return null;
    }
}

/// <summary>A fact skipped, with the install command, where mpirun is not installed.</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public MpiFactAttribute() { if (MpiJob.Mpirun is null) Skip = MpiJob.InstallHint; }
}

/// <summary>A theory skipped, with the install command, where mpirun is not installed.</summary>
public sealed class MpiTheoryAttribute : TheoryAttribute
{
    public MpiTheoryAttribute() { if (MpiJob.Mpirun is null) Skip = MpiJob.InstallHint; }
}

/// <summary>A scratch folder removed when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("tessera-dist-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
}
