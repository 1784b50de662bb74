namespace Tessera.Kernels.Tests;

/// <summary>
/// The attention backward's dS store (pass 1 keeps dS, pass 2 reads it instead of recomputing S, dP
/// and the exponentials) must give the same bits as the recomputing pass 2: same products, same
/// elementwise steps, dQ summed over keys in the same order. Checked at both vector widths, on
/// lengths around the tile edges, head dims with SIMD tails, MHA/GQA/MQA, soft-caps, prefixes, and
/// budgets that cut the (batch, kv head) pairs into chunks of 1, 3 and all (on the shared pool: every
/// path's results are independent of the thread count by construction).
/// </summary>
public class AttentionDsStoreTests
{
    static readonly object BudgetLock = new();

    /// <summary>
    /// The inputs both tests run: MHA, GQA and MQA head layouts, with and without a soft-cap, without and with a
    /// prefix, each with its forward output and row log-sum-exps (drawn in this order from one stream per seed).
    /// </summary>
    static IEnumerable<(int H, int Hkv, float Cap, int[]? Prefix, float Scale, float[] Q, float[] K, float[] V, float[] O, float[] Lse, float[] DO, string What)>
        Cases(int seq, int dim, ulong seed, int batch)
    {
        var rng = new TestRandom(seed);
        foreach (var (h, hkv) in new[] { (2, 2), (4, 2), (4, 1) })
            foreach (float cap in new[] { 0f, 2f })
                foreach (int[]? prefix in new[] { null, new[] { 0, Math.Min(seq, 70), seq / 2 } })
                {
                    float scale = 1f / MathF.Sqrt(dim);
                    float[] q = rng.Array(batch * h * seq * dim, -2f, 2f), k = rng.Array(batch * hkv * seq * dim, -2f, 2f);
                    float[] v = rng.Array(batch * hkv * seq * dim), dO = rng.Array(batch * h * seq * dim);
                    var o = new float[q.Length]; var lse = new float[batch * h * seq];
                    Attention.Forward<AttentionVector512>(q, k, v, o, lse, batch, h, hkv, seq, dim, scale, 0, cap, prefix);
                    string what = $"T={seq} D={dim} H={h}/{hkv} cap={cap} prefix={(prefix is null ? "none" : string.Join(",", prefix))}";
                    yield return (h, hkv, cap, prefix, scale, q, k, v, o, lse, dO, what);
                }
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(63, 16)]
    [InlineData(64, 64)]
    [InlineData(65, 33)]
    [InlineData(130, 64)]
    [InlineData(200, 8)]
    public void StoredDsGivesTheRecomputedBits(int seq, int dim)
    {
        const int B = 3;
        foreach (var (h, hkv, cap, prefix, scale, q, k, v, o, lse, dO, what) in Cases(seq, dim, (ulong)(seq * 7 + dim), B))
        {
            long pair = AttentionBackward.PairStoreFloats(h / hkv, seq);
            for (int width = 0; width < 2; width++)
            {
                var (rq, rk, rv) = RunRecomputing(width, q, k, v, o, lse, dO, B, h, hkv, seq, dim, scale, cap, prefix);
                foreach (long budget in new[] { pair, 3 * pair, 64 * pair })
                {
                    long stored = AttentionBackward.StoredCalls;
                    var (dq, dk, dv) = Run(width, budget, q, k, v, o, lse, dO, B, h, hkv, seq, dim, scale, cap, prefix);
                    Assert.True(AttentionBackward.StoredCalls > stored, $"the dS store was not used ({what})");
                    string at = $"{what} width={width} budget={budget / pair} pairs";
                    Bits(rq, dq, "dq " + at);
                    Bits(rk, dk, "dk " + at);
                    Bits(rv, dv, "dv " + at);
                }
            }
        }
    }

    /// <summary>
    /// The fused pass (one worker per (batch, kv head) pair, dS·K added to dQ as each dS tile is formed) must
    /// give the recomputing path's bits for dq, dk and dv: same products, key tiles in the same order. Head
    /// dims that are multiples of both vector widths (the pass's condition), lengths around the tile edges,
    /// MHA/GQA/MQA, soft-caps and prefixes.
    /// </summary>
    [Theory]
    [InlineData(1, 16)]
    [InlineData(63, 16)]
    [InlineData(64, 64)]
    [InlineData(65, 32)]
    [InlineData(130, 64)]
    [InlineData(200, 16)]
    public void FusedPassGivesTheRecomputedBits(int seq, int dim)
    {
        const int B = 3;
        foreach (var (h, hkv, cap, prefix, scale, q, k, v, o, lse, dO, what) in Cases(seq, dim, (ulong)(seq * 11 + dim), B))
        {
            for (int width = 0; width < 2; width++)
            {
                var (rq, rk, rv) = RunRecomputing(width, q, k, v, o, lse, dO, B, h, hkv, seq, dim, scale, cap, prefix);
                long fusedCalls = AttentionBackward.FusedCalls;
                var (dq, dk, dv) = Run(width, 0, q, k, v, o, lse, dO, B, h, hkv, seq, dim, scale, cap, prefix, fused: true);
                Assert.True(AttentionBackward.FusedCalls > fusedCalls, $"the fused pass was not used ({what})");
                string at = $"{what} width={width} fused";
                Bits(rq, dq, "dq " + at);
                Bits(rk, dk, "dk " + at);
                Bits(rv, dv, "dv " + at);
            }
        }
    }

    /// <summary>Budget 0: the recomputing pass 2 (the store is not touched; checked with the store's call counter).</summary>
    static (float[] Dq, float[] Dk, float[] Dv) RunRecomputing(int width, float[] q, float[] k, float[] v, float[] o, float[] lse,
        float[] dO, int b, int h, int hkv, int t, int d, float scale, float cap, int[]? prefix)
    {
        lock (BudgetLock)
        {
            long stored = AttentionBackward.StoredCalls;
            var r = Run(width, 0, q, k, v, o, lse, dO, b, h, hkv, t, d, scale, cap, prefix);
            Assert.Equal(stored, AttentionBackward.StoredCalls);
            return r;
        }
    }

    static (float[] Dq, float[] Dk, float[] Dv) Run(int width, long budget, float[] q, float[] k, float[] v, float[] o, float[] lse,
        float[] dO, int b, int h, int hkv, int t, int d, float scale, float cap, int[]? prefix, bool fused = false)
    {
        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        // Garbage in the outputs: every path must overwrite them (the fused pass clears dQ itself).
        Array.Fill(dq, float.NaN); Array.Fill(dk, float.NaN); Array.Fill(dv, float.NaN);
        lock (BudgetLock)
        {
            long saved = AttentionBackward.StoreBudgetFloats;
            int savedFused = AttentionBackward.FusedPairsPerThread;
            AttentionBackward.StoreBudgetFloats = budget;
            AttentionBackward.FusedPairsPerThread = fused ? 0 : int.MaxValue;
            try
            {
                if (width == 0) Attention.Backward<AttentionVector512>(q, k, v, o, lse, dO, dq, dk, dv, b, h, hkv, t, d, scale, 0, cap, prefix);
                else Attention.Backward<AttentionVector256>(q, k, v, o, lse, dO, dq, dk, dv, b, h, hkv, t, d, scale, 0, cap, prefix);
            }
            finally { AttentionBackward.StoreBudgetFloats = saved; AttentionBackward.FusedPairsPerThread = savedFused; }
        }
        return (dq, dk, dv);
    }

    static void Bits(float[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]:R}, the recomputing path gives {expected[i]:R}.");
    }
}
