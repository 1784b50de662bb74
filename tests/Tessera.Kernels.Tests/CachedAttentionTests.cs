using System.Runtime.InteropServices;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// <see cref="CachedAttention"/> against <see cref="ScalarCachedAttention"/> over head dims 2..256
/// (the 64-wide register path and the general one), grouped heads (odd groups take the single-head
/// path too), windows, soft-caps and every history length 1..257.
/// <para>Bound per output element (u = 2⁻²⁴, n = visible positions, γₙ = (n+2)u/(1 − (n+2)u)): a
/// score's error is γ_D·|scale|·Σ|q·k| (the D-term dot) + u|z| (×scale), through the soft-cap as in
/// <see cref="AttentionErrorBounds"/>; the max-subtracted exponent x_j = s_j − m is then off by
/// δs_j + max δs + u|x_j|, so exp(x_j) carries ρ_j = expm1(that) + 2u (exp). The sum l of the
/// weights carries δl ≤ max ρ + γₙ, its reciprocal δl/(1 − δl) + u; each weight·v term one more
/// rounding and the n-term accumulation γₙ, so
/// |ô − o| ≤ Σ_j w_j|v_j|·((1 + ρ_j)(1 + δl/(1 − δl))(1 + u)³(1 + γₙ) − 1); plus one ulp for the
/// twin's own rounding.</para>
/// </summary>
public unsafe class CachedAttentionTests
{
    const double U = Tolerance.U;

    readonly record struct Row(int Slot, int Position, int PrefixEnd = 0) : ICachedRow;

    sealed class Cache : IDisposable
    {
        public readonly float*[] Keys, Values;
        public readonly KvCacheView View;

        public Cache(TestRandom r, int slots, int layers, int kvHeads, int positions, int headDim)
        {
            Keys = new float*[slots]; Values = new float*[slots];
            View = new KvCacheView(Keys, Values, layers, kvHeads, positions, headDim);
            long n = View.SlotFloats;
            for (int s = 0; s < slots; s++)
            {
                Keys[s] = (float*)NativeMemory.AlignedAlloc((nuint)(n * sizeof(float)), 64);
                Values[s] = (float*)NativeMemory.AlignedAlloc((nuint)(n * sizeof(float)), 64);
                for (long i = 0; i < n; i++) { Keys[s][i] = r.Uniform(-2f, 2f); Values[s][i] = r.Uniform(); }
            }
        }

        public void Dispose()
        {
            for (int s = 0; s < Keys.Length; s++) { NativeMemory.AlignedFree(Keys[s]); NativeMemory.AlignedFree(Values[s]); }
        }
    }

    static double[] Bounds(Cache cache, int layer, Row[] rows, float[] q, int stride, int heads, int kvHeads, int dim, int window, float scale, float cap)
    {
        var bound = new double[rows.Length * heads * dim];
        int group = heads / kvHeads;
        double gD = Tolerance.Gamma(dim);
        for (int r = 0; r < rows.Length; r++)
        {
            int pos = rows[r].Position, lo = window > 0 ? Math.Max(0, pos - window + 1) : 0, n = Math.Max(pos, rows[r].PrefixEnd - 1) - lo + 1;
            double gN = Tolerance.Gamma(n);
            var s = new double[n]; var ds = new double[n];
            for (int h = 0; h < heads; h++)
            {
                float* k = cache.View.Keys(rows[r].Slot, layer, h / group), v = cache.View.Values(rows[r].Slot, layer, h / group);
                double m = double.NegativeInfinity, dsMax = 0;
                for (int j = 0; j < n; j++)
                {
                    double dot = 0, abs = 0;
                    for (int d = 0; d < dim; d++)
                    {
                        double t = (double)q[r * stride + h * dim + d] * k[(long)(lo + j) * dim + d];
                        dot += t; abs += Math.Abs(t);
                    }
                    double z = dot * scale;
                    (s[j], ds[j], _, _) = AttentionErrorBounds.Capped(z, gD * Math.Abs(scale) * abs + U * Math.Abs(z), cap, 4);
                    m = Math.Max(m, s[j]); dsMax = Math.Max(dsMax, ds[j]);
                }
                double l = 0, rhoMax = 0;
                var rho = new double[n];
                for (int j = 0; j < n; j++)
                {
                    l += Math.Exp(s[j] - m);
                    rho[j] = double.ExpM1(ds[j] + dsMax + U * Math.Abs(s[j] - m)) + 2 * U;
                    rhoMax = Math.Max(rhoMax, rho[j]);
                }
                double dl = rhoMax + gN, inv = dl / (1 - dl);
                for (int d = 0; d < dim; d++)
                {
                    double b = 0;
                    for (int j = 0; j < n; j++)
                        b += Math.Exp(s[j] - m) / l * Math.Abs(v[(long)(lo + j) * dim + d])
                            * ((1 + rho[j]) * (1 + inv) * Math.Pow(1 + U, 3) * (1 + gN) - 1);
                    bound[(r * heads + h) * dim + d] = b + 1e-30;
                }
            }
        }
        return bound;
    }

    static void Check(TestRandom r, int heads, int kvHeads, int dim, Row[] rows, int window, float cap, string what)
    {
        const int Slots = 3, Layers = 2, Layer = 1;
        int positions = 1;
        foreach (var row in rows) positions = Math.Max(positions, Math.Max(row.Position + 1, row.PrefixEnd));
        using var cache = new Cache(r, Slots, Layers, kvHeads, positions, dim);
        int stride = heads * dim + 2 * kvHeads * dim;   // a fused q|k|v row
        var q = r.Array(rows.Length * stride, -2f, 2f);
        float scale = (cap > 0 ? 3f : 1f) / MathF.Sqrt(dim);
        var want = new float[rows.Length * heads * dim];
        ScalarCachedAttention.Forward(cache.View, Layer, (ReadOnlySpan<Row>)rows, q, stride, want, heads, kvHeads, dim, window, scale, cap);
        var got = new float[want.Length];
        Array.Fill(got, float.NaN);
        var attention = new CachedAttention(heads, kvHeads, dim, positions);
        fixed (float* pq = q, po = got)
            attention.Forward(cache.View, Layer, (ReadOnlySpan<Row>)rows, pq, stride, po, window, scale, cap);
        var bound = Bounds(cache, Layer, rows, q, stride, heads, kvHeads, dim, window, scale, cap);
        for (int i = 0; i < want.Length; i++)
            Tolerance.Within(want[i], got[i], bound[i] + Tolerance.Ulps(want[i], 1), $"{what} H={heads} Hkv={kvHeads} D={dim} window={window} cap={cap}", i);
    }

    public static TheoryData<int> Dims() => [2, 8, 18, 64, 128, 256];

    /// <summary>
    /// Prefix-LM rows (an image-plus-prompt prefix seen both ways): rows inside the prefix also read
    /// the prefix positions after them, rows past it stay causal; windows and caps as above.
    /// </summary>
    [Theory]
    [MemberData(nameof(Dims))]
    public void PrefixRowsMatchTwin(int dim)
    {
        var r = new TestRandom(1000 + (ulong)dim);
        Row[] rows = [new(0, 0, 9), new(1, 3, 70), new(2, 4, 5), new(0, 8, 9), new(1, 64, 70), new(2, 70, 5), new(0, 1, 1), new(1, 0, 65)];
        foreach (var (h, hkv) in new[] { (1, 1), (4, 2), (3, 1) })
            foreach (int window in new[] { 0, 5 })
                foreach (float cap in new[] { 0f, 2f })
                    Check(r, h, hkv, dim, rows, window, cap, "prefix rows");
    }

    [Theory]
    [MemberData(nameof(Dims))]
    public void MatchesTwinOverHeadLayoutsWindowsAndCaps(int dim)
    {
        var r = new TestRandom((ulong)dim);
        Row[] rows = [new(0, 0), new(1, 3), new(2, 4), new(0, 17), new(1, 64), new(2, 70), new(0, 5), new(1, 1)];
        foreach (var (h, hkv) in new[] { (1, 1), (4, 2), (3, 1), (6, 2) })
            foreach (int window in new[] { 0, 5 })
                foreach (float cap in new[] { 0f, 2f })
                    Check(r, h, hkv, dim, rows, window, cap, "mixed rows");
    }

    [Theory]
    [InlineData(64)]
    [InlineData(256)]
    public void MatchesTwinForEveryHistoryLength(int dim)
    {
        // One prefill-like call with a row at every position 0..256 (history lengths 1..257):
        // every tail of the 4-wide score loop and of the vector loops, on the threaded path.
        var r = new TestRandom(99 + (ulong)dim);
        var rows = new Row[257];
        for (int i = 0; i < rows.Length; i++) rows[i] = new Row(i % 3, i);
        Check(r, 4, 2, dim, rows, 0, 0f, "every length");
        Check(r, 4, 2, dim, rows, 0, 30f, "every length");
    }

    /// <summary>
    /// The softmax pass's lane max by vector folds and its tail exponentials as one vector give the bits of the
    /// scalar max and scalar tail: every history length 1..130 (every tail length 0..15 several times), on the
    /// tiled prompt path and the one-row paths (paired and single heads), with and without a soft-cap.
    /// </summary>
    [Theory]
    [InlineData(3, 1, 0f)]
    [InlineData(4, 2, 30f)]
    public void SoftmaxVectorTailGivesTheScalarTailsBits(int heads, int kvHeads, float cap)
    {
        const int Dim = 64, Layer = 1, Positions = 130;
        var r = new TestRandom(77 + (ulong)heads);
        using var cache = new Cache(r, 2, 2, kvHeads, Positions, Dim);
        var rows = new Row[Positions + 20];
        for (int i = 0; i < Positions; i++) rows[i] = new Row(0, i);                     // a prompt: tiles
        for (int i = 0; i < 20; i++) rows[Positions + i] = new Row(1, 7 * i % Positions);   // single rows: one-row paths
        int stride = heads * Dim + 2 * kvHeads * Dim, width = heads * Dim;
        var q = r.Array(rows.Length * stride, -2f, 2f);
        float scale = 1f / MathF.Sqrt(Dim);
        var vector = new float[rows.Length * width];
        var scalar = new float[rows.Length * width];
        var attention = new CachedAttention(heads, kvHeads, Dim, Positions);
        bool was = CachedAttention.VectorTail;
        try
        {
            fixed (float* pq = q, pv = vector, ps = scalar)
            {
                CachedAttention.VectorTail = true;
                attention.Forward(cache.View, Layer, (ReadOnlySpan<Row>)rows, pq, stride, pv, 0, scale, cap);
                CachedAttention.VectorTail = false;
                attention.Forward(cache.View, Layer, (ReadOnlySpan<Row>)rows, pq, stride, ps, 0, scale, cap);
            }
        }
        finally { CachedAttention.VectorTail = was; }
        for (int i = 0; i < vector.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(vector[i]) == BitConverter.SingleToInt32Bits(scalar[i]),
                $"row {i / width} ({rows[i / width]}), element {i % width}: {vector[i]:R} vector tail, {scalar[i]:R} scalar tail");
    }

    /// <summary>
    /// Rows fed as prompt runs (≥ 4 consecutive rows of a slot: the tiled path for 64-wide heads, in
    /// tiles of up to 64 rows) give the same bits as the same rows fed one per call (the one-row path),
    /// and stay within the twin's bound: runs of 150 (three tiles), 5 and 7 rows, plain rows between,
    /// prefix rows, windows, soft-caps, grouped, paired and single heads. Bit equality is the contract
    /// the prefix cache and chunked prompts rely on, so it is exact, not a tolerance.
    /// </summary>
    [Theory]
    [InlineData(64, 4, 2, 0, 0f)]
    [InlineData(64, 6, 2, 0, 2f)]
    [InlineData(64, 3, 1, 5, 0f)]
    [InlineData(64, 1, 1, 70, 30f)]
    [InlineData(18, 4, 2, 0, 0f)]
    public void PromptRunsEqualOneRowPerCallBitForBit(int dim, int heads, int kvHeads, int window, float cap)
    {
        var r = new TestRandom(500 + (ulong)(heads * 100 + window));
        var list = new List<Row>();
        for (int i = 0; i < 150; i++) list.Add(new Row(0, i));              // a long prompt: tiles of 64, 64, 22
        list.Add(new Row(2, 40)); list.Add(new Row(1, 3));                  // plain rows between runs
        for (int i = 10; i < 15; i++) list.Add(new Row(1, i));              // a short run
        list.Add(new Row(2, 41));
        for (int i = 20; i < 27; i++) list.Add(new Row(2, i, 30));          // prefix rows (bidirectional up to 29)
        var rows = list.ToArray();
        Check(r, heads, kvHeads, dim, rows, window, cap, "prompt runs");

        const int Slots = 3, Layers = 2, Layer = 1;
        using var cache = new Cache(r, Slots, Layers, kvHeads, 160, dim);
        int stride = heads * dim + 2 * kvHeads * dim, width = heads * dim;
        var q = r.Array(rows.Length * stride, -2f, 2f);
        float scale = (cap > 0 ? 3f : 1f) / MathF.Sqrt(dim);
        var together = new float[rows.Length * width];
        var alone = new float[rows.Length * width];
        var attention = new CachedAttention(heads, kvHeads, dim, 160);
        fixed (float* pq = q, pt = together, pa = alone)
        {
            attention.Forward(cache.View, Layer, (ReadOnlySpan<Row>)rows, pq, stride, pt, window, scale, cap);
            for (int i = 0; i < rows.Length; i++)
                attention.Forward(cache.View, Layer, (ReadOnlySpan<Row>)rows.AsSpan(i, 1), pq + (long)i * stride, stride, pa + (long)i * width, window, scale, cap);
        }
        for (int i = 0; i < together.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(together[i]) == BitConverter.SingleToInt32Bits(alone[i]),
                $"row {i / width} ({rows[i / width]}), element {i % width}: {together[i]:R} in the run, {alone[i]:R} alone");
    }

    [Fact]
    public void BadArgumentsThrowNamingTheExpectedValue()
    {
        using var cache = new Cache(new TestRandom(5), 1, 1, 2, 8, 16);
        var attention = new CachedAttention(4, 2, 16, 8);
        var q = new float[4 * 16];
        Row[] rows = [new(0, 3)];
        fixed (float* pq = q, po = new float[4 * 16])
        {
            float* a = pq, b = po;
            var e = Assert.Throws<ArgumentException>(() => new CachedAttention(4, 2, 8, 8).Forward(cache.View, 0, (ReadOnlySpan<Row>)rows, a, 64, b, 0, 1f, 0f));
            Assert.Contains("expected 2 of 8", e.Message);
            Assert.Throws<ArgumentOutOfRangeException>(() => attention.Forward(cache.View, 0, (ReadOnlySpan<Row>)[new Row(0, 8)], a, 64, b, 0, 1f, 0f));
            Assert.Throws<ArgumentOutOfRangeException>(() => attention.Forward(cache.View, 0, (ReadOnlySpan<Row>)rows, a, 64, b, 0, 1f, -1f));
            Assert.Throws<ArgumentOutOfRangeException>(() => attention.Forward(cache.View, 0, (ReadOnlySpan<Row>)[new Row(1, 0)], a, 64, b, 0, 1f, 0f));
        }
        Assert.Throws<ArgumentException>(() => new CachedAttention(3, 2, 16, 8));
    }
}
