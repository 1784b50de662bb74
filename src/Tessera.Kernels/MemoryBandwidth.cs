using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Tessera.Kernels;

/// <summary>
/// Measures the memory bandwidth that op profiles are judged against: every worker copies its
/// share of a buffer far larger than the last-level cache, best of several passes. Bytes count
/// the read and the write (2 × buffer size per pass), as the profile counts an op's bytes read
/// and written. Measured in the run, never assumed, because it depends on the machine, the VM
/// and what else runs.
/// </summary>
public static unsafe class MemoryBandwidth
{
    /// <summary>
    /// Best-of copy bandwidth in GB/s of the calling thread alone, timed by <paramref name="clock"/>
    /// (Stopwatch ticks; a thread CPU-time clock gives the figure a CPU-time profile compares with).
    /// </summary>
    public static double MeasureGBpsOnCallingThread(Func<long> clock, int megabytes = 256, double seconds = 0.3)
    {
        if (megabytes < 1) throw new ArgumentOutOfRangeException(nameof(megabytes), $"MemoryBandwidth: buffer size {megabytes} MB must be ≥ 1.");
        nuint bytes = (nuint)megabytes * 1_000_000;
        byte* src = (byte*)NativeMemory.AlignedAlloc(bytes, 64), dst = (byte*)NativeMemory.AlignedAlloc(bytes, 64);
        try
        {
            NativeMemory.Fill(src, bytes, 1);
            NativeMemory.Fill(dst, bytes, 2);
            double best = 0;
            var sw = Stopwatch.StartNew();
            for (int rep = 0; rep < 3 || (sw.Elapsed.TotalSeconds < seconds && rep < 20); rep++)
            {
                long start = clock();
                Buffer.MemoryCopy(src, dst, (long)bytes, (long)bytes);
                double t = (double)(clock() - start) / Stopwatch.Frequency;
                if (t > 0) best = Math.Max(best, 2.0 * bytes / t / 1e9);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(src);
            NativeMemory.AlignedFree(dst);
        }
    }

    /// <summary>Best-of copy bandwidth in GB/s (10⁹ bytes) with every thread of <paramref name="pool"/> copying its slice.</summary>
    /// <param name="pool">Workers that copy at once.</param>
    /// <param name="megabytes">Size of the source buffer (the destination is as large); default 256 MB.</param>
    /// <param name="seconds">Minimum time spent measuring (at least 3 passes).</param>
    public static double MeasureGBps(WorkerPool pool, int megabytes = 256, double seconds = 0.3)
    {
        if (megabytes < 1) throw new ArgumentOutOfRangeException(nameof(megabytes), $"MemoryBandwidth: buffer size {megabytes} MB must be ≥ 1.");
        nuint bytes = (nuint)megabytes * 1_000_000;
        byte* src = (byte*)NativeMemory.AlignedAlloc(bytes, 64), dst = (byte*)NativeMemory.AlignedAlloc(bytes, 64);
        try
        {
            NativeMemory.Fill(src, bytes, 1);
            NativeMemory.Fill(dst, bytes, 2); // touch every page before timing
            nint from = (nint)src, to = (nint)dst;
            int chunks = pool.ThreadCount;
            long per = (long)bytes / chunks;
            double best = 0;
            var sw = Stopwatch.StartNew();
            for (int rep = 0; rep < 3 || (sw.Elapsed.TotalSeconds < seconds && rep < 20); rep++)
            {
                long start = Stopwatch.GetTimestamp();
                pool.For(chunks, (w, s, e) =>
                {
                    for (int i = s; i < e; i++)
                    {
                        long off = i * per, len = i == chunks - 1 ? (long)bytes - off : per;
                        Buffer.MemoryCopy((byte*)from + off, (byte*)to + off, len, len);
                    }
                });
                double t = Stopwatch.GetElapsedTime(start).TotalSeconds;
                best = Math.Max(best, 2.0 * bytes / t / 1e9);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(src);
            NativeMemory.AlignedFree(dst);
        }
    }
}
