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
/// dimension works; 64-wide heads on AVX-512 take a register-resident path, and there a run of
/// rows of one slot (a prompt chunk, a speculative block) goes in tiles of up to 64 rows per kv head
/// through small matrix products (<c>Tile64</c>) that form every row with the same arithmetic as
/// the one-row path, so results never depend on how rows were grouped into calls.</para>
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

    // Prefill tiles (64-wide heads on AVX-512): runs of rows of one slot, consecutive in the call, cut
    // into tiles of at most TileRows rows; the rows outside any tile run one by one (plainRows).
    // Units [0, plain·kvHeads) are (plain row, kv head); the rest (tile, kv head).
    int[] plainRows = [], tileStart = [], tileCount = [];
    int plainCount, tileTotal;
    [ThreadStatic] static float[]? keysT, tileScores;   // per thread: Kᵀ (64, ldk) and scores (TileRows, ldk)

    /// <summary>A run of at least this many rows of one slot takes the tiled path (any length is exact: see <see cref="Tile64"/>).</summary>
    const int TileMin = 4;

    /// <summary>Timing switch: the softmax pass's lane max by vector folds and its tail exponentials as one vector (same bits).</summary>
    internal static bool VectorTail = true;

    /// <summary>Rows per prefill tile: the keys' transpose is made once per tile and kv head.</summary>
    const int TileRows = 64;

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
        Plan(n);
        int units = (plainCount + tileTotal) * kvHeads;
        var workers = WorkerPool.Shared;
        if (work * heads * headDim < 1 << 15) Run(0, units);
        else workers.For(units, 8 * workers.ThreadCount, body);
    }

    /// <summary>
    /// Splits the rows into tiles (runs of ≥ <see cref="TileMin"/> consecutive rows of one slot, at most
    /// <see cref="TileRows"/> each) and plain rows; without 64-wide heads on AVX-512 every row is plain.
    /// </summary>
    void Plan(int n)
    {
        if (plainRows.Length < n) { plainRows = new int[n]; tileStart = new int[n]; tileCount = new int[n]; }
        plainCount = 0; tileTotal = 0;
        bool tiled = headDim == 64 && Vector512.IsHardwareAccelerated;
        for (int i = 0; i < n;)
        {
            int end = i + 1;
            while (end < n && slots[end] == slots[i]) end++;
            if (tiled && end - i >= TileMin)
                for (int t = i; t < end; t += TileRows) { tileStart[tileTotal] = t; tileCount[tileTotal++] = Math.Min(TileRows, end - t); }
            else
                for (int t = i; t < end; t++) plainRows[plainCount++] = t;
            i = end;
        }
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
        int plainUnits = plainCount * kvHeads;
        for (int u = start; u < end; u++)
        {
            if (u >= plainUnits) { Tile64((u - plainUnits) / kvHeads, (u - plainUnits) % kvHeads); continue; }
            int r = plainRows[u / kvHeads], g = u % kvHeads;
            int slot = slots[r], lo = Lo(r), n = rowLast[r] - lo + 1;
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
                        else if (u + 1 < end && u + 1 < plainUnits)
                        {
                            int nrow = plainRows[(u + 1) / kvHeads], nlo = Lo(nrow);
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
            sa[j] = Tree(Dot(a0, a1, a2, a3, x0, x1, x2, x3)) * scale;
            sb[j] = Tree(Dot(b0, b1, b2, b3, x0, x1, x2, x3)) * scale;
        }
        float invA = Normalize(sa, n), invB = Normalize(sb, n);
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
    /// One 64-wide head in registers: scores q·kⱼ (4 FMAs each, the canonical sum of <see cref="Tree"/>), a vectorised max-subtracted
    /// softmax, then o = Σ pⱼ·vⱼ accumulated in 4 vectors and scaled once — the short per-position
    /// vector calls of the general path cost more than the arithmetic at decode lengths.
    /// </summary>
    void Head64(float* qh, float* k, float* v, int n, Span<float> span, float* oh)
    {
        var q0 = Vector512.Load(qh); var q1 = Vector512.Load(qh + 16); var q2 = Vector512.Load(qh + 32); var q3 = Vector512.Load(qh + 48);
        var sc = Vector128.Create(scale);
        float inv;
        fixed (float* sh = span)
        {
            int j = 0;
            for (; j + 4 <= n; j += 4)
            {
                float* kj = k + (long)j * 64;
                var p0 = Dot(q0, q1, q2, q3, Vector512.Load(kj), Vector512.Load(kj + 16), Vector512.Load(kj + 32), Vector512.Load(kj + 48));
                kj += 64;
                var p1 = Dot(q0, q1, q2, q3, Vector512.Load(kj), Vector512.Load(kj + 16), Vector512.Load(kj + 32), Vector512.Load(kj + 48));
                kj += 64;
                var p2 = Dot(q0, q1, q2, q3, Vector512.Load(kj), Vector512.Load(kj + 16), Vector512.Load(kj + 32), Vector512.Load(kj + 48));
                kj += 64;
                var p3 = Dot(q0, q1, q2, q3, Vector512.Load(kj), Vector512.Load(kj + 16), Vector512.Load(kj + 32), Vector512.Load(kj + 48));
                Vector128.Store(LaneSums.Sum4(p0, p1, p2, p3) * sc, sh + j);
            }
            for (; j < n; j++)
            {
                float* kj = k + (long)j * 64;
                sh[j] = Tree(Dot(q0, q1, q2, q3, Vector512.Load(kj), Vector512.Load(kj + 16), Vector512.Load(kj + 32), Vector512.Load(kj + 48))) * scale;
            }
            inv = Normalize(sh, n);
        }
        Vector512<float> o0 = default, o1 = default, o2 = default, o3 = default;
        for (int j = 0; j < n; j++)
        {
            float* vj = v + (long)j * 64;
            var p = Vector512.Create(span[j]);
            o0 = Vector512.FusedMultiplyAdd(p, Vector512.Load(vj), o0);
            o1 = Vector512.FusedMultiplyAdd(p, Vector512.Load(vj + 16), o1);
            o2 = Vector512.FusedMultiplyAdd(p, Vector512.Load(vj + 32), o2);
            o3 = Vector512.FusedMultiplyAdd(p, Vector512.Load(vj + 48), o3);
        }
        var vi = Vector512.Create(inv);
        Vector512.Store(o0 * vi, oh); Vector512.Store(o1 * vi, oh + 16); Vector512.Store(o2 * vi, oh + 32); Vector512.Store(o3 * vi, oh + 48);
    }

    // ---- The canonical 64-wide arithmetic, shared by Pair64, Head64 and Tile64 ----
    //
    // A score is s = tree(p)·scale, where lane l of p (l < 16) is the FMA chain
    // ((q[l]·k[l] + q[l+16]·k[l+16]) + q[l+32]·k[l+32]) + q[l+48]·k[l+48] and the tree is LaneSums.Sum4's:
    // t8 = p_l + p_{l+8}, t4 = t8_l + t8_{l+4}, s = (t4_0 + t4_1) + (t4_2 + t4_3). The weights are
    // exp(s − max) over the row's own keys, their sum is Total's, and o = (Σ_j w_j·v_j)·(1/sum) with the
    // j sum one FMA chain per output from zero. Every path forms each row this way, so a row's output
    // does not depend on which path ran it or which rows shared the call (prefix-cache hits, chunked
    // prompts and one-at-a-time decoding agree bit for bit).

    /// <summary>The canonical lane tree of one 16-lane partial vector (as <see cref="LaneSums.Sum4"/> sums each of its four).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    static float Tree(Vector512<float> p) => LaneSums.Sum4(p, p, p, p).ToScalar();

    /// <summary>
    /// Softmax weights in place over a row's n scores (soft-capped first when set): w = exp(s − max)
    /// (<see cref="VectorMath.Exp(Vector512{float})"/>, whose scalar form equals a lane), in one pass
    /// that also sums them: one 16-lane accumulator over the full vectors, its lanes summed by
    /// <see cref="Tree"/>, then the tail in order — an order fixed by n alone. Returns 1 / the sum.
    /// (Per-call overhead of span helpers dominated at a few hundred keys: one fused loop instead.)
    /// Full-optimised from the first call, as the tile kernels: a prefill makes too few calls for
    /// tiered compilation to promote it in time.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    float Normalize(float* s, int n)
    {
        if (softCap > 0) { var span = new Span<float>(s, n); Activations.SoftCap(span, span, softCap); }
        int j = 0;
        var mv = Vector512.Create(float.NegativeInfinity);
        for (; j + 16 <= n; j += 16) mv = Vector512.Max(mv, Vector512.Load(s + j));
        float max;
        if (VectorTail)
        {
            // Max is exact in any order: fold the lanes with vector maxima instead of 15 extractions.
            var m8 = Vector256.Max(mv.GetLower(), mv.GetUpper());
            var m4 = Vector128.Max(m8.GetLower(), m8.GetUpper());
            m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(2, 3, 0, 1)));
            max = MathF.Max(m4.ToScalar(), m4.GetElement(1));
        }
        else
        {
            max = mv.ToScalar();
            for (int l = 1; l < 16; l++) max = MathF.Max(max, mv.GetElement(l));
        }
        for (int i = j; i < n; i++) max = MathF.Max(max, s[i]);
        var m = Vector512.Create(max);
        var acc = Vector512<float>.Zero;
        for (j = 0; j + 16 <= n; j += 16)
        {
            var e = VectorMath.Exp(Vector512.Load(s + j) - m);
            Vector512.Store(e, s + j);
            acc += e;
        }
        float t = Tree(acc);
        if (VectorTail && j < n)
        {
            // The tail's exponentials as one vector on a padded copy (each lane equals the scalar Exp), then
            // added to the sum one by one in order, as before.
            float* tail = stackalloc float[16];
            int r = n - j;
            for (int i = 0; i < r; i++) tail[i] = s[j + i] - max;
            for (int i = r; i < 16; i++) tail[i] = 0;
            Vector512.Store(VectorMath.Exp(Vector512.Load(tail)), tail);
            for (int i = 0; i < r; i++) { s[j + i] = tail[i]; t += tail[i]; }
            return 1f / t;
        }
        for (; j < n; j++) { float e = VectorMath.Exp(s[j] - max); s[j] = e; t += e; }
        return 1f / t;
    }

    /// <summary>
    /// Prefill tile <paramref name="tile"/> (rows of one slot) on kv head <paramref name="g"/>, each row
    /// formed exactly as <see cref="Pair64"/> and <see cref="Head64"/> form it, but as small matrix products:
    /// the keys the tile can see, [klo, khi], are transposed once (Kᵀ, 64 × ldk, keys along lanes); the
    /// scores of two rows × 32 keys come from 4 loads per 4 FMAs with no horizontal sums (the tree is
    /// a handful of vector adds over lane partials, <see cref="Scores2x2"/>); and P·V runs four rows at
    /// a time through <see cref="AttentionTile.MatMul{V}"/>, with each row's weights outside its own keys
    /// set to zero (adding 0·v to the chain changes nothing: every key in [klo, khi] is a written, finite one).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    void Tile64(int tile, int g)
    {
        int r0 = tileStart[tile], rows = tileCount[tile], stride = heads * 64;
        int slot = slots[r0];
        int klo = int.MaxValue, khi = 0;
        for (int r = r0; r < r0 + rows; r++) { klo = Math.Min(klo, Lo(r)); khi = Math.Max(khi, rowLast[r]); }
        // Rows of Kᵀ (and of the scores) 16 floats past a multiple of 32: a power-of-two stride would put
        // the 64 rows of a key block in a few L1 sets and evict them between row pairs.
        int nk = khi - klo + 1, ldk = ((nk + 31) & ~31) + 16, most = ((positions + 31) & ~31) + 16;
        var kt = keysT is { } a && a.Length >= 64 * ldk ? a : keysT = new float[64 * Math.Max(ldk, most)];
        var st = tileScores is { } b && b.Length >= TileRows * ldk ? b : tileScores = new float[TileRows * Math.Max(ldk, most)];
        float* k = cache.Keys(slot, layer, g) + (long)klo * 64;
        float* v = cache.Values(slot, layer, g) + (long)klo * 64;
        Span<float> inv = stackalloc float[4];
        fixed (float* pk = kt, ps = st)
        {
            AttentionTile.Transpose(k, 64, nk, 64, pk, ldk);   // zero past nk: the padding keys score 0 and are never used
            for (int h = 0; h < group; h++)
            {
                int head = g * group + h;
                // Scores, two rows at a time over the 32-key blocks that cover both rows' keys; block by
                // block, so a block of Kᵀ (8 KB) stays in L1 while every row pair that sees it passes.
                for (int kb = 0; kb < nk; kb += 32)
                    for (int i = 0; i < rows; i += 2)
                    {
                        int ra = r0 + i, rb = i + 1 < rows ? ra + 1 : ra;
                        int from = (Math.Min(Lo(ra), Lo(rb)) - klo) & ~31, to = Math.Max(rowLast[ra], rowLast[rb]) - klo + 1;
                        if (kb < from || kb >= to) continue;
                        Scores2x2(q + (long)ra * qStride + head * 64, q + (long)rb * qStride + head * 64, pk + kb, ldk,
                            ps + (long)i * ldk + kb, ps + (long)(rb - r0) * ldk + kb);
                    }
                // Weights over each row's own keys; zeros elsewhere inside its four-row group's key range.
                for (int i = 0; i < rows; i += 4)
                {
                    int m = Math.Min(4, rows - i);
                    int from = int.MaxValue, to = 0;
                    for (int t = i; t < i + m; t++) { from = Math.Min(from, Lo(r0 + t) - klo); to = Math.Max(to, rowLast[r0 + t] - klo + 1); }
                    for (int t = i; t < i + m; t++)
                    {
                        float* srow = ps + (long)t * ldk;
                        int lo = Lo(r0 + t) - klo, hi = rowLast[r0 + t] - klo + 1;
                        inv[t - i] = Normalize(srow + lo, hi - lo);
                        new Span<float>(srow + from, lo - from).Clear();
                        new Span<float>(srow + hi, to - hi).Clear();
                    }
                    float* oi = o + (long)(r0 + i) * stride + head * 64;
                    AttentionTile.MatMul<AttentionVector512>(ps + (long)i * ldk + from, ldk, 1, v + (long)from * 64, 64, oi, stride, m, 64, to - from, accumulate: false);
                    for (int t = 0; t < m; t++)
                    {
                        float* ot = oi + (long)t * stride;
                        var f = Vector512.Create(inv[t]);
                        Vector512.Store(Vector512.Load(ot) * f, ot); Vector512.Store(Vector512.Load(ot + 16) * f, ot + 16);
                        Vector512.Store(Vector512.Load(ot + 32) * f, ot + 32); Vector512.Store(Vector512.Load(ot + 48) * f, ot + 48);
                    }
                }
            }
        }
    }

    /// <summary>First key row r sees (its window's start, else 0).</summary>
    int Lo(int r) => window > 0 ? Math.Max(0, rowPositions[r] - window + 1) : 0;

    /// <summary>
    /// Scores of two query rows (<paramref name="qa"/>, <paramref name="qb"/>, 64 floats each) against 32
    /// keys of Kᵀ (<paramref name="kt"/>: row d holds component d of consecutive keys, stride
    /// <paramref name="ldk"/>) into sa[0..32) and sb[0..32), scaled: per key the canonical sum (see
    /// <see cref="Tree"/>), formed with keys along lanes, so the lane tree is vector adds.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    void Scores2x2(float* qa, float* qb, float* kt, int ldk, float* sa, float* sb)
    {
        Vector512<float> u00 = default, u01 = default, u10 = default, u11 = default;   // (t4_0 + t4_1), rows a/b × key halves 0/1
        Vector512<float> w00 = default, w01 = default, w10 = default, w11 = default;   // t4_2, then (t4_2 + t4_3)
        for (int l = 0; l < 4; l++)
        {
            Partials(qa, qb, kt, ldk, l, out var a00, out var a01, out var a10, out var a11);
            Partials(qa, qb, kt, ldk, l + 8, out var b00, out var b01, out var b10, out var b11);
            a00 += b00; a01 += b01; a10 += b10; a11 += b11;                                  // t8_l
            Partials(qa, qb, kt, ldk, l + 4, out var c00, out var c01, out var c10, out var c11);
            Partials(qa, qb, kt, ldk, l + 12, out b00, out b01, out b10, out b11);
            c00 += b00; c01 += b01; c10 += b10; c11 += b11;                                  // t8_{l+4}
            a00 += c00; a01 += c01; a10 += c10; a11 += c11;                                  // t4_l
            switch (l)
            {
                case 0: u00 = a00; u01 = a01; u10 = a10; u11 = a11; break;
                case 1: u00 += a00; u01 += a01; u10 += a10; u11 += a11; break;
                case 2: w00 = a00; w01 = a01; w10 = a10; w11 = a11; break;
                default: w00 += a00; w01 += a01; w10 += a10; w11 += a11; break;
            }
        }
        var sc = Vector512.Create(scale);
        Vector512.Store((u00 + w00) * sc, sa); Vector512.Store((u01 + w01) * sc, sa + 16);
        Vector512.Store((u10 + w10) * sc, sb); Vector512.Store((u11 + w11) * sc, sb + 16);
    }

    /// <summary>Lane partial <paramref name="l"/> (components l, l+16, l+32, l+48 in one FMA chain) of rows a/b × key halves 0/1.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    static void Partials(float* qa, float* qb, float* kt, int ldk, int l,
        out Vector512<float> p00, out Vector512<float> p01, out Vector512<float> p10, out Vector512<float> p11)
    {
        float* k0 = kt + (long)l * ldk;
        var x0 = Vector512.Load(k0); var x1 = Vector512.Load(k0 + 16);
        var ya = Vector512.Create(qa[l]); var yb = Vector512.Create(qb[l]);
        p00 = ya * x0; p01 = ya * x1; p10 = yb * x0; p11 = yb * x1;
        for (int m = 1; m < 4; m++)
        {
            float* km = kt + (long)(l + 16 * m) * ldk;
            x0 = Vector512.Load(km); x1 = Vector512.Load(km + 16);
            ya = Vector512.Create(qa[l + 16 * m]); yb = Vector512.Create(qb[l + 16 * m]);
            p00 = Vector512.FusedMultiplyAdd(ya, x0, p00); p01 = Vector512.FusedMultiplyAdd(ya, x1, p01);
            p10 = Vector512.FusedMultiplyAdd(yb, x0, p10); p11 = Vector512.FusedMultiplyAdd(yb, x1, p11);
        }
    }
}
