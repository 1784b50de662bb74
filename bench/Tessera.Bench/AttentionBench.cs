using System.Diagnostics;
using Tessera.Kernels;

namespace Tessera.Bench;

/// <summary>Shape and thread count of one attention benchmark.</summary>
public sealed record AttentionBenchOptions(int Batch = 8, int Heads = 8, int KvHeads = 8, int Seq = 512, int Dim = 64, int Threads = 2)
{
    /// <summary>Useful flops of causal attention (half the T×T products): forward 2 matmuls, backward 5.</summary>
    public double FwdFlops => 2.0 * 2 * Batch * Heads * (double)Seq * (Seq + 1) / 2 * Dim;
    public double BwdFlops => 2.5 * FwdFlops;
}

/// <summary>Median milliseconds of one forward and one backward call.</summary>
public sealed record AttentionTimings(double FwdMs, double BwdMs)
{
    public double FwdBwdMs => FwdMs + BwdMs;
}

/// <summary>Everything <c>tessera bench attention</c> prints.</summary>
public sealed record AttentionBenchResult(
    AttentionBenchOptions Options,
    AttentionTimings Flash,
    AttentionTimings Naive,
    TorchAttentionResult Torch,
    long FlashForwardScratchBytes,
    long FlashBackwardScratchBytes,
    long NaiveScratchBytes,
    double MaxAbsDiffO,
    double MaxAbsDiffDq);

/// <summary>
/// Times our flash kernel against our naive attention (GEMM + softmax, T×T per head) and, in
/// the same run, PyTorch CPU, and cross-checks that the two C# implementations agree.
/// </summary>
public static class AttentionBench
{
    public static AttentionBenchResult Run(AttentionBenchOptions opt, Action<string>? progress = null)
    {
        if (opt.Batch <= 0 || opt.Heads <= 0 || opt.KvHeads <= 0 || opt.Seq <= 0 || opt.Dim <= 0 || opt.Threads <= 0)
            throw new ArgumentException($"bench attention: sizes must be positive (batch={opt.Batch} heads={opt.Heads} kv-heads={opt.KvHeads} seq={opt.Seq} dim={opt.Dim} threads={opt.Threads}).");
        if (opt.Heads % opt.KvHeads != 0)
            throw new ArgumentException($"bench attention: heads ({opt.Heads}) must be a multiple of kv-heads ({opt.KvHeads}).");
        WorkerPool.SetSharedThreadCount(opt.Threads);
        int B = opt.Batch, H = opt.Heads, Hkv = opt.KvHeads, T = opt.Seq, D = opt.Dim;
        float scale = 1f / MathF.Sqrt(D);
        var rng = new Random(1234);
        float[] Rand(long n) { var a = new float[n]; for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1); return a; }
        long qn = (long)B * H * T * D, kn = (long)B * Hkv * T * D;
        float[] q = Rand(qn), k = Rand(kn), v = Rand(kn), dO = Rand(qn);
        float[] o = new float[qn], lse = new float[(long)B * H * T], dq = new float[qn], dk = new float[kn], dv = new float[kn];

        progress?.Invoke("flash attention");
        var flash = new AttentionTimings(
            Time(() => Attention.Forward(q, k, v, o, lse, B, H, Hkv, T, D, scale)),
            Time(() => Attention.Backward(q, k, v, o, lse, dO, dq, dk, dv, B, H, Hkv, T, D, scale)));

        progress?.Invoke("naive attention (GEMM + softmax)");
        var naiveImpl = new NaiveAttention(B, H, Hkv, T, D, scale);
        float[] oN = new float[qn], dqN = new float[qn], dkN = new float[kn], dvN = new float[kn];
        var naive = new AttentionTimings(
            Time(() => naiveImpl.Forward(q, k, v, oN)),
            Time(() => naiveImpl.Backward(q, k, v, dO, dqN, dkN, dvN)));

        progress?.Invoke("PyTorch CPU");
        var torch = AttentionTorchReference.Run(B, H, Hkv, T, D, opt.Threads);

        return new AttentionBenchResult(opt, flash, naive, torch,
            Attention.ForwardScratchBytes(D), Attention.BackwardScratchBytes(B, H, T, D), naiveImpl.ScratchBytes,
            MaxAbsDiff(o, oN), MaxAbsDiff(dq, dqN));
    }

    /// <summary>
    /// Median of repeated calls after a warm-up. A first call that already takes ≥ 0.5 s (the
    /// placeholder scalar GEMM) is used as is: JIT time is negligible there and repeating it
    /// would blow the run's one-minute budget.
    /// </summary>
    static double Time(Action run)
    {
        var sw = Stopwatch.StartNew();
        run();
        double first = sw.Elapsed.TotalMilliseconds;
        if (first >= 500) return first;
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < 20 && (times.Count < 3 || total.Elapsed.TotalMilliseconds < 600))
        {
            sw.Restart();
            run();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    static double MaxAbsDiff(float[] a, float[] b)
    {
        double m = 0;
        for (long i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }
}
