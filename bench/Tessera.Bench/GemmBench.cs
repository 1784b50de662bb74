using System.Diagnostics;
using Tessera.Kernels;

namespace Tessera.Bench;

/// <summary>What <see cref="GemmBench.Run"/> measures.</summary>
/// <param name="Sizes">Square problem sizes (M = N = K).</param>
/// <param name="Threads">Thread counts; each gets its own worker pool and the same OpenBLAS setting.</param>
/// <param name="PeakGflopsPerThread">fp32 peak per thread; null measures it with <see cref="GemmPeak"/>.</param>
/// <param name="SecondsPerMeasurement">Time bound for the timed repetitions of one implementation at one size.</param>
/// <param name="Shapes">Extra problems, e.g. a preset's projections and LM head in the layouts training calls them with.</param>
/// <param name="Clock">Timing clock in Stopwatch ticks; null: the wall clock. A thread CPU-time clock
/// (single-thread runs only: both libraries then compute on the calling thread) is what a busy
/// machine inflates least; the peak probe is timed on the same clock.</param>
/// <param name="Paired">Alternate single calls of ours and OpenBLAS (order flipped every pair), each pair
/// preceded by the FMA probe on the same threads, and report the median of the per-pair ratios: on a host
/// whose speed drifts within seconds this cancels what one-after-the-other blocks cannot.</param>
/// <param name="Ab">Paired runs only: a switch name from <see cref="GemmBench.AbSwitches"/>; the other side of
/// each pair is then our own GEMM with that switch off (this side: on, which every switch's default is)
/// instead of OpenBLAS, so the ratio is on ÷ off over the same moments; the switch is left on.</param>
/// <param name="Burst">Paired runs only: 0 (default) times one call per side of a pair, the first after a pause; N ≥ 2
/// gives each side one untimed call and then N timed calls back to back, its figure their median: the steady
/// state of GEMMs that follow one another, as in a training step, with the pool threads and caches warm on both sides.</param>
public sealed record GemmBenchOptions(IReadOnlyList<int> Sizes, IReadOnlyList<int> Threads,
    double? PeakGflopsPerThread = null, double SecondsPerMeasurement = 0.6, IReadOnlyList<GemmProblem>? Shapes = null,
    Func<long>? Clock = null, bool Paired = false, string? Ab = null, int Burst = 0);

/// <summary>
/// One GEMM problem: C (M×N) = op(A)·op(B) with op(A) M×K (A stored K×M when <paramref name="TransA"/>)
/// and op(B) K×N (B stored N×K when <paramref name="TransB"/>), row-major as in <see cref="Gemm.Sgemm(bool, bool, int, int, int, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, Span{float}, int, bool)"/>.
/// A layer's forward y = x·Wᵀ is (tokens, out, in, false, true); its dx = dy·W is (tokens, in, out,
/// false, false); its dW = dyᵀ·x is (out, in, tokens, true, false).
/// </summary>
public readonly record struct GemmProblem(int M, int N, int K, bool TransA = false, bool TransB = false)
{
    /// <summary>"M×N×K", or "M×N×K Aᵀ·B" style when a side is transposed.</summary>
    public string Label => (M == N && N == K ? $"{M}³" : $"{M}×{N}×{K}")
        + (TransA || TransB ? $" {(TransA ? "Aᵀ" : "A")}·{(TransB ? "Bᵀ" : "B")}" : "");
}

/// <summary>One size × thread-count cell. GFLOP/s count 2·M·N·K flops per call.</summary>
/// <param name="Size">M = N = K.</param>
/// <param name="Threads">Threads given to both implementations.</param>
/// <param name="OursMedianGflops">Median over the timed repetitions (the headline figure).</param>
/// <param name="OursBestGflops">Fastest timed repetition.</param>
/// <param name="OursRepetitions">Timed repetitions (after the warm-up).</param>
/// <param name="OpenBlasMedianGflops">OpenBLAS median; null when it is not installed.</param>
/// <param name="OpenBlasBestGflops">OpenBLAS fastest repetition.</param>
/// <param name="OpenBlasRepetitions">OpenBLAS timed repetitions.</param>
/// <param name="Ratio">Ours / OpenBLAS on the medians; null when OpenBLAS is absent.</param>
/// <param name="PercentOfPeak">Ours (median) as a percentage of peak-per-thread × threads.</param>
/// <param name="MaxRelativeDifference">max |C_ours − C_OpenBLAS| / max |C|: a same-run sanity check.</param>
/// <param name="Shape">The problem as M×N×K (square: the size cubed).</param>
/// <param name="PairedProbeGflops">Paired runs only: median FMA probe of all the threads at once, taken
/// before each pair; <paramref name="PercentOfPeak"/> is then the median over pairs of ours ÷ that probe.</param>
/// <param name="RatioLow">Paired runs only: the lower quartile of the per-pair ratios.</param>
/// <param name="RatioHigh">Paired runs only: the upper quartile of the per-pair ratios.</param>
/// <param name="OpenBlasPercentOfPeak">Paired runs only: the median over pairs of the other side ÷ the probe. Its inverse
/// (×100) is the ceiling of <paramref name="Ratio"/>: what a GEMM running at the probe's peak would reach against it.</param>
/// <param name="Burst">Paired runs only: timed calls per side of a pair (see <see cref="GemmBenchOptions.Burst"/>).</param>
public sealed record GemmBenchRow(int Size, int Threads, double OursMedianGflops, double OursBestGflops, int OursRepetitions,
    double? OpenBlasMedianGflops, double? OpenBlasBestGflops, int OpenBlasRepetitions,
    double? Ratio, double PercentOfPeak, double? MaxRelativeDifference, string Shape = "",
    double? PairedProbeGflops = null, double? RatioLow = null, double? RatioHigh = null,
    double? OpenBlasPercentOfPeak = null, int? Burst = null);

/// <summary>The whole run: context lines and one row per cell.</summary>
/// <param name="Kernel">Our micro-kernel, e.g. "AVX-512 6x64".</param>
/// <param name="OpenBlas">The other side: OpenBLAS's build and kernel description (or, with <c>--ab</c>, our switch-off side); null when absent.</param>
/// <param name="PeakGflopsPerThread">The peak per thread that % of peak divides by.</param>
/// <param name="PeakSource">Where that peak came from.</param>
/// <param name="Rows">One row per problem × thread count.</param>
/// <param name="OpenBlasCore">The OpenBLAS kernel family that ran (e.g. "Cooperlake"); null when OpenBLAS was not compared.</param>
/// <param name="OpenBlasForcedFrom">The family OpenBLAS's own detection chose when the bench overrode it with
/// <c>OPENBLAS_CORETYPE</c> (see <see cref="Tessera.Bench.OpenBlas.TryLoad"/>); null when not overridden.</param>
/// <param name="OpenBlasAvx512">Whether the OpenBLAS kernels that ran use 512-bit vectors; null when OpenBLAS was not compared.</param>
/// <param name="MicroKernelGflopsPerThread">Our micro-kernel alone on cache-resident panels (<see cref="GemmPeak.MicroKernelGflops"/>),
/// measured in this run right after the peak probe: the most a GEMM on this kernel can reach; null with --cpu-time.</param>
/// <param name="MicroKernelPercentOfPeak">That figure as a percentage of the FMA probe measured just before it.</param>
public sealed record GemmBenchReport(string Kernel, string? OpenBlas, double PeakGflopsPerThread, string PeakSource,
    IReadOnlyList<GemmBenchRow> Rows, string? OpenBlasCore = null, string? OpenBlasForcedFrom = null, bool? OpenBlasAvx512 = null,
    double? MicroKernelGflopsPerThread = null, double? MicroKernelPercentOfPeak = null);

/// <summary>
/// <c>tessera bench gemm</c>: our <see cref="Gemm"/> against OpenBLAS <c>cblas_sgemm</c> on the
/// same inputs in the same process, C = op(A)·op(B) in fp32 (square sizes and any extra shapes). Each implementation is
/// warmed up, then timed until the time bound (at least 3 calls); the median is reported.
/// Ours runs before OpenBLAS in every cell, and the run pauses after OpenBLAS so its spinning
/// threads have gone idle before we time ours again.
/// </summary>
public static unsafe class GemmBench
{
    const int MinRepetitions = 3, MaxRepetitions = 25;

    /// <summary>Our GEMM's timing-only switches that <c>--ab</c> can pair (results identical on and off).</summary>
    public static IReadOnlyDictionary<string, Action<bool>> AbSwitches { get; } = new Dictionary<string, Action<bool>>
    {
        ["dynamic-split"] = on => Gemm.DynamicSplit = on,
        ["even-chunks"] = on => Gemm.EvenChunks = on,
        ["a-stationary"] = on => Gemm.AStationary = on,
        ["pack-a-once"] = on => Gemm.PackAOnce = on,
        ["fine-chunks"] = on => Gemm.FineChunks = on,
        ["busy-spin"] = on => WorkerPool.BusySpin = on,
        ["pack-a-rows"] = on => Gemm.PackARows = on,
    };

    /// <summary>Runs every cell; <paramref name="progress"/> receives one line per finished cell.</summary>
    public static GemmBenchReport Run(GemmBenchOptions options, Action<string>? progress = null)
    {
        Validate(options);
        var ab = options.Ab is { } name ? AbSwitches[name] : null;
        var blas = ab is null ? OpenBlas.TryLoad() : null;
        double peak;
        string peakSource;
        if (options.PeakGflopsPerThread is { } given)
        {
            peak = given;
            peakSource = $"{given:F1} GFLOP/s per thread, given with --peak-gflops";
        }
        else if (options.Clock is { } clock)
        {
            peak = GemmPeak.MeasureGflopsOnCallingThread(clock);
            peakSource = $"{peak:F1} GFLOP/s per thread, measured in this run on thread CPU time: {GemmPeak.Lanes}-lane FMA throughput probe";
        }
        else
        {
            using var probePool = new WorkerPool(1);
            peak = GemmPeak.MeasureGflops(probePool);
            peakSource = $"{peak:F1} GFLOP/s per thread, measured in this run: {GemmPeak.Lanes}-lane FMA throughput probe "
                + "(24 independent chains, 2 flops per lane per FMA)";
        }
        // The kernel alone, read against a probe taken just before it (the same moment's clock).
        double? kernel = null, kernelPercent = null;
        if (options.Clock is null)
        {
            using var one = new WorkerPool(1);
            double probeNow = GemmPeak.MeasureGflops(one);
            kernel = GemmPeak.MicroKernelGflops();
            kernelPercent = 100 * kernel / probeNow;
        }

        var rows = new List<GemmBenchRow>();
        foreach (int threads in options.Threads)
        {
            using var pool = new WorkerPool(threads);
            blas?.SetThreads(threads);
            var problems = new List<GemmProblem>();
            foreach (int size in options.Sizes) problems.Add(new GemmProblem(size, size, size));
            if (options.Shapes is not null) problems.AddRange(options.Shapes);
            foreach (var problem in problems)
            {
                var row = options.Paired && (blas is not null || ab is not null)
                    ? RunPairedCell(pool, blas, ab, problem, threads, options.SecondsPerMeasurement, options.Burst)
                    : RunCell(pool, blas, problem, threads, peak, options.SecondsPerMeasurement, options.Clock ?? Stopwatch.GetTimestamp);
                rows.Add(row);
                progress?.Invoke($"{row.Shape} on {threads} thread(s): ours {row.OursMedianGflops:F1} GFLOP/s"
                    + (row.OpenBlasMedianGflops is { } o ? $", OpenBLAS {o:F1} GFLOP/s" : ""));
            }
        }
        return new GemmBenchReport(Gemm.KernelDescription,
            ab is not null ? $"ours with {options.Ab} off (--ab: ratio = on ÷ off)" : blas?.Description, peak, peakSource, rows,
            blas?.Core, blas?.ForcedFrom, blas?.RunsAvx512Kernels, kernel, kernelPercent);
    }

    /// <summary>The operands of one timed problem: A and B filled from a seed of the shape, C for ours and for OpenBLAS.</summary>
    static (float[] A, float[] B, int Lda, int Ldb, float[] Ours, float[] Theirs) Operands(GemmProblem problem)
    {
        var (m, n, k, transA, transB) = problem;
        var rng = new Random(1234 + m + 7 * n + 13 * k);
        var a = new float[(long)m * k];
        var b = new float[(long)k * n];
        for (long i = 0; i < a.LongLength; i++) a[i] = rng.NextSingle() * 2 - 1;
        for (long i = 0; i < b.LongLength; i++) b[i] = rng.NextSingle() * 2 - 1;
        return (a, b, transA ? m : k, transB ? k : n, new float[(long)m * n], new float[(long)m * n]);
    }

    static GemmBenchRow RunCell(WorkerPool pool, OpenBlas? blas, GemmProblem problem, int threads, double peak, double seconds, Func<long> clock)
    {
        var (m, n, k, transA, transB) = problem;
        var (a, b, lda, ldb, ours, theirs) = Operands(problem);
        double flops = 2.0 * m * n * k;
        string shape = problem.Label;

        var (oursMedian, oursBest, oursReps) = Time(seconds, clock, () => Gemm.Sgemm(pool, transA, transB, m, n, k, a, lda, b, ldb, ours, n));
        double? blasMedian = null, blasBest = null, maxRel = null;
        int blasReps = 0;
        if (blas is not null)
        {
            (double med, double best, blasReps) = Time(seconds, clock, () =>
            {
                fixed (float* pa = a, pb = b, pc = theirs) blas.Sgemm(transA, transB, m, n, k, pa, lda, pb, ldb, pc, n, false);
            });
            blasMedian = flops / med / 1e9;
            blasBest = flops / best / 1e9;
            maxRel = MaxRelativeDifference(ours, theirs);
            Thread.Sleep(200); // let OpenBLAS's threads stop spinning before the next timing of ours
        }
        double oursGflops = flops / oursMedian / 1e9;
        return new GemmBenchRow(m, threads, oursGflops, flops / oursBest / 1e9, oursReps,
            blasMedian, blasBest, blasReps, blasMedian is { } bm ? oursGflops / bm : null,
            100 * oursGflops / (peak * threads), maxRel, shape);
    }

    /// <summary>
    /// Alternates one call of ours and one of OpenBLAS, or with <paramref name="burst"/> ≥ 2 a warm-up call and a
    /// burst of timed calls each (order flipped every pair; a pause after each OpenBLAS turn lets its spinning
    /// threads go idle, a shorter one after ours does the same for our pool), with the FMA probe of all threads
    /// before each pair; the ratio and both sides' % of peak are medians of the per-pair figures.
    /// </summary>
    static GemmBenchRow RunPairedCell(WorkerPool pool, OpenBlas? blas, Action<bool>? ab, GemmProblem problem, int threads, double seconds, int burst)
    {
        ab?.Invoke(true);
        var (m, n, k, transA, transB) = problem;
        var (a, b, lda, ldb, ours, theirs) = Operands(problem);
        double flops = 2.0 * m * n * k;
        double Ours() => Side(() => Gemm.Sgemm(pool, transA, transB, m, n, k, a, lda, b, ldb, ours, n), 5);
        double Theirs()
        {
            if (blas is null)
            {
                // --ab: our GEMM with the switch off, in place of OpenBLAS (its own C, so the
                // max-difference column compares the two settings).
                ab!(false);
                try { return Side(() => Gemm.Sgemm(pool, transA, transB, m, n, k, a, lda, b, ldb, theirs, n), 5); }
                finally { ab(true); }
            }
            // OpenBLAS's threads spin after a call; ours would share the cores with them.
            return Side(() =>
            {
                fixed (float* pa = a, pb = b, pc = theirs) blas.Sgemm(transA, transB, m, n, k, pa, lda, pb, ldb, pc, n, false);
            }, 100);
        }
        // One side of a pair: a single timed call, or (burst ≥ 2) an untimed call then the median of burst timed ones.
        double Side(Action call, int pauseMs)
        {
            if (burst >= 2) call();
            var times = new List<double>(Math.Max(1, burst));
            for (int i = 0; i < Math.Max(1, burst); i++)
            {
                long t = Stopwatch.GetTimestamp();
                call();
                times.Add(Stopwatch.GetElapsedTime(t).TotalSeconds);
            }
            Thread.Sleep(pauseMs);
            return Median(times);
        }
        for (int i = 0; i < 2; i++) { Ours(); Theirs(); }
        var oursTimes = new List<double>();
        var theirTimes = new List<double>();
        var ratios = new List<double>();
        var percents = new List<double>();
        var theirPercents = new List<double>();
        var probes = new List<double>();
        var total = Stopwatch.StartNew();
        while (ratios.Count < 5 || (ratios.Count < 41 && total.Elapsed.TotalSeconds < 2 * seconds))
        {
            double probe = GemmPeak.MeasureGflops(pool, 0);
            double to, tb;
            if (ratios.Count % 2 == 0) { to = Ours(); tb = Theirs(); }
            else { tb = Theirs(); to = Ours(); }
            oursTimes.Add(to); theirTimes.Add(tb); probes.Add(probe);
            ratios.Add(tb / to);
            percents.Add(100 * flops / to / 1e9 / probe);
            theirPercents.Add(100 * flops / tb / 1e9 / probe);
        }
        double oursMedian = flops / Median(oursTimes) / 1e9, theirMedian = flops / Median(theirTimes) / 1e9;
        ratios.Sort();
        return new GemmBenchRow(m, threads, oursMedian, flops / oursTimes.Min() / 1e9, oursTimes.Count,
            theirMedian, flops / theirTimes.Min() / 1e9, theirTimes.Count, Median(ratios), Median(percents),
            MaxRelativeDifference(ours, theirs), problem.Label, Median(probes),
            ratios[ratios.Count / 4], ratios[(3 * ratios.Count) / 4], Median(theirPercents), Math.Max(1, burst));
    }

    static double Median(List<double> values)
    {
        var v = new List<double>(values);
        v.Sort();
        int mid = v.Count / 2;
        return v.Count % 2 == 1 ? v[mid] : 0.5 * (v[mid - 1] + v[mid]);
    }

    /// <summary>Warm-up (at least 2 calls and 0.2 s: caches, page faults, the other library's thread
    /// start-up), then timed calls until the bound: (median, best) seconds and the count.</summary>
    static (double Median, double Best, int Repetitions) Time(double seconds, Func<long> clock, Action call)
    {
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 2 || (i < MaxRepetitions && warm.Elapsed.TotalSeconds < 0.2); i++) call();
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < MinRepetitions || (times.Count < MaxRepetitions && total.Elapsed.TotalSeconds < seconds))
        {
            long start = clock();
            call();
            times.Add((double)(clock() - start) / Stopwatch.Frequency);
        }
        times.Sort();
        int mid = times.Count / 2;
        double median = times.Count % 2 == 1 ? times[mid] : 0.5 * (times[mid - 1] + times[mid]);
        return (median, times[0], times.Count);
    }

    static double MaxRelativeDifference(float[] x, float[] y)
    {
        double maxDiff = 0, maxAbs = 0;
        for (long i = 0; i < x.LongLength; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)x[i] - y[i]));
            maxAbs = Math.Max(maxAbs, Math.Abs((double)y[i]));
        }
        return maxAbs == 0 ? maxDiff : maxDiff / maxAbs;
    }

    static void Validate(GemmBenchOptions options)
    {
        if (options.Sizes.Count == 0 && (options.Shapes?.Count ?? 0) == 0) throw new ArgumentException("bench gemm: --sizes or --shapes needs at least one problem.");
        foreach (var (m, n, k, _, _) in options.Shapes ?? [])
            if (m < 1 || n < 1 || k < 1 || m > 65536 || n > 65536 || k > 65536) throw new ArgumentException($"bench gemm: shape {m}x{n}x{k} is outside 1..65536.");
        foreach (int s in options.Sizes)
            if (s < 1 || s > 16384) throw new ArgumentException($"bench gemm: size {s} is outside 1..16384.");
        if (options.Threads.Count == 0) throw new ArgumentException("bench gemm: --threads needs at least one thread count.");
        foreach (int t in options.Threads)
            if (t < 1 || t > 256) throw new ArgumentException($"bench gemm: thread count {t} is outside 1..256.");
        if (options.Ab is { } name && (!options.Paired || !AbSwitches.ContainsKey(name)))
            throw new ArgumentException($"bench gemm: --ab needs --paired and one of {string.Join(", ", AbSwitches.Keys)}; got '{name}'.");
        if (options.Burst != 0 && (!options.Paired || options.Burst < 2 || options.Burst > 100))
            throw new ArgumentException($"bench gemm: --burst needs --paired and 2..100 timed calls per side; got {options.Burst}{(options.Paired ? "" : " without --paired")}.");
        if (options.Clock is not null)
            foreach (int t in options.Threads)
                if (t != 1) throw new ArgumentException($"bench gemm: --cpu-time times one thread only (both libraries compute on the calling thread); got --threads including {t}.");
        if (options.PeakGflopsPerThread is { } p && !(p > 0))
            throw new ArgumentException($"bench gemm: --peak-gflops must be positive, got {p}.");
        if (!(options.SecondsPerMeasurement > 0))
            throw new ArgumentException($"bench gemm: the time bound must be positive, got {options.SecondsPerMeasurement}.");
    }
}
