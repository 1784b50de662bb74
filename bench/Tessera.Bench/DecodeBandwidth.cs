using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tessera.Kernels;

namespace Tessera.Bench;

/// <summary>
/// Measured memory read bandwidth, the denominator of the decode roofline: every worker of the
/// pool sums its share of a buffer far larger than the caches (1 GiB by default), streaming it
/// once per repetition with 4 independent vector accumulators and software prefetch; the best of a
/// few passes counts.
/// </summary>
public static unsafe class DecodeBandwidth
{
    /// <summary>Read bandwidth in bytes per second over <paramref name="bytes"/> bytes.</summary>
    public static double Measure(WorkerPool pool, long bytes = 1L << 30, int repetitions = 4)
    {
        long n = bytes / sizeof(float) / 64 * 64;
        float* data = (float*)NativeMemory.AlignedAlloc((nuint)(n * sizeof(float)), 64);
        try
        {
            // Touch every page (and give the sum something non-trivial to add).
            pool.For(pool.ThreadCount, (w, s, e) =>
            {
                for (int t = s; t < e; t++)
                {
                    long lo = n * t / pool.ThreadCount, hi = n * (t + 1) / pool.ThreadCount;
                    for (long i = lo; i < hi; i += 1 << 28) new Span<float>(data + i, (int)Math.Min(1 << 28, hi - i)).Fill(1f);
                }
            });
            var partial = new float[pool.ThreadCount];
            double best = 0;
            for (int r = 0; r < repetitions; r++)
            {
                var sw = Stopwatch.StartNew();
                pool.For(pool.ThreadCount, (w, s, e) =>
                {
                    for (int t = s; t < e; t++)
                    {
                        long lo = n * t / pool.ThreadCount / 64 * 64, hi = t == pool.ThreadCount - 1 ? n : n * (t + 1) / pool.ThreadCount / 64 * 64;
                        partial[t] = Sum(data + lo, hi - lo);
                    }
                });
                double seconds = sw.Elapsed.TotalSeconds;
                best = Math.Max(best, n * sizeof(float) / seconds);
            }
            float total = 0;
            foreach (float p in partial) total += p;
            if (total <= 0) throw new InvalidOperationException("DecodeBandwidth: the sum was optimised away or wrong.");
            return best;
        }
        finally { NativeMemory.AlignedFree(data); }
    }

    static float Sum(float* p, long n)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            float s = 0;
            for (long i = 0; i < n; i++) s += p[i];
            return s;
        }
        Vector512<float> a = default, b = default, c = default, d = default;
        long j = 0;
        for (; j + 64 <= n; j += 64)
        {
            // Software prefetch 2 KB ahead, as the decode kernels do: the probe should reach the
            // bandwidth those kernels can, or the roofline understates it.
            float* ahead = p + j + 512;
            Sse.Prefetch0(ahead); Sse.Prefetch0(ahead + 16); Sse.Prefetch0(ahead + 32); Sse.Prefetch0(ahead + 48);
            a += Vector512.Load(p + j); b += Vector512.Load(p + j + 16);
            c += Vector512.Load(p + j + 32); d += Vector512.Load(p + j + 48);
        }
        float r = Vector512.Sum(a + b + c + d);
        for (; j < n; j++) r += p[j];
        return r;
    }
}
