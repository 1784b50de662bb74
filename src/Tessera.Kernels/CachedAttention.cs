using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>
/// Attention of new query rows against a key/value cache: row r (a token of some sequence at position
/// pos) attends to its own sequence's cached positions [lo, last], lo = 0 or pos − window + 1 and
/// last = max(pos, PrefixEnd − 1) (a bidirectional prefix, prefix-LM), with a
/// per-call scale and optional logit soft-cap (s ← cap·tanh(s/cap), Gemma 2), so layers that differ
/// (Gemma's local and global layers) share one instance. The keys and values of the rows themselves
/// are written to the cache before this runs, so one call serves prefill (many rows of one sequence,
/// causal through the positions), decode (one row per sequence) and speculative verification alike.
/// Same contract as <see cref="ScalarCachedAttention"/>.
/// <para>Work is split over (row, kv head) pairs, claimed in chunks on <see cref="WorkerPool.Shared"/>
/// (<see cref="WorkerPool.For(int, int, Action{int, int})"/>); the query heads sharing a kv head run
/// back to back, so that head's keys and values come from cache after the first one. Any head
/// dimension works; 64-wide heads on AVX-512 take a register-resident path.</para>
/// </summary>
public sealed unsafe class CachedAttention
{
    readonly int heads, kvHeads, headDim, group;
    readonly int positions;
    readonly Action<int, int> body;
    [ThreadStatic] static float[]? scores;   // per thread: (group, positions)

    // The call in flight (set before WorkerPool.For so the cached delegate needs no closure).
    KvCacheView cache;
    int layer, window;
    float scale, softCap;
    int[] slots = [], rowPositions = [], rowLast = [];
    float* q, o;
    int qStride;

    /// <summary>
    /// Attention for <paramref name="heads"/> query heads over <paramref name="kvHeads"/> key/value heads
    /// of <paramref name="headDim"/> floats, for rows at positions below <paramref name="positions"/>.
    /// </summary>
    public CachedAttention(int heads, int kvHeads, int headDim, int positions)
    {
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || headDim <= 0 || positions < 0)
            throw new ArgumentException(
                $"CachedAttention: need heads a positive multiple of kvHeads, headDim > 0 and positions ≥ 0; got heads {heads}, kvHeads {kvHeads}, headDim {headDim}, positions {positions}.");
        this.heads = heads; this.kvHeads = kvHeads; this.headDim = headDim; this.positions = positions;
        group = heads / kvHeads;
        body = Run;
    }

    /// <summary>
    /// o (rows, H·D) = attention of q over each row's cached history in layer <paramref name="layerIndex"/>;
    /// row r's H·D queries start at <c>queries + r·queryStride</c> (the q part of a fused q|k|v row).
    /// <paramref name="window"/> &gt; 0 limits a row to its last <c>window</c> positions;
    /// <paramref name="softCap"/> &gt; 0 caps the scaled scores, 0 leaves them.
    /// </summary>
    public void Forward<TRow>(KvCacheView kv, int layerIndex, ReadOnlySpan<TRow> tokenRows, float* queries, int queryStride, float* output,
        int window, float scale, float softCap) where TRow : struct, ICachedRow
    {
        Check(kv, layerIndex, heads, kvHeads, headDim, queryStride, window, softCap);
        int n = tokenRows.Length;
        if (slots.Length < n) { slots = new int[n]; rowPositions = new int[n]; rowLast = new int[n]; }
        long work = 0;
        for (int i = 0; i < n; i++)
        {
            int slot = tokenRows[i].Slot, pos = tokenRows[i].Position;
            if (pos < 0 || pos >= Math.Min(positions, kv.Positions))
                throw new ArgumentOutOfRangeException(nameof(tokenRows), pos, $"CachedAttention: row {i} position {pos} outside [0, {Math.Min(positions, kv.Positions)}).");
            int last = Math.Max(pos, tokenRows[i].PrefixEnd - 1);
            if (last >= Math.Min(positions, kv.Positions))
                throw new ArgumentOutOfRangeException(nameof(tokenRows), tokenRows[i].PrefixEnd, $"CachedAttention: row {i} prefix end {tokenRows[i].PrefixEnd} beyond {Math.Min(positions, kv.Positions)} positions.");
            kv.Keys(slot, layerIndex, 0);   // throws for a slot outside the cache or not allocated
            slots[i] = slot; rowPositions[i] = pos; rowLast[i] = last;
            work += last + 1;
        }
        cache = kv; layer = layerIndex; q = queries; o = output; qStride = queryStride;
        this.window = window; this.scale = scale; this.softCap = softCap;
        int units = n * kvHeads;
        var workers = WorkerPool.Shared;
        if (work * heads * headDim < 1 << 15) Run(0, units);
        else workers.For(units, 8 * workers.ThreadCount, body);
    }

    /// <summary>The argument checks the kernel and its twin share.</summary>
    internal static void Check(KvCacheView kv, int layer, int heads, int kvHeads, int headDim, int queryStride, int window, float softCap)
    {
        if (kv.KvHeads != kvHeads || kv.HeadDim != headDim)
            throw new ArgumentException($"CachedAttention: the cache holds {kv.KvHeads} kv heads of {kv.HeadDim}, expected {kvHeads} of {headDim}.");
        if ((uint)layer >= (uint)kv.Layers) throw new ArgumentOutOfRangeException(nameof(layer), layer, $"CachedAttention: layer outside [0, {kv.Layers}).");
        if (queryStride < heads * headDim) throw new ArgumentException($"CachedAttention: query stride {queryStride} < {heads * headDim}.");
        if (window < 0) throw new ArgumentOutOfRangeException(nameof(window), window, "CachedAttention: window must be ≥ 0 (0: none).");
        if (!(softCap >= 0) || float.IsInfinity(softCap))
            throw new ArgumentOutOfRangeException(nameof(softCap), softCap, "CachedAttention: the soft-cap must be 0 (none) or positive and finite.");
    }

    void Run(int start, int end)
    {
        var s = scores is { } buffer && buffer.Length >= group * positions ? buffer : scores = new float[group * positions];
        int hd = headDim, stride = heads * headDim;
        bool capped = softCap > 0;
        for (int u = start; u < end; u++)
        {
            int r = u / kvHeads, g = u % kvHeads;
            int pos = rowPositions[r], slot = slots[r];
            int lo = window > 0 ? Math.Max(0, pos - window + 1) : 0, n = rowLast[r] - lo + 1;
            float* k = cache.Keys(slot, layer, g) + (long)lo * hd;
            float* v = cache.Values(slot, layer, g) + (long)lo * hd;
            for (int h = 0; h < group; h++)
            {
                int head = g * group + h;
                if (hd == 64 && Vector512.IsHardwareAccelerated)
                {
                    if (h + 1 < group)
                    {
                        // Two query heads of the group in one pass over the keys and values.
                        // What comes next: the group's next pair reads these keys again; else the next unit's keys.
                        float* nextK = null;
                        int nextN = 0;
                        if (h + 2 < group) { nextK = k; nextN = n; }
                        else if (u + 1 < end)
                        {
                            int nrow = (u + 1) / kvHeads, npos = rowPositions[nrow];
                            int nlo = window > 0 ? Math.Max(0, npos - window + 1) : 0;
                            nextK = cache.Keys(slots[nrow], layer, (u + 1) % kvHeads) + (long)nlo * hd;
                            nextN = rowLast[nrow] - nlo + 1;
                        }
                        fixed (float* sp = s)
                            Pair64(q + (long)r * qStride + head * hd, k, v, n, sp + h * n, sp + (h + 1) * n, o + (long)r * stride + head * hd, nextK, nextN);
                        h++;
                    }
                    else Head64(q + (long)r * qStride + head * hd, k, v, n, s.AsSpan(h * n, n), o + (long)r * stride + head * hd);
                    continue;
                }
                var qh = new ReadOnlySpan<float>(q + (long)r * qStride + head * hd, hd);
                var sh = s.AsSpan(h * n, n);
                float max = float.NegativeInfinity;
                for (int j = 0; j < n; j++)
                {
                    float x = TensorPrimitives.Dot(qh, new ReadOnlySpan<float>(k + (long)j * hd, hd)) * scale;
                    sh[j] = x;
                    if (x > max) max = x;
                }
                if (capped) { Activations.SoftCap(sh, sh, softCap); max = TensorPrimitives.Max(sh); }
                float sum = 0;
                for (int j = 0; j < n; j++) { float e = MathF.Exp(sh[j] - max); sh[j] = e; sum += e; }
                float inv = 1f / sum;
                var oh = new Span<float>(o + (long)r * stride + head * hd, hd);
                oh.Clear();
                for (int j = 0; j < n; j++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(v + (long)j * hd, hd), sh[j] * inv, oh, oh);
            }
        }
    }

    /// <summary>
    /// Two adjacent 64-wide query heads (a, then b = a + 1, outputs side by side at
    /// <paramref name="oh"/>) over the same keys and values: each key and value vector is loaded
    /// once for both; scores are formed four positions at a time and reduced together
    /// (<see cref="LaneSums.Sum4"/>), and the two heads' output sums are independent FMA chains.
    /// </summary>
    /// <remarks>
    /// The caches of different sequences and heads are separate blocks of a few KB, too short for
    /// the hardware prefetcher to ramp up on, so the score loop asks for the value lines it will
    /// read next, and the value loop for the first <paramref name="nextN"/> key rows at
    /// <paramref name="nextK"/> (the next unit's, when there is one).
    /// </remarks>
    void Pair64(float* qh, float* k, float* v, int n, float* sa, float* sb, float* oh, float* nextK, int nextN)
    {
        float* qb = qh + 64;
        var a0 = Vector512.Load(qh); var a1 = Vector512.Load(qh + 16); var a2 = Vector512.Load(qh + 32); var a3 = Vector512.Load(qh + 48);
        var b0 = Vector512.Load(qb); var b1 = Vector512.Load(qb + 16); var b2 = Vector512.Load(qb + 32); var b3 = Vector512.Load(qb + 48);
        var sc = Vector128.Create(scale);
        int j = 0;
        for (; j + 4 <= n; j += 4)
        {
            float* kj = k + (long)j * 64;
            float* vp = v + (long)j * 64;
            for (int l = 0; l < 16; l++) Sse.Prefetch0(vp + 16 * l);
            Vector512<float> x0 = Vector512.Load(kj), x1 = Vector512.Load(kj + 16), x2 = Vector512.Load(kj + 32), x3 = Vector512.Load(kj + 48);
            var pa0 = Dot(a0, a1, a2, a3, x0, x1, x2, x3); var pb0 = Dot(b0, b1, b2, b3, x0, x1, x2, x3);
            kj += 64; x0 = Vector512.Load(kj); x1 = Vector512.Load(kj + 16); x2 = Vector512.Load(kj + 32); x3 = Vector512.Load(kj + 48);
            var pa1 = Dot(a0, a1, a2, a3, x0, x1, x2, x3); var pb1 = Dot(b0, b1, b2, b3, x0, x1, x2, x3);
            kj += 64; x0 = Vector512.Load(kj); x1 = Vector512.Load(kj + 16); x2 = Vector512.Load(kj + 32); x3 = Vector512.Load(kj + 48);
            var pa2 = Dot(a0, a1, a2, a3, x0, x1, x2, x3); var pb2 = Dot(b0, b1, b2, b3, x0, x1, x2, x3);
            kj += 64; x0 = Vector512.Load(kj); x1 = Vector512.Load(kj + 16); x2 = Vector512.Load(kj + 32); x3 = Vector512.Load(kj + 48);
            var pa3 = Dot(a0, a1, a2, a3, x0, x1, x2, x3); var pb3 = Dot(b0, b1, b2, b3, x0, x1, x2, x3);
            Vector128.Store(LaneSums.Sum4(pa0, pa1, pa2, pa3) * sc, sa + j);
            Vector128.Store(LaneSums.Sum4(pb0, pb1, pb2, pb3) * sc, sb + j);
        }
        for (; j < n; j++)
        {
            float* kj = k + (long)j * 64;
            Vector512<float> x0 = Vector512.Load(kj), x1 = Vector512.Load(kj + 16), x2 = Vector512.Load(kj + 32), x3 = Vector512.Load(kj + 48);
            sa[j] = Vector512.Sum(Dot(a0, a1, a2, a3, x0, x1, x2, x3)) * scale;
            sb[j] = Vector512.Sum(Dot(b0, b1, b2, b3, x0, x1, x2, x3)) * scale;
        }
        var spanA = new Span<float>(sa, n); var spanB = new Span<float>(sb, n);
        if (softCap > 0) { Activations.SoftCap(spanA, spanA, softCap); Activations.SoftCap(spanB, spanB, softCap); }
        TensorPrimitives.Subtract(spanA, TensorPrimitives.Max(spanA), spanA);
        TensorPrimitives.Subtract(spanB, TensorPrimitives.Max(spanB), spanB);
        VectorMath.Exp(spanA, spanA);
        VectorMath.Exp(spanB, spanB);
        float invA = 1f / TensorPrimitives.Sum(spanA), invB = 1f / TensorPrimitives.Sum(spanB);
        Vector512<float> oa0 = default, oa1 = default, oa2 = default, oa3 = default;
        Vector512<float> ob0 = default, ob1 = default, ob2 = default, ob3 = default;
        for (j = 0; j < n; j++)
        {
            float* vj = v + (long)j * 64;
            if (j < nextN)
            {
                float* nk = nextK + (long)j * 64;
                Sse.Prefetch0(nk); Sse.Prefetch0(nk + 16); Sse.Prefetch0(nk + 32); Sse.Prefetch0(nk + 48);
            }
            Vector512<float> y0 = Vector512.Load(vj), y1 = Vector512.Load(vj + 16), y2 = Vector512.Load(vj + 32), y3 = Vector512.Load(vj + 48);
            var pa = Vector512.Create(sa[j]); var pb = Vector512.Create(sb[j]);
            oa0 = Vector512.FusedMultiplyAdd(pa, y0, oa0); oa1 = Vector512.FusedMultiplyAdd(pa, y1, oa1);
            oa2 = Vector512.FusedMultiplyAdd(pa, y2, oa2); oa3 = Vector512.FusedMultiplyAdd(pa, y3, oa3);
            ob0 = Vector512.FusedMultiplyAdd(pb, y0, ob0); ob1 = Vector512.FusedMultiplyAdd(pb, y1, ob1);
            ob2 = Vector512.FusedMultiplyAdd(pb, y2, ob2); ob3 = Vector512.FusedMultiplyAdd(pb, y3, ob3);
        }
        var va = Vector512.Create(invA); var vb = Vector512.Create(invB);
        Vector512.Store(oa0 * va, oh); Vector512.Store(oa1 * va, oh + 16); Vector512.Store(oa2 * va, oh + 32); Vector512.Store(oa3 * va, oh + 48);
        Vector512.Store(ob0 * vb, oh + 64); Vector512.Store(ob1 * vb, oh + 80); Vector512.Store(ob2 * vb, oh + 96); Vector512.Store(ob3 * vb, oh + 112);
    }

    /// <summary>The lane-wise partial products of a 64-wide dot product (summed by the caller).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Dot(Vector512<float> q0, Vector512<float> q1, Vector512<float> q2, Vector512<float> q3,
        Vector512<float> k0, Vector512<float> k1, Vector512<float> k2, Vector512<float> k3)
        => Vector512.FusedMultiplyAdd(q3, k3, Vector512.FusedMultiplyAdd(q2, k2, Vector512.FusedMultiplyAdd(q1, k1, q0 * k0)));

    /// <summary>
    /// One 64-wide head in registers: scores q·kⱼ (4 FMAs each), a vectorised max-subtracted
    /// softmax, then o = Σ pⱼ·vⱼ accumulated in 4 vectors and scaled once — the short per-position
    /// vector calls of the general path cost more than the arithmetic at decode lengths.
    /// </summary>
    void Head64(float* qh, float* k, float* v, int n, Span<float> sh, float* oh)
    {
        var q0 = Vector512.Load(qh); var q1 = Vector512.Load(qh + 16); var q2 = Vector512.Load(qh + 32); var q3 = Vector512.Load(qh + 48);
        float max = float.NegativeInfinity;
        for (int j = 0; j < n; j++)
        {
            float* kj = k + (long)j * 64;
            var acc = q0 * Vector512.Load(kj);
            acc = Vector512.FusedMultiplyAdd(q1, Vector512.Load(kj + 16), acc);
            acc = Vector512.FusedMultiplyAdd(q2, Vector512.Load(kj + 32), acc);
            acc = Vector512.FusedMultiplyAdd(q3, Vector512.Load(kj + 48), acc);
            float x = Vector512.Sum(acc) * scale;
            sh[j] = x;
            if (x > max) max = x;
        }
        if (softCap > 0) { Activations.SoftCap(sh, sh, softCap); max = TensorPrimitives.Max(sh); }
        TensorPrimitives.Subtract(sh, max, sh);
        VectorMath.Exp(sh, sh);
        float inv = 1f / TensorPrimitives.Sum(sh);
        Vector512<float> o0 = default, o1 = default, o2 = default, o3 = default;
        for (int j = 0; j < n; j++)
        {
            float* vj = v + (long)j * 64;
            var p = Vector512.Create(sh[j]);
            o0 = Vector512.FusedMultiplyAdd(p, Vector512.Load(vj), o0);
            o1 = Vector512.FusedMultiplyAdd(p, Vector512.Load(vj + 16), o1);
            o2 = Vector512.FusedMultiplyAdd(p, Vector512.Load(vj + 32), o2);
            o3 = Vector512.FusedMultiplyAdd(p, Vector512.Load(vj + 48), o3);
        }
        var vi = Vector512.Create(inv);
        Vector512.Store(o0 * vi, oh); Vector512.Store(o1 * vi, oh + 16); Vector512.Store(o2 * vi, oh + 32); Vector512.Store(o3 * vi, oh + 48);
    }
}
