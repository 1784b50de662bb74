using System.Diagnostics;
using Tessera.Kernels;
using Tessera.Model;
using Tessera.Tensors;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>bench train --scaling 1,2</c>: where a second thread's time goes. One model, one process; steps
/// alternate between the two thread counts in ABBA order (A B B A A B …), each with a wall-clock op
/// profile of its own, so a change in machine load during the run hits both sides alike and the
/// per-family ratio (time at A ÷ time at B) is what the thread split achieves, not what the host
/// allowed at that minute. Before each pair the FMA probe also runs on A and on B threads at once:
/// its ratio is the most a perfectly split step could gain at that moment (a host that gives the
/// VM's second vCPU only part of a core shows it here). Results are the same as ordinary steps
/// (profiling and thread switches change no arithmetic at a given thread count).
/// </summary>
static class TrainThreadScaling
{
    /// <summary>Per-family wall ms summed over the steps run at one thread count, plus step and CPU totals.</summary>
    internal sealed class Side(int threads, string? label = null, Action? apply = null)
    {
        public readonly int Threads = threads;
        public readonly string Label = label ?? $"{threads} thr";
        public readonly Action? Apply = apply;
        public readonly Dictionary<string, double> Family = new(StringComparer.Ordinal);
        public readonly Dictionary<string, double> Entry = new(StringComparer.Ordinal);
        public readonly List<double> Steps = [];
        public double CpuMs, ProbeGflops, MainCpuMs;
        public int Probes;
    }

    /// <summary>
    /// Runs <paramref name="pairs"/> steps at each of <paramref name="a"/> and <paramref name="b"/> threads
    /// (after <paramref name="warmup"/> untimed steps at each) and prints the per-family comparison.
    /// </summary>
    public static void Run(ModelConfig config, string name, int batch, int seq, int a, int b, int pairs, int warmup,
        Func<ModelConfig, int, int, int, (Trainer Trainer, IDisposable Data)> createTrainer, Action<string> progress)
        => Run(config, name, batch, seq, new Side(a), new Side(b), pairs, warmup, createTrainer, progress);

    /// <summary>
    /// The same alternation between two arbitrary variants (a thread count plus a setting applied
    /// before each of its steps), e.g. the GEMM's static and dynamic split at 2 threads.
    /// </summary>
    public static void Run(ModelConfig config, string name, int batch, int seq, Side sideA, Side sideB, int pairs, int warmup,
        Func<ModelConfig, int, int, int, (Trainer Trainer, IDisposable Data)> createTrainer, Action<string> progress)
    {
        bool wasEnabled = OpProfile.Enabled, wasCpu = OpProfile.UseThreadCpuTime;
        OpProfile.Enabled = true;
        OpProfile.UseThreadCpuTime = false; // two threads cannot be timed on one thread's CPU clock
        var (trainer, data) = createTrainer(config, batch, seq, 2 * (pairs + warmup));
        try
        {
            var sides = new[] { sideA, sideB };
            for (int i = 0; i < warmup; i++)
                foreach (var s in sides) { WorkerPool.SetSharedThreadCount(s.Threads); s.Apply?.Invoke(); trainer.TrainStep(); }
            var process = Process.GetCurrentProcess();
            WorkerPool.ResetAccounts();
            for (int p = 0; p < pairs; p++)
            {
                // ABBA: the order flips every pair, so a linear drift in load cancels over two pairs.
                var order = p % 2 == 0 ? sides : [sides[1], sides[0]];
                foreach (var s in order)
                {
                    WorkerPool.SetSharedThreadCount(s.Threads);
                    s.Apply?.Invoke();
                    s.ProbeGflops += GemmPeak.MeasureGflops(WorkerPool.Shared, 0.05);
                    s.Probes++;
                    OpProfile.Reset();
                    process.Refresh();
                    var cpu0 = process.TotalProcessorTime;
                    WorkerPool.Accounting = ReferenceEquals(s, sideB) && s.Threads > 1;
                    long main0 = WorkerPool.ThreadCpuNanoseconds();
                    long t0 = Stopwatch.GetTimestamp();
                    trainer.TrainStep();
                    s.Steps.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    s.MainCpuMs += (WorkerPool.ThreadCpuNanoseconds() - main0) / 1e6;
                    WorkerPool.Accounting = false;
                    process.Refresh();
                    s.CpuMs += (process.TotalProcessorTime - cpu0).TotalMilliseconds;
                    foreach (var e in OpProfile.Entries())
                    {
                        string f = TrainStepProfile.FamilyOf(e.Key);
                        s.Family[f] = s.Family.GetValueOrDefault(f) + e.Milliseconds;
                        s.Entry[e.Key] = s.Entry.GetValueOrDefault(e.Key) + e.Milliseconds;
                    }
                }
            }
            Print(name, batch, seq, config, sides[0], sides[1], pairs, progress);
        }
        finally
        {
            Tessera.Kernels.Gemm.DynamicSplit = true;
            trainer.Dispose();
            data.Dispose();
            OpProfile.Enabled = wasEnabled;
            OpProfile.UseThreadCpuTime = wasCpu;
            OpProfile.Reset();
            WorkerPool.Accounting = false;
        }
    }

    static void Print(string name, int batch, int seq, ModelConfig config, Side a, Side b, int pairs, Action<string> progress)
    {
        double stepA = a.Steps.Sum() / pairs, stepB = b.Steps.Sum() / pairs;
        double probeA = a.ProbeGflops / a.Probes, probeB = b.ProbeGflops / b.Probes;
        double flops = config.TrainingFlopsPerToken(seq) * batch * seq;
        progress($"  {a.Label} vs {b.Label}: {name} ({batch}×{seq}), {pairs} steps per side alternated ABBA in one process, wall clock, mean per step:");
        progress($"    FMA probe, all threads at once: {probeA:F0} GFLOP/s for {a.Label}, {probeB:F0} for {b.Label} " +
            $"(×{probeB / probeA:F2}: the most a perfect split could gain right now)");
        progress($"    {"",-22} {a.Label,10} {b.Label,10} {"speed-up",9} {"ms lost",9}   (lost = {b.Label} ms − {a.Label} ms × {a.Threads}/{b.Threads})");
        double ideal = (double)a.Threads / b.Threads, lostTotal = stepB - stepA * ideal;
        var families = new List<string>(a.Family.Keys);
        foreach (var f in b.Family.Keys) if (!families.Contains(f)) families.Add(f);
        families.Sort((x, y) => b.Family.GetValueOrDefault(y).CompareTo(b.Family.GetValueOrDefault(x)));
        double profiledA = 0, profiledB = 0;
        foreach (var f in families)
        {
            double ta = a.Family.GetValueOrDefault(f) / pairs, tb = b.Family.GetValueOrDefault(f) / pairs;
            profiledA += ta; profiledB += tb;
            progress($"    {f,-22} {ta,10:F1} {tb,10:F1} {Speedup(ta, tb),9} {tb - ta * ideal,9:F1}");
        }
        double oa = stepA - profiledA, ob = stepB - profiledB;
        progress($"    {"other (graph, data)",-22} {oa,10:F1} {ob,10:F1} {Speedup(oa, ob),9} {ob - oa * ideal,9:F1}");
        progress($"    {"step",-22} {stepA,10:F1} {stepB,10:F1} {Speedup(stepA, stepB),9} {lostTotal,9:F1}");
        progress($"    process CPU per step: {a.CpuMs / pairs:F0} ms for {a.Label}, {b.CpuMs / pairs:F0} ms for {b.Label} " +
            $"({b.CpuMs / pairs / stepB:F2} cores busy); MFU against the probe of the same moments: " +
            $"{100 * flops / (stepA / 1000) / (probeA * 1e9):F1}% for {a.Label}, {100 * flops / (stepB / 1000) / (probeB * 1e9):F1}% for {b.Label}; " +
            $"against the per-thread probe × threads: {100 * flops / (stepA / 1000) / (GemmPeak.PeakFlops(a.Threads)):F1}% / {100 * flops / (stepB / 1000) / (GemmPeak.PeakFlops(b.Threads)):F1}%");
        PrintAccounts(a, b, pairs, progress);
        // The entries that lose most, so a regression can be traced to an op.
        var entries = new List<(string Key, double Lost, double Ta, double Tb)>();
        foreach (var (k, tbTotal) in b.Entry)
        {
            double ta = a.Entry.GetValueOrDefault(k) / pairs, tb = tbTotal / pairs;
            entries.Add((k, tb - ta * ideal, ta, tb));
        }
        entries.Sort((x, y) => y.Lost.CompareTo(x.Lost));
        progress("    ops losing the most:");
        for (int i = 0; i < Math.Min(10, entries.Count); i++)
            progress($"      {entries[i].Key,-26} {entries[i].Ta,9:F1} {entries[i].Tb,9:F1} {Speedup(entries[i].Ta, entries[i].Tb),9} {entries[i].Lost,9:F1}");
    }

    /// <summary>
    /// The thread-CPU-time split of side B's steps (a busy machine inflates none of it): the main thread's
    /// time outside parallel calls runs alone; inside them, each call lasts at least its longest range.
    /// Serial + Σ longest ranges is the step the split allows with every thread running unhindered.
    /// </summary>
    static void PrintAccounts(Side a, Side b, int pairs, Action<string> progress)
    {
        if (b.Threads < 2) return;
        var accounts = WorkerPool.AccountEntries();
        double work = 0, critical = 0, caller = 0;
        foreach (var x in accounts) { work += x.WorkMs; critical += x.CriticalMs; caller += x.CallerMs; }
        work /= pairs; critical /= pairs; caller /= pairs;
        double main = b.MainCpuMs / pairs, serial = main - caller;
        double oneThread = a.Threads == 1 ? a.MainCpuMs / pairs : double.NaN;
        progress($"    thread CPU time at {b.Threads} threads (per step): main thread {main:F0} ms, of which outside parallel calls (serial) {serial:F0} ms;");
        progress($"      parallel calls: work {work:F0} ms over all ranges, longest range per call summed {critical:F0} ms " +
            $"(ideal {work / b.Threads:F0}; imbalance {critical - work / b.Threads:F0} ms), caller inside calls {caller:F0} ms");
        progress($"      unhindered {b.Threads}-thread step ≈ serial + longest ranges = {serial + critical:F0} ms; " +
            (a.Threads == 1 ? $"1-thread step CPU {oneThread:F0} ms → speed-up allowed by the split ×{oneThread / (serial + critical):F2}, " +
                $"work inflation at {b.Threads} threads ×{(serial + work) / oneThread:F2}" : ""));
        progress($"      {"loop body",-58} {"calls",6} {"work ms",9} {"longest",9} {"imbal.",8}");
        foreach (var x in accounts.Take(14))
            progress($"      {Trim(x.Body, 58),-58} {x.Calls / pairs,6} {x.WorkMs / pairs,9:F1} {x.CriticalMs / pairs,9:F1} {(x.CriticalMs - x.WorkMs / b.Threads) / pairs,8:F1}");
    }

    static string Trim(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";

    static string Speedup(double ta, double tb) => tb > 0 ? $"×{ta / tb:F2}" : "—";
}
