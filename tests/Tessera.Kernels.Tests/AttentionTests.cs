using System.Runtime.Intrinsics;
using Tessera.Kernels;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Tiled attention against its scalar twin, at both vector widths, over odd shapes: lengths
/// around the 64-row/column tile edges, head dims that hit every SIMD tail (1, 8, 16, 33, 64),
/// MHA and GQA head layouts and sliding windows. Tolerances come from
/// <see cref="AttentionErrorBounds"/>; one ulp of the reference is added for its own final
/// rounding to float.
/// </summary>
public class AttentionTests
{
    static readonly int[] Seqs = [1, 2, 3, 17, 63, 64, 65, 130];
    static readonly int[] Dims = [1, 8, 16, 33, 64];

    // (heads, kvHeads, batch): plain MHA, GQA 4/2 and 4/1 (multi-query).
    static readonly (int H, int Hkv, int B)[] Layouts = [(1, 1, 2), (4, 2, 1), (4, 1, 2)];

    public static TheoryData<int, int> Shapes()
    {
        var data = new TheoryData<int, int>();
        foreach (int t in Seqs) foreach (int d in Dims) data.Add(t, d);
        // Wider heads: several 4-vector column blocks per row, and a 16-lane tail at D = 80.
        data.Add(70, 128);
        data.Add(33, 80);
        data.Add(70, 256);   // Gemma's head dim
        return data;
    }

    static int[] Windows(int seq) => [0, 1, 5, seq + 3];

    delegate void ForwardFn(float[] q, float[] k, float[] v, float[] o, float[] lse, int b, int h, int hkv, int t, int d, float scale, int window, float cap);
    delegate void BackwardFn(float[] q, float[] k, float[] v, float[] o, float[] lse, float[] dO, float[] dq, float[] dk, float[] dv, int b, int h, int hkv, int t, int d, float scale, int window, float cap);

    static readonly (string Name, ForwardFn Fwd, BackwardFn Bwd)[] Widths =
    [
        ("v512", (q, k, v, o, l, b, h, hkv, t, d, s, w, c) => Attention.Forward<AttentionVector512>(q, k, v, o, l, b, h, hkv, t, d, s, w, c),
                 (q, k, v, o, l, g, dq, dk, dv, b, h, hkv, t, d, s, w, c) => Attention.Backward<AttentionVector512>(q, k, v, o, l, g, dq, dk, dv, b, h, hkv, t, d, s, w, c)),
        ("v256", (q, k, v, o, l, b, h, hkv, t, d, s, w, c) => Attention.Forward<AttentionVector256>(q, k, v, o, l, b, h, hkv, t, d, s, w, c),
                 (q, k, v, o, l, g, dq, dk, dv, b, h, hkv, t, d, s, w, c) => Attention.Backward<AttentionVector256>(q, k, v, o, l, g, dq, dk, dv, b, h, hkv, t, d, s, w, c)),
    ];

    sealed record Case(int B, int H, int Hkv, int T, int D, float Scale, int Window, float Cap, float[] Q, float[] K, float[] V, float[] DO)
    {
        public override string ToString() => $"B={B} H={H} Hkv={Hkv} T={T} D={D} scale={Scale} window={Window} softCap={Cap}";
    }

    static IEnumerable<Case> Cases(int seq, int dim)
    {
        var rng = new TestRandom((ulong)(seq * 1000 + dim));
        int n = 0;
        foreach (var (h, hkv, b) in Layouts)
            foreach (int window in Windows(seq))
            {
                // Cycle a flat and a peaked softmax (scores of a few units move the running max across
                // tiles) and a negative scale (the forward cannot fold it into the exponent).
                // Every other case soft-caps the scores at 2 (Gemma 2's cap is 50 on larger logits):
                // the scores here are a few units, so tanh bends them well away from linear.
                float cap = n % 2 == 1 ? 2f : 0f;
                float scale = (n++ % 3) switch { 0 => 1f, 1 => 2f, _ => -1f } / MathF.Sqrt(dim);
                yield return new Case(b, h, hkv, seq, dim, scale, window, cap,
                    rng.Array(b * h * seq * dim, -2f, 2f), rng.Array(b * hkv * seq * dim, -2f, 2f),
                    rng.Array(b * hkv * seq * dim), rng.Array(b * h * seq * dim));
            }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ForwardMatchesScalarTwin(int seq, int dim)
    {
        foreach (var c in Cases(seq, dim))
        {
            var oRef = new float[c.Q.Length]; var lseRef = new float[c.B * c.H * c.T];
            ScalarAttention.Forward(c.Q, c.K, c.V, oRef, lseRef, c.B, c.H, c.Hkv, c.T, c.D, c.Scale, c.Window, c.Cap);
            var (bo, bl) = AttentionErrorBounds.Forward(c.Q, c.K, c.V, c.B, c.H, c.Hkv, c.T, c.D, c.Scale, c.Window, c.Cap);
            foreach (var (name, fwd, _) in Widths)
            {
                var o = Filled(c.Q.Length, float.NaN); var lse = Filled(lseRef.Length, float.NaN);
                fwd(c.Q, c.K, c.V, o, lse, c.B, c.H, c.Hkv, c.T, c.D, c.Scale, c.Window, c.Cap);
                AssertClose(oRef, o, bo, $"{name} o ({c})");
                AssertClose(lseRef, lse, bl, $"{name} lse ({c})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BackwardMatchesScalarTwin(int seq, int dim)
    {
        foreach (var c in Cases(seq, dim))
        {
            var o = new float[c.Q.Length]; var lse = new float[c.B * c.H * c.T];
            ScalarAttention.Forward(c.Q, c.K, c.V, o, lse, c.B, c.H, c.Hkv, c.T, c.D, c.Scale, c.Window, c.Cap);
            var dqRef = new float[c.Q.Length]; var dkRef = new float[c.K.Length]; var dvRef = new float[c.V.Length];
            ScalarAttention.Backward(c.Q, c.K, c.V, o, lse, c.DO, dqRef, dkRef, dvRef, c.B, c.H, c.Hkv, c.T, c.D, c.Scale, c.Window, c.Cap);
            var (bq, bk, bv) = AttentionErrorBounds.Backward(c.Q, c.K, c.V, o, lse, c.DO, c.B, c.H, c.Hkv, c.T, c.D, c.Scale, c.Window, softCap: c.Cap);
            foreach (var (name, _, bwd) in Widths)
            {
                // NaN-filled outputs prove every element is overwritten.
                var dq = Filled(c.Q.Length, float.NaN); var dk = Filled(c.K.Length, float.NaN); var dv = Filled(c.V.Length, float.NaN);
                bwd(c.Q, c.K, c.V, o, lse, c.DO, dq, dk, dv, c.B, c.H, c.Hkv, c.T, c.D, c.Scale, c.Window, c.Cap);
                AssertClose(dqRef, dq, bq, $"{name} dq ({c})");
                AssertClose(dkRef, dk, bk, $"{name} dk ({c})");
                AssertClose(dvRef, dv, bv, $"{name} dv ({c})");
            }
        }
    }

    /// <summary>
    /// The kernel's gradients against central differences of a double-precision forward
    /// (the loss is L = Σ G ⊙ o). With step h = 1e-4 the truncation error is h²/6·|L'''|; the
    /// third derivatives here are O(scale³·|k|³·|v|) ≲ 10, so ≲ 2·10⁻⁸, and rounding adds
    /// 10⁻¹⁶·|L|/h ≈ 10⁻¹¹; we allow 10⁻⁷ for finite differencing on top of the kernel's
    /// derived bound, which also accounts for o and lse reaching the kernel rounded to float.
    /// </summary>
    /// <remarks>
    /// With a soft-cap (Gemma 2) the cases use scale 3/√D, so the scores have unit spread at every
    /// head dim and a cap of 1 bends them; the third derivatives stay O(1) (tanh's are bounded, and
    /// scale·|k| ≤ 3/√D), so the same finite-difference allowance holds.
    /// </remarks>
    [Theory]
    [InlineData(3, 4, 0f)]
    [InlineData(8, 0, 1f)]
    [InlineData(8, 3, 1f)]
    [InlineData(64, 0, 1f)]
    [InlineData(256, 2, 1f)]
    public void GradientsMatchFiniteDifferences(int D, int Window, float Cap)
    {
        const int B = 1, H = 2, Hkv = 1, T = 6;
        float Scale = Cap > 0 ? 3f / MathF.Sqrt(D) : 0.7f;
        var rng = new TestRandom(42);
        float[] q = rng.Array(B * H * T * D), k = rng.Array(B * Hkv * T * D), v = rng.Array(B * Hkv * T * D), g = rng.Array(B * H * T * D);
        var oExact = DoubleForward(q, k, v, B, H, Hkv, T, D, Scale, Window, Cap, out var lseExact);

        // The double forward is the scalar twin's mathematics: check that before trusting its derivatives.
        var oRef = new float[q.Length]; var lseRef = new float[B * H * T];
        ScalarAttention.Forward(q, k, v, oRef, lseRef, B, H, Hkv, T, D, Scale, Window, Cap);
        for (int i = 0; i < q.Length; i++) Tolerance.Within(oExact[i], oRef[i], Tolerance.Ulps(oExact[i], 1), "twin o", i);

        var o = new float[q.Length]; var lse = new float[B * H * T];
        for (int i = 0; i < o.Length; i++) o[i] = (float)oExact[i];
        for (int i = 0; i < lse.Length; i++) lse[i] = (float)lseExact[i];
        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        Attention.Backward(q, k, v, o, lse, g, dq, dk, dv, B, H, Hkv, T, D, Scale, Window, Cap);
        var (bq, bk, bv) = AttentionErrorBounds.Backward(q, k, v, o, lse, g, B, H, Hkv, T, D, Scale, Window, roundedInputs: true, softCap: Cap);

        const double Fd = 1e-7;
        CheckFd("dq", q, dq, bq);
        CheckFd("dk", k, dk, bk);
        CheckFd("dv", v, dv, bv);

        void CheckFd(string what, float[] x, float[] grad, double[] bound)
        {
            var xd = Array.ConvertAll(x, f => (double)f);
            for (int i = 0; i < x.Length; i++)
            {
                const double h = 1e-4;
                double keep = xd[i];
                xd[i] = keep + h; double up = Loss(xd);
                xd[i] = keep - h; double down = Loss(xd);
                xd[i] = keep;
                double fd = (up - down) / (2 * h);
                Tolerance.Within(fd, grad[i], bound[i] + Fd, what, i);
            }

            double Loss(double[] xd)
            {
                double[] qq = what == "dq" ? xd : Array.ConvertAll(q, f => (double)f);
                double[] kk = what == "dk" ? xd : Array.ConvertAll(k, f => (double)f);
                double[] vv = what == "dv" ? xd : Array.ConvertAll(v, f => (double)f);
                var oo = DoubleForward(qq, kk, vv, B, H, Hkv, T, D, Scale, Window, Cap, out _);
                double sum = 0;
                for (int i = 0; i < oo.Length; i++) sum += oo[i] * g[i];
                return sum;
            }
        }
    }

    [Fact]
    public void WindowCoveringTheSequenceEqualsFullCausal()
    {
        const int B = 2, H = 4, Hkv = 2, T = 97, D = 24;
        var rng = new TestRandom(7);
        float[] q = rng.Array(B * H * T * D), k = rng.Array(B * Hkv * T * D), v = rng.Array(B * Hkv * T * D), g = rng.Array(B * H * T * D);
        var (o0, l0, dq0, dk0, dv0) = Run(0);
        foreach (int window in new[] { T, T + 1, 10 * T })
        {
            var (o, l, dq, dk, dv) = Run(window);
            Assert.Equal(o0, o); Assert.Equal(l0, l); Assert.Equal(dq0, dq); Assert.Equal(dk0, dk); Assert.Equal(dv0, dv);
        }
        // A window shorter than the sequence must change something, or the comparison above proves nothing.
        Assert.NotEqual(o0, Run(T - 1).O);

        (float[] O, float[] L, float[] Dq, float[] Dk, float[] Dv) Run(int window)
        {
            var o = new float[q.Length]; var l = new float[B * H * T];
            Attention.Forward(q, k, v, o, l, B, H, Hkv, T, D, 0.3f, window);
            var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
            Attention.Backward(q, k, v, o, l, g, dq, dk, dv, B, H, Hkv, T, D, 0.3f, window);
            return (o, l, dq, dk, dv);
        }
    }

    [Fact]
    public void RepeatedCallsAreBitIdentical()
    {
        const int B = 1, H = 3, Hkv = 3, T = 200, D = 40;
        var rng = new TestRandom(11);
        float[] q = rng.Array(B * H * T * D), k = rng.Array(B * Hkv * T * D), v = rng.Array(B * Hkv * T * D), g = rng.Array(B * H * T * D);
        float[] Once()
        {
            var o = new float[q.Length]; var l = new float[B * H * T];
            Attention.Forward(q, k, v, o, l, B, H, Hkv, T, D, 0.2f);
            var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
            Attention.Backward(q, k, v, o, l, g, dq, dk, dv, B, H, Hkv, T, D, 0.2f);
            return [.. o, .. l, .. dq, .. dk, .. dv];
        }
        Assert.Equal(Once(), Once());
    }

    [Fact]
    public void ExpStaysWithinItsStatedUlps()
    {
        // Sweep the range softmax uses (arguments ≤ 0 down to the underflow edge, a little above 0 for backward).
        double worst512 = 0, worst256 = 0;
        var buf = new float[16];
        for (int t = 0; t <= 400_000; t++)
        {
            float x = -87.3f + 97.3f * t / 400_000f;
            double e = Math.Exp(x);
            worst512 = Math.Max(worst512, Math.Abs(Exp512(x) - e) / (e * Tolerance.U));
            worst256 = Math.Max(worst256, Math.Abs(Exp256(x) - e) / (e * Tolerance.U));
        }
        Assert.True(worst512 <= AttentionExp.MaxUlps, $"v512 exp error {worst512:F3} u > {AttentionExp.MaxUlps} u");
        Assert.True(worst256 <= AttentionExp.MaxUlps, $"v256 exp error {worst256:F3} u > {AttentionExp.MaxUlps} u");
        Assert.Equal(0f, Exp512(float.NegativeInfinity));
        Assert.Equal(0f, Exp256(float.NegativeInfinity));
        Assert.Equal(1f, Exp512(0f));

        static unsafe float Exp512(float x)
        {
            float* r = stackalloc float[16];
            AttentionVector512.Store(AttentionExp.Exp(AttentionVector512.Splat(x)), r);
            return r[0];
        }
        static unsafe float Exp256(float x)
        {
            float* r = stackalloc float[8];
            AttentionVector256.Store(AttentionExp.Exp(AttentionVector256.Splat(x)), r);
            return r[7];
        }
    }

    [Fact]
    public void RejectsHeadsThatAreNotAMultipleOfKvHeads()
    {
        var a = new float[3 * 4 * 2];
        var e = Assert.Throws<ArgumentException>(() => Attention.Forward(a, a, a, new float[a.Length], new float[12], 1, 3, 2, 4, 2, 1f));
        Assert.Contains("multiple", e.Message);
        Assert.Throws<ArgumentException>(() => Attention.Backward(a, a, a, a, new float[12], a, new float[a.Length], new float[a.Length], new float[a.Length], 1, 3, 2, 4, 2, 1f));
    }

    [Theory]
    [InlineData("q")] [InlineData("k")] [InlineData("v")] [InlineData("o")] [InlineData("lse")]
    [InlineData("dO")] [InlineData("dq")] [InlineData("dk")] [InlineData("dv")]
    public void RejectsShortSpans(string which)
    {
        const int B = 1, H = 2, Hkv = 1, T = 5, D = 4;
        float[] Buf(string name, int n) => new float[name == which ? n - 1 : n];
        int qn = B * H * T * D, kn = B * Hkv * T * D;
        var q = Buf("q", qn); var k = Buf("k", kn); var v = Buf("v", kn); var o = Buf("o", qn); var lse = Buf("lse", B * H * T);
        var dO = Buf("dO", qn); var dq = Buf("dq", qn); var dk = Buf("dk", kn); var dv = Buf("dv", kn);
        var e = Assert.Throws<ArgumentException>(() => Attention.Backward(q, k, v, o, lse, dO, dq, dk, dv, B, H, Hkv, T, D, 1f));
        Assert.StartsWith("Attention:", e.Message);
        if (which is "q" or "k" or "v" or "o" or "lse")
            Assert.Throws<ArgumentException>(() => Attention.Forward(q, k, v, o, lse, B, H, Hkv, T, D, 1f));
    }

    [Fact]
    public void EmptySequenceOrBatchTouchesNothing()
    {
        var sentinel = new float[] { 5f };
        Attention.Forward([], [], [], sentinel, sentinel, 1, 2, 1, 0, 4, 1f);
        Attention.Backward([], [], [], [], [], [], sentinel, sentinel, sentinel, 0, 2, 1, 8, 4, 1f);
        Assert.Equal(5f, sentinel[0]);
    }

    static double[] DoubleForward(double[] q, double[] k, double[] v, int batch, int heads, int kvHeads, int seq, int dim, double scale, int window, double cap, out double[] lse)
    {
        var o = new double[q.Length];
        lse = new double[batch * heads * seq];
        var s = new double[seq];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            {
                int qo = (b * heads + h) * seq * dim, ko = (b * kvHeads + h / (heads / kvHeads)) * seq * dim;
                for (int i = 0; i < seq; i++)
                {
                    int lo = window > 0 ? Math.Max(0, i - window + 1) : 0;
                    double m = double.NegativeInfinity, l = 0;
                    for (int j = lo; j <= i; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < dim; d++) dot += q[qo + i * dim + d] * k[ko + j * dim + d];
                        s[j] = cap > 0 ? cap * Math.Tanh(dot * scale / cap) : dot * scale; m = Math.Max(m, s[j]);
                    }
                    for (int j = lo; j <= i; j++) l += Math.Exp(s[j] - m);
                    lse[(b * heads + h) * seq + i] = m + Math.Log(l);
                    for (int d = 0; d < dim; d++)
                    {
                        double acc = 0;
                        for (int j = lo; j <= i; j++) acc += Math.Exp(s[j] - m) / l * v[ko + j * dim + d];
                        o[qo + i * dim + d] = acc;
                    }
                }
            }
        return o;
    }

    static double[] DoubleForward(float[] q, float[] k, float[] v, int batch, int heads, int kvHeads, int seq, int dim, double scale, int window, double cap, out double[] lse)
        => DoubleForward(Array.ConvertAll(q, f => (double)f), Array.ConvertAll(k, f => (double)f), Array.ConvertAll(v, f => (double)f),
            batch, heads, kvHeads, seq, dim, scale, window, cap, out lse);

    static float[] Filled(int n, float value) { var a = new float[n]; Array.Fill(a, value); return a; }

    static void AssertClose(float[] expected, float[] actual, double[] bound, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            Tolerance.Within(expected[i], actual[i], bound[i] + Tolerance.Ulps(expected[i], 1), what, i);
    }
}
