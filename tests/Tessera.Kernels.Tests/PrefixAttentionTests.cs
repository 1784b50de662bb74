using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Prefix-LM attention (bidirectional over each batch row's first P_b positions, causal after):
/// the tiled kernel at both vector widths against its scalar twin, forward and backward, with
/// prefixes that end inside, on and past the 64-wide tile edges, mixed per batch row, under windows
/// and soft-caps. The twin's mask itself is checked against torch by the vision golden fixture.
/// </summary>
public class PrefixAttentionTests
{
    public static TheoryData<int, int> Shapes() => new() { { 1, 8 }, { 17, 8 }, { 64, 16 }, { 65, 33 }, { 130, 64 }, { 70, 1 } };

    static int[][] Prefixes(int t) => [[0, t], [t / 2, 1], [Math.Min(t, 65), Math.Min(t, 3)], [t, t]];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ForwardAndBackwardMatchScalarTwin(int seq, int dim)
    {
        var rng = new TestRandom((ulong)(seq * 31 + dim));
        const int B = 2;
        foreach (var (h, hkv) in new[] { (1, 1), (4, 2) })
            foreach (var prefix in Prefixes(seq))
                foreach (int window in new[] { 0, 5 })
                    foreach (float cap in new[] { 0f, 2f })
                    {
                        float scale = 1f / MathF.Sqrt(dim);
                        float[] q = rng.Array(B * h * seq * dim, -2f, 2f), k = rng.Array(B * hkv * seq * dim, -2f, 2f);
                        float[] v = rng.Array(B * hkv * seq * dim), dO = rng.Array(B * h * seq * dim);
                        string what = $"T={seq} D={dim} H={h}/{hkv} prefix=[{string.Join(",", prefix)}] window={window} cap={cap}";
                        var oRef = new float[q.Length]; var lRef = new float[B * h * seq];
                        ScalarAttention.Forward(q, k, v, oRef, lRef, B, h, hkv, seq, dim, scale, window, cap, prefix);
                        var (bo, bl) = AttentionErrorBounds.Forward(q, k, v, B, h, hkv, seq, dim, scale, window, cap, prefix);
                        var dqRef = new float[q.Length]; var dkRef = new float[k.Length]; var dvRef = new float[v.Length];
                        ScalarAttention.Backward(q, k, v, oRef, lRef, dO, dqRef, dkRef, dvRef, B, h, hkv, seq, dim, scale, window, cap, prefix);
                        var (bq, bk, bv) = AttentionErrorBounds.Backward(q, k, v, oRef, lRef, dO, B, h, hkv, seq, dim, scale, window, softCap: cap, prefix: prefix);
                        for (int width = 0; width < 2; width++)
                        {
                            var o = Filled(q.Length); var l = Filled(lRef.Length);
                            if (width == 0) Attention.Forward<AttentionVector512>(q, k, v, o, l, B, h, hkv, seq, dim, scale, window, cap, prefix);
                            else Attention.Forward<AttentionVector256>(q, k, v, o, l, B, h, hkv, seq, dim, scale, window, cap, prefix);
                            Close(oRef, o, bo, $"o w{width} {what}");
                            Close(lRef, l, bl, $"lse w{width} {what}");
                            var dq = Filled(q.Length); var dk = Filled(k.Length); var dv = Filled(v.Length);
                            if (width == 0) Attention.Backward<AttentionVector512>(q, k, v, oRef, lRef, dO, dq, dk, dv, B, h, hkv, seq, dim, scale, window, cap, prefix);
                            else Attention.Backward<AttentionVector256>(q, k, v, oRef, lRef, dO, dq, dk, dv, B, h, hkv, seq, dim, scale, window, cap, prefix);
                            Close(dqRef, dq, bq, $"dq w{width} {what}");
                            Close(dkRef, dk, bk, $"dk w{width} {what}");
                            Close(dvRef, dv, bv, $"dv w{width} {what}");
                        }
                    }
    }

    /// <summary>A prefix of 0 or 1 is plain causal attention, bit for bit; a longer one changes the prefix rows only.</summary>
    [Fact]
    public void ShortPrefixIsCausalAndLongerChangesOnlyThePrefixRows()
    {
        const int B = 2, H = 2, Hkv = 1, T = 40, D = 16, P = 12;
        var rng = new TestRandom(5);
        float[] q = rng.Array(B * H * T * D), k = rng.Array(B * Hkv * T * D), v = rng.Array(B * Hkv * T * D);
        var (causal, _) = Run(default);
        Assert.Equal(causal, Run([0, 1]).O);
        var (pre, _) = Run([P, 0]);
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++)
            {
                var a = causal.AsSpan(((0 * H + h) * T + i) * D, D).ToArray();
                var b = pre.AsSpan(((0 * H + h) * T + i) * D, D).ToArray();
                if (i >= P - 1) Assert.Equal(a, b);       // the last prefix row already saw the whole prefix
                else Assert.NotEqual(a, b);
            }
        Assert.Equal(causal.AsSpan(H * T * D).ToArray(), pre.AsSpan(H * T * D).ToArray());   // row 1 kept causal

        (float[] O, float[] L) Run(int[]? prefix)
        {
            var o = new float[q.Length]; var l = new float[B * H * T];
            Attention.Forward(q, k, v, o, l, B, H, Hkv, T, D, 0.4f, prefix: prefix);
            return (o, l);
        }
    }

    [Fact]
    public void BadPrefixLengthsAreRefused()
    {
        var a = new float[2 * 4 * 2];
        var e = Assert.Throws<ArgumentException>(() => Attention.Forward(a, a, a, new float[a.Length], new float[8], 2, 1, 1, 4, 2, 1f, prefix: [1]));
        Assert.Contains("one value per batch row", e.Message);
        e = Assert.Throws<ArgumentException>(() => Attention.Forward(a, a, a, new float[a.Length], new float[8], 2, 1, 1, 4, 2, 1f, prefix: [1, 5]));
        Assert.Contains("[0, 4]", e.Message);
    }

    static float[] Filled(int n) { var a = new float[n]; Array.Fill(a, float.NaN); return a; }

    static void Close(float[] expected, float[] actual, double[] bound, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            Tolerance.Within(expected[i], actual[i], bound[i] + Tolerance.Ulps(expected[i], 1), what, i);
    }
}
