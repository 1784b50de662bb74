using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
namespace Tessera.Kernels;

/// <summary>
/// Measures the fp32 peak the GEMM is judged against: every worker runs 24 independent
/// fused-multiply-add chains on the widest vectors the JIT offers (enough chains to cover FMA
/// latency × pipes on current cores), so the loop is bound by FMA throughput alone. This is
/// measured rather than computed from a spec sheet because core clocks, vector width of the
/// FMA units (full-width vs double-pumped AVX-512) and VM throttling all vary. MFU everywhere
/// (training progress, quickstart, <c>bench train</c>) divides by <see cref="PeakFlops"/>, measured
/// once per process, never by an assumed figure.
/// </summary>
public static class GemmPeak
{
    const int Chains = 24;

    // One probe thread is far likelier than n of them to get a whole core to itself on a shared
    // machine, and a peak measured low would inflate the MFU; per-thread × threads is the bound.
    static readonly Lazy<double> perThread = new(() =>
    {
        using var one = new WorkerPool(1);
        return MeasureGflops(one, 0.3);
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>fp32 GFLOP/s of one thread, probed on first use and cached for the process.</summary>
    public static double PerThreadGflops => perThread.Value;

    /// <summary>The fp32 peak of <paramref name="threads"/> threads in FLOP/s: the cached per-thread probe × threads.</summary>
    public static double PeakFlops(int threads) => PerThreadGflops * 1e9 * threads;

    /// <summary>Vector width the probe uses, in fp32 lanes.</summary>
    public static int Lanes => Avx512F.IsSupported ? 16 : Fma.IsSupported ? 8 : 1;

    /// <summary>Best-of-several GFLOP/s with every thread of <paramref name="pool"/> running the probe at once.</summary>
    public static double MeasureGflops(WorkerPool pool, double seconds = 0.15)
    {
        const long iterations = 1 << 20;
        double flopsPerWorker = 2.0 * Chains * Lanes * iterations;
        var sink = new float[pool.ThreadCount];
        var until = new Settle(seconds);
        while (until.Continue())
        {
            long start = Stopwatch.GetTimestamp();
            pool.For(pool.ThreadCount, (w, s, e) => { for (int i = s; i < e; i++) sink[i] = Probe(iterations); });
            double t = Stopwatch.GetElapsedTime(start).TotalSeconds;
            until.Record(flopsPerWorker * pool.ThreadCount / t / 1e9);
        }
        return until.Best;
    }

    /// <summary>
    /// Best-of-several GFLOP/s of the probe on the calling thread, timed by <paramref name="clock"/>
    /// (Stopwatch ticks). With a thread CPU-time clock this is the peak for a CPU-time profile: other
    /// processes on a busy machine slow the wall-clock probe but not this one.
    /// </summary>
    public static double MeasureGflopsOnCallingThread(Func<long> clock, double seconds = 0.3)
    {
        const long iterations = 1 << 20;
        double flops = 2.0 * Chains * Lanes * iterations;
        var until = new Settle(seconds);
        while (until.Continue())
        {
            long start = clock();
            Sink = Probe(iterations);
            double t = (double)(clock() - start) / Stopwatch.Frequency;
            if (t > 0) until.Record(flops / t / 1e9);
        }
        return until.Best;
    }

    /// <summary>
    /// Best-of-several GFLOP/s of this machine's GEMM micro-kernel (<see cref="Gemm.KernelDescription"/>) alone, on the
    /// calling thread, run the way the driver runs it but with nothing else: one packed A micro-panel (MR × KC) in L1 and
    /// the micro-panels of one L2-sized packed B block (KC × NC_L2) streaming past it, C tiles in L1, overwritten. No
    /// packing, no barriers, no C traffic to memory: the most any full GEMM built on this kernel can reach, against
    /// which the FMA probe's figure and another library's are read (<c>tessera bench gemm</c>).
    /// </summary>
    public static unsafe double MicroKernelGflops(double seconds = 0.3)
    {
        var blk = GemmBlocking.For(Gemm.BestKernel);
        int kc = blk.Kc, panels = Math.Max(1, blk.NcL2 / blk.Nr);
        long aFloats = (long)blk.Mr * kc, bFloats = (long)kc * blk.Nr * panels, cFloats = (long)blk.Mr * blk.Nr * panels;
        float* a = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(aFloats * 4), 64);
        float* b = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(bFloats * 4), 64);
        float* c = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(cFloats * 4), 64);
        try
        {
            // Values near 1 and products summed over KC stay normal (no denormal slow path).
            for (long i = 0; i < aFloats; i++) a[i] = 1f + 1e-3f * (i % 7);
            for (long i = 0; i < bFloats; i++) b[i] = 1e-3f * (1 + i % 5);
            int tilesPerPass = 64 * panels;
            double flops = 2.0 * blk.Mr * blk.Nr * kc * tilesPerPass;
            var until = new Settle(seconds);
            while (until.Continue())
            {
                long start = Stopwatch.GetTimestamp();
                for (int t = 0; t < tilesPerPass; t++)
                {
                    int panel = t % panels;
                    blk.Kernel(kc, a, b + (long)panel * kc * blk.Nr, c + (long)panel * blk.Mr * blk.Nr, blk.Nr, true);
                }
                until.Record(flops / Stopwatch.GetElapsedTime(start).TotalSeconds / 1e9);
            }
            Sink = c[0];
            return until.Best;
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(a);
            System.Runtime.InteropServices.NativeMemory.AlignedFree(b);
            System.Runtime.InteropServices.NativeMemory.AlignedFree(c);
        }
    }

    /// <summary>
    /// When a best-of probe may stop. A core that was idle can take a few hundred milliseconds to
    /// reach its AVX-512 clock (measured on a KVM Xeon: the first 0.1 s of probing read 134 GFLOP/s
    /// per thread, every later window 180–189), and a fixed count of repetitions then records the
    /// cold rate as the peak: MFU and "% of peak" above 100%. So the probe runs at least
    /// <c>seconds</c> and 3 repetitions, and then keeps going while the best is still rising (a new
    /// best by more than 1% within the last 0.25 s), up to 3 s in all.
    /// </summary>
    sealed class Settle(double seconds)
    {
        const double Quiet = 0.25, Cap = 3.0;
        readonly Stopwatch clock = Stopwatch.StartNew();
        double lastRise;
        int reps;

        public double Best { get; private set; }

        public bool Continue()
        {
            double now = clock.Elapsed.TotalSeconds;
            if (reps < 3 || now < seconds) return true;
            return now - lastRise < Quiet && now < Math.Max(seconds, Cap);
        }

        public void Record(double gflops)
        {
            reps++;
            if (gflops > Best * 1.01) lastRise = clock.Elapsed.TotalSeconds;
            Best = Math.Max(Best, gflops);
        }
    }

    /// <summary>Keeps the probe's result alive so the JIT cannot drop the loop.</summary>
    static float Sink { get; set; }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Probe(long iterations)
    {
        if (Avx512F.IsSupported) return Probe512(iterations);
        if (Fma.IsSupported) return Probe256(iterations);
        float acc = 1f;
        for (long i = 0; i < iterations * Chains; i++) acc = MathF.FusedMultiplyAdd(acc, 0.999999f, 1e-6f);
        return acc;
    }

    // acc ← acc·x + y converges to 1, so values stay normal (no denormal slow paths) for any length.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Probe512(long iterations)
    {
        var x = Vector512.Create(0.999999f);
        var y = Vector512.Create(1e-6f);
        Vector512<float> a0 = Vector512.Create(0.50f), a1 = Vector512.Create(0.51f), a2 = Vector512.Create(0.52f), a3 = Vector512.Create(0.53f);
        Vector512<float> a4 = Vector512.Create(0.54f), a5 = Vector512.Create(0.55f), a6 = Vector512.Create(0.56f), a7 = Vector512.Create(0.57f);
        Vector512<float> a8 = Vector512.Create(0.58f), a9 = Vector512.Create(0.59f), a10 = Vector512.Create(0.60f), a11 = Vector512.Create(0.61f);
        Vector512<float> a12 = Vector512.Create(0.62f), a13 = Vector512.Create(0.63f), a14 = Vector512.Create(0.64f), a15 = Vector512.Create(0.65f);
        Vector512<float> a16 = Vector512.Create(0.66f), a17 = Vector512.Create(0.67f), a18 = Vector512.Create(0.68f), a19 = Vector512.Create(0.69f);
        Vector512<float> a20 = Vector512.Create(0.70f), a21 = Vector512.Create(0.71f), a22 = Vector512.Create(0.72f), a23 = Vector512.Create(0.73f);
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, x, y); a1 = Vector512.FusedMultiplyAdd(a1, x, y); a2 = Vector512.FusedMultiplyAdd(a2, x, y);
            a3 = Vector512.FusedMultiplyAdd(a3, x, y); a4 = Vector512.FusedMultiplyAdd(a4, x, y); a5 = Vector512.FusedMultiplyAdd(a5, x, y);
            a6 = Vector512.FusedMultiplyAdd(a6, x, y); a7 = Vector512.FusedMultiplyAdd(a7, x, y); a8 = Vector512.FusedMultiplyAdd(a8, x, y);
            a9 = Vector512.FusedMultiplyAdd(a9, x, y); a10 = Vector512.FusedMultiplyAdd(a10, x, y); a11 = Vector512.FusedMultiplyAdd(a11, x, y);
            a12 = Vector512.FusedMultiplyAdd(a12, x, y); a13 = Vector512.FusedMultiplyAdd(a13, x, y); a14 = Vector512.FusedMultiplyAdd(a14, x, y);
            a15 = Vector512.FusedMultiplyAdd(a15, x, y); a16 = Vector512.FusedMultiplyAdd(a16, x, y); a17 = Vector512.FusedMultiplyAdd(a17, x, y);
            a18 = Vector512.FusedMultiplyAdd(a18, x, y); a19 = Vector512.FusedMultiplyAdd(a19, x, y); a20 = Vector512.FusedMultiplyAdd(a20, x, y);
            a21 = Vector512.FusedMultiplyAdd(a21, x, y); a22 = Vector512.FusedMultiplyAdd(a22, x, y); a23 = Vector512.FusedMultiplyAdd(a23, x, y);
        }
        var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
              + ((a12 + a13) + (a14 + a15)) + ((a16 + a17) + (a18 + a19)) + ((a20 + a21) + (a22 + a23));
        return Vector512.Sum(s);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Probe256(long iterations)
    {
        var x = Vector256.Create(0.999999f);
        var y = Vector256.Create(1e-6f);
        // Only 16 ymm registers: 12 chains (+2 constants) run twice as many steps, so the FMA count
        // still equals Chains × iterations.
        Vector256<float> a0 = Vector256.Create(0.50f), a1 = Vector256.Create(0.51f), a2 = Vector256.Create(0.52f), a3 = Vector256.Create(0.53f);
        Vector256<float> a4 = Vector256.Create(0.54f), a5 = Vector256.Create(0.55f), a6 = Vector256.Create(0.56f), a7 = Vector256.Create(0.57f);
        Vector256<float> a8 = Vector256.Create(0.58f), a9 = Vector256.Create(0.59f), a10 = Vector256.Create(0.60f), a11 = Vector256.Create(0.61f);
        for (long i = 0; i < iterations * 2; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, x, y); a1 = Vector256.FusedMultiplyAdd(a1, x, y); a2 = Vector256.FusedMultiplyAdd(a2, x, y);
            a3 = Vector256.FusedMultiplyAdd(a3, x, y); a4 = Vector256.FusedMultiplyAdd(a4, x, y); a5 = Vector256.FusedMultiplyAdd(a5, x, y);
            a6 = Vector256.FusedMultiplyAdd(a6, x, y); a7 = Vector256.FusedMultiplyAdd(a7, x, y); a8 = Vector256.FusedMultiplyAdd(a8, x, y);
            a9 = Vector256.FusedMultiplyAdd(a9, x, y); a10 = Vector256.FusedMultiplyAdd(a10, x, y); a11 = Vector256.FusedMultiplyAdd(a11, x, y);
        }
        var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
        return Vector256.Sum(s);
    }
}
