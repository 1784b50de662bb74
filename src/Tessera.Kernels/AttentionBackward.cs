using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Tessera.Kernels.AttentionTile;

namespace Tessera.Kernels;

/// <summary>
/// Backward pass (FlashAttention-2). P is recomputed per tile as exp(s·scale − lse) from the
/// saved lse; D_i = rowsum(dO ⊙ O); dP = dO·Vᵀ; dS = P ⊙ (dP − D_i); dV = Pᵀ·dO,
/// dK = scale·dSᵀ·Q, dQ = scale·dS·K. With a soft-cap, P = exp(cap·t − lse) with t = tanh(s·scale/cap)
/// and dS gains the factor 1 − t².
///
/// Race-freedom and determinism: every output row must be summed by one worker in a fixed
/// order, but dQ sums over keys while dK/dV sum over queries, so no single split owns all
/// three. We run two passes: pass 1 owns (b, kv head, key tile) and accumulates dK, dV over
/// every query head of the group and every visible query tile; pass 2 owns (b, head, query
/// tile) and accumulates dQ over the visible key tiles. Pass 2 recomputes S and dP (7 tile
/// products instead of 5), the price of needing no atomics, no per-thread copies of dQ and no
/// reduction afterwards, with results independent of the thread count.
/// <para>Without a sliding window, pass 1 also stores each dS tile it computes (the recomputation is
/// then skipped): pass 2 reads dS and runs one tile product (dQ += dS·K) instead of three plus the
/// exponentials. The stored values are bit-identical to the recomputed ones (same FMA chains, same
/// elementwise steps; only the operands of each product are swapped, and a·b = b·a exactly), and dQ
/// is summed over keys in the same order, so the results do not change. The store is bounded
/// (<see cref="StoreBudgetFloats"/>): (batch, kv head) pairs are taken in chunks whose dS tiles fit it,
/// each chunk running both passes; a problem whose single pair does not fit uses the recomputing pass 2.</para>
/// <para>When there are enough (batch, kv head) pairs to keep every thread busy, <see cref="FusedPass"/> runs
/// both passes in one: a worker owns a whole pair, so it owns the pair's dQ rows too and adds each dS tile's
/// product as soon as it is formed, in the stored pass 2's order (same bits, no store).</para>
/// </summary>
internal static unsafe class AttentionBackward
{
    const int Br = Attention.TileRows, Bc = Attention.TileCols;
    // Pass 1 walks query tiles from a key tile's start, so with Br = Bc they land on pass 2's tile grid
    // and a stored dS tile is exactly the one pass 2 needs.
    const int TilesMustBeSquare = 1 / (Br == Bc ? 1 : 0);

    /// <summary>Floats of scratch per worker: the larger of the two passes (16-lane sizing).</summary>
    public static long ScratchFloats(int headDim)
    {
        long dp = RoundUp(headDim, 16);
        long keyPass = 2L * headDim * Bc + 2L * Br * Bc + 2L * Bc * dp + 2L * Br * dp;
        long queryPass = 2L * headDim * Br + 2L * Bc * Br + Br * dp + Bc * dp + 2L * Br;
        return Math.Max(keyPass, queryPass);
    }

    public static void Run<V>(AttentionProblem p) where V : struct, IAttentionVector<V>
    {
        int T = p.Seq, D = p.HeadDim;
        long rows = (long)p.Batch * p.Heads * T;
        float* delta = (float*)NativeMemory.AlignedAlloc((nuint)(rows * sizeof(float)), 64);
        try
        {
            // D_i = dO_i · O_i, once per row (both passes need it).
            WorkerPool.Shared.For((int)rows, (worker, start, end) =>
            {
                for (int i = start; i < end; i++)
                {
                    float* dOi = p.DO + (long)i * D, oi = p.O + (long)i * D;
                    float s = 0f;
                    for (int d = 0; d < D; d++) s = MathF.FusedMultiplyAdd(dOi[d], oi[d], s);
                    delta[i] = s;
                }
            });

            nuint bytes = (nuint)(ScratchFloats(D) * sizeof(float));
            int tiles = (T + Br - 1) / Br, keyTiles = (T + Bc - 1) / Bc;
            long pairFloats = PairStoreFloats(p.Group, T);
            int pairs = p.Batch * p.KvHeads;
            if (p.Window == 0 && D % V.Count == 0 && pairs >= FusedMinPairs(WorkerPool.Shared.ThreadCount))
            {
                FusedPass<V>(p, delta, bytes, pairs, keyTiles);
                return;
            }
            if (p.Window > 0 || pairFloats > StoreBudgetFloats)
            {
                KeyPass<V>(p, delta, null, bytes, 0, pairs, keyTiles);
                QueryPass<V>(p, delta, null, bytes, 0, pairs, tiles);
                return;
            }
            int chunk = (int)Math.Min(pairs, StoreBudgetFloats / pairFloats);
            StoredCalls++;
            var store = DsStore.Take(chunk * pairFloats);
            try
            {
                for (int first = 0; first < pairs; first += chunk)
                {
                    int count = Math.Min(chunk, pairs - first);
                    KeyPass<V>(p, delta, store.Floats, bytes, first, count, keyTiles);
                    QueryPass<V>(p, delta, store.Floats, bytes, first, count, tiles);
                }
            }
            finally { DsStore.Return(store); }
        }
        finally { NativeMemory.AlignedFree(delta); }
    }

    /// <summary>
    /// Fewest (batch, kv head) pairs per thread for the fused pass (<see cref="FusedPass"/>): it hands out whole
    /// pairs, so with fewer it would leave threads idle. <c>TESSERA_ATTENTION_FUSED_DQ=0</c> (read once) turns it
    /// off for A/B runs; tests set it to force either path (0: always, <see cref="int.MaxValue"/>: never).
    /// </summary>
    internal static int FusedPairsPerThread = Environment.GetEnvironmentVariable("TESSERA_ATTENTION_FUSED_DQ") == "0" ? int.MaxValue : 4;

    static long FusedMinPairs(int threads) => FusedPairsPerThread == int.MaxValue ? long.MaxValue : (long)FusedPairsPerThread * threads;

    /// <summary>Calls made on this thread that used the fused pass (tests check the path they mean to test was taken).</summary>
    [ThreadStatic] internal static long FusedCalls;

    /// <summary>
    /// Both passes in one, for problems without a window whose head dimension is a multiple of the vector
    /// width: a worker owns a whole (batch, kv head) pair and walks its key tiles in ascending order, so it
    /// owns every dQ row of the group's query heads as well as dK, dV. Each dS tile, as soon as pass 1 has
    /// formed it, is multiplied into dQ (unscaled, in the output itself; scaled once at the end), which is
    /// what the stored pass 2 did later: the same product per tile, the key tiles in the same order, so the
    /// bits are the stored path's (and the recomputing path's). It saves writing and re-reading the dS
    /// store (32 MB per call at the medium preset) and the second pass. Pairs are claimed one at a time,
    /// so a slower thread takes fewer.
    /// </summary>
    static void FusedPass<V>(AttentionProblem p, float* delta, nuint bytes, int pairs, int keyTiles)
        where V : struct, IAttentionVector<V>
    {
        FusedCalls++;
        int group = p.Group, T = p.Seq, D = p.HeadDim;
        WorkerPool.Shared.For(pairs, pairs, (start, end) =>
        {
            float* scratch = GemmScratch.ForCurrentThread.Attention(bytes / sizeof(float));   // the thread's own, kept between pairs
            for (int bg = start; bg < end; bg++)
            {
                int b = bg / p.KvHeads, g = bg % p.KvHeads;
                float* dq0 = p.DQ + p.QueryHead(b, g * group);
                new Span<float>(dq0, group * T * D).Clear();   // the group's query heads are contiguous
                for (int jt = 0; jt < keyTiles; jt++) KeyTile<V>(p, delta, scratch, b, g, jt, null, fusedDq: true);
                float sc = p.Scale;
                ScaleRows<V>(dq0, D, dq0, D, group * T, D, &sc, 0, divide: false);
            }
        });
    }

    /// <summary>
    /// Most floats of stored dS tiles one call keeps (default 64 MB: a chunk of 2–32 (batch, kv head)
    /// pairs at T = 512–1024); <c>TESSERA_ATTENTION_DS_STORE_MB</c> (read once; 0 turns the store off)
    /// sets it for A/B runs. Internal so tests can set 0 and compare with the recomputing path.
    /// </summary>
    internal static long StoreBudgetFloats =
        (long.TryParse(Environment.GetEnvironmentVariable("TESSERA_ATTENTION_DS_STORE_MB"), out long mb) && mb is >= 0 and <= 65536 ? mb : 64) << 18;

    /// <summary>Calls made on this thread that used the dS store (tests check the path they mean to test was taken).</summary>
    [ThreadStatic] internal static long StoredCalls;

    /// <summary>dS floats one (batch, kv head) pair stores: every (query tile, key tile) of each of its query heads.</summary>
    internal static long PairStoreFloats(int group, int seq)
    {
        long tiles = (seq + Br - 1) / Br;
        return group * tiles * tiles * Br * Bc;
    }

    /// <summary>The dS tile (query tile it, key tile jt) of query head hg of the chunk's pair.</summary>
    static float* DsTile(float* store, int group, int tiles, int pairInChunk, int hg, int it, int jt)
        => store + ((((long)pairInChunk * group + hg) * tiles + it) * tiles + jt) * (Br * Bc);

    /// <summary>Pass 1 over (batch, kv head) pairs [first, first + count): dK, dV, and dS into the store when given.</summary>
    static void KeyPass<V>(AttentionProblem p, float* delta, float* store, nuint bytes, int first, int count, int keyTiles)
        where V : struct, IAttentionVector<V>
    {
        WorkerPool.Shared.For(count * keyTiles, (worker, start, end) =>
        {
            float* scratch = (float*)NativeMemory.AlignedAlloc(bytes, 64);
            try
            {
                for (int idx = start; idx < end; idx++)
                {
                    int pair = idx / keyTiles, bg = first + pair;
                    KeyTile<V>(p, delta, scratch, bg / p.KvHeads, bg % p.KvHeads, AttentionProblem.ZigZag(idx % keyTiles, keyTiles),
                        store == null ? null : DsTile(store, p.Group, keyTiles, pair, 0, 0, 0));
                }
            }
            finally { NativeMemory.AlignedFree(scratch); }
        });
    }

    /// <summary>Pass 2 over the query heads of pairs [first, first + count): dQ, from the store when given, else recomputing dS.</summary>
    static void QueryPass<V>(AttentionProblem p, float* delta, float* store, nuint bytes, int first, int count, int tiles)
        where V : struct, IAttentionVector<V>
    {
        int group = p.Group;
        WorkerPool.Shared.For(count * group * tiles, (worker, start, end) =>
        {
            float* scratch = (float*)NativeMemory.AlignedAlloc(bytes, 64);
            try
            {
                for (int idx = start; idx < end; idx++)
                {
                    int ph = idx / tiles, pair = ph / group, hg = ph % group, bg = first + pair;
                    int b = bg / p.KvHeads, h = (bg % p.KvHeads) * group + hg, it = AttentionProblem.ZigZag(idx % tiles, tiles);
                    if (store == null) QueryTile<V>(p, delta, scratch, b, h, it);
                    else QueryTileStored<V>(p, DsTile(store, group, tiles, pair, hg, 0, 0), scratch, tiles, b, h, it);
                }
            }
            finally { NativeMemory.AlignedFree(scratch); }
        });
    }

    /// <summary>
    /// Pass 2 from stored dS: dQ for query rows [i0, i0 + nr) of head h = scale · Σ over visible key
    /// tiles of dS·K_j, the same products in the same order as <see cref="QueryTile"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void QueryTileStored<V>(in AttentionProblem p, float* headStore, float* scratch, int tiles, int b, int h, int it) where V : struct, IAttentionVector<V>
    {
        int w = V.Count, D = p.HeadDim, T = p.Seq;
        int dp = RoundUp(D, w), dpMax = RoundUp(D, 16);
        int i0 = it * Br, nr = Math.Min(Br, T - i0);
        long qOff = p.QueryHead(b, h), kvOff = p.KeyHead(b, h / p.Group);
        float* kh = p.K + kvOff;
        float* dQ = scratch;                // (nr, dp)
        float* kPad = dQ + Br * dpMax;      // (nc, dp)
        new Span<float>(dQ, nr * dp).Clear();
        int jLo = p.FirstKey(i0), jHi = p.LastKey(b, i0 + nr - 1);
        for (int j0 = jLo; j0 <= jHi; j0 += Bc)
        {
            int nc = Math.Min(Bc, jHi + 1 - j0);
            float* kj = kh + (long)j0 * D;
            int ldk = D;
            if (dp != D) { CopyPadded(kj, D, nc, D, kPad, dp); kj = kPad; ldk = dp; }
            float* dS = headStore + ((long)it * tiles + j0 / Bc) * (Br * Bc);
            MatMul<V>(dS, Bc, 1, kj, ldk, dQ, dp, nr, dp, nc, accumulate: true);
        }
        float sc = p.Scale;
        ScaleRows<V>(dQ, dp, p.DQ + qOff + (long)i0 * D, D, nr, D, &sc, 0, divide: false);
    }

    /// <summary>One reusable dS store (native, 64-byte aligned), handed to one call at a time; freed by its finalizer.</summary>
    sealed class DsStore
    {
        static DsStore? cached;
        public readonly float* Floats;
        readonly long count;

        DsStore(long floats)
        {
            count = floats;
            Floats = (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
        }

        /// <summary>The cached store when it is large enough (another call may hold it: then a new one).</summary>
        public static DsStore Take(long floats)
        {
            var s = Interlocked.Exchange(ref cached, null);
            if (s is not null && s.count >= floats) return s;
            s?.Free();
            return new DsStore(floats);
        }

        /// <summary>Keeps <paramref name="s"/> for the next call unless another store is already kept.</summary>
        public static void Return(DsStore s)
        {
            if (Interlocked.CompareExchange(ref cached, s, null) is not null) s.Free();
        }

        bool freed;
        void Free()
        {
            if (freed) return;
            freed = true;
            NativeMemory.AlignedFree(Floats);
            GC.SuppressFinalize(this);
        }

        ~DsStore() => Free();
    }

    /// <summary>
    /// Pass 1: dK, dV for keys [j0, j0 + nc) of kv head g, summed over the group's query heads; with
    /// <paramref name="fusedDq"/> also dS·K_j into the (unscaled) dQ rows (<see cref="FusedPass"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void KeyTile<V>(in AttentionProblem p, float* delta, float* scratch, int b, int g, int jt, float* pairStore, bool fusedDq = false)
        where V : struct, IAttentionVector<V>
    {
        int w = V.Count, D = p.HeadDim, T = p.Seq;
        int dp = RoundUp(D, w), dpMax = RoundUp(D, 16);
        int j0 = jt * Bc, nc = Math.Min(Bc, T - j0), ncp = RoundUp(nc, w);
        float* kT = scratch;                // (D, ncp)  K_jᵀ
        float* vT = kT + D * Bc;            // (D, ncp)  V_jᵀ
        float* s = vT + D * Bc;             // (nr, ncp) P
        float* dS = s + Br * Bc;            // (nr, ncp) dP, then dS
        float* dK = dS + Br * Bc;           // (nc, dp)
        float* dV = dK + Bc * dpMax;        // (nc, dp)
        float* qPad = dV + Bc * dpMax;      // (nr, dp)  Q_i / dO_i padded when D % w ≠ 0
        float* dOPad = qPad + Br * dpMax;

        long kvOff = p.KeyHead(b, g);
        Transpose(p.K + kvOff + (long)j0 * D, D, nc, D, kT, ncp);
        Transpose(p.V + kvOff + (long)j0 * D, D, nc, D, vT, ncp);
        new Span<float>(dK, nc * dp).Clear();
        new Span<float>(dV, nc * dp).Clear();

        var scale = V.Splat(p.Scale);
        bool capped = p.SoftCap > 0;
        var cap = V.Splat(p.SoftCap);
        var capArg = V.Splat(capped ? p.Scale / p.SoftCap : 0f);   // the forward's tanh argument, bit for bit
        var oneV = V.Splat(1f);
        int pre = p.Prefix(b);
        int iLo = j0 < pre ? 0 : j0, iHi = p.LastQuery(j0 + nc - 1);   // keys in the prefix are seen from query 0 on
        for (int h = g * p.Group; h < (g + 1) * p.Group; h++)
        {
            float* qh = p.Q + p.QueryHead(b, h), dOh = p.DO + p.QueryHead(b, h);
            float* lseh = p.Lse + p.RowHead(b, h), deltah = delta + p.RowHead(b, h);
            for (int i0 = iLo; i0 <= iHi; i0 += Br)
            {
                int nr = Math.Min(Br, iHi + 1 - i0);
                float* qi = qh + (long)i0 * D, dOi = dOh + (long)i0 * D;
                MatMul<V>(qi, D, 1, kT, ncp, s, ncp, nr, ncp, D, accumulate: false);
                MatMul<V>(dOi, D, 1, vT, ncp, dS, ncp, nr, ncp, D, accumulate: false);
                for (int r = 0; r < nr; r++)
                {
                    int i = i0 + r;
                    var negLse = V.Splat(-lseh[i]);
                    var di = V.Splat(deltah[i]);
                    float* pr = s + r * ncp, dsr = dS + r * ncp;
                    if (capped)
                        for (int c = 0; c < ncp; c += w)
                        {
                            var t = AttentionExp.Tanh(V.Mul(V.Load(pr + c), capArg));
                            var pv = AttentionExp.Exp(V.Fma(t, cap, negLse));
                            V.Store(pv, pr + c);
                            V.Store(V.Mul(V.Mul(pv, V.Sub(V.Load(dsr + c), di)), V.Fma(V.Sub(default, t), t, oneV)), dsr + c);
                        }
                    else
                        for (int c = 0; c < ncp; c += w)
                        {
                            var pv = AttentionExp.Exp(V.Fma(V.Load(pr + c), scale, negLse));
                            V.Store(pv, pr + c);
                            V.Store(V.Mul(pv, V.Sub(V.Load(dsr + c), di)), dsr + c);
                        }
                    // Query i sees keys j with i − window < j ≤ max(i, prefix − 1); zero P and dS elsewhere.
                    int cLo = p.Window > 0 ? (int)Math.Max(0, (long)i - p.Window + 1 - j0) : 0;
                    int cHi = Math.Min(nc, p.LastKey(b, i) - j0 + 1);
                    for (int c = 0; c < cLo; c++) { pr[c] = 0f; dsr[c] = 0f; }
                    for (int c = Math.Max(cHi, cLo); c < ncp; c++) { pr[c] = 0f; dsr[c] = 0f; }
                }
                if (pairStore != null)
                {
                    // Keep dS (nr × nc) for pass 2: tile (i0/Br, jt) of query head h.
                    int tiles = (T + Br - 1) / Br;
                    float* dst = DsTile(pairStore, p.Group, tiles, 0, h - g * p.Group, i0 / Br, jt);
                    for (int r = 0; r < nr; r++)
                        new ReadOnlySpan<float>(dS + r * ncp, nc).CopyTo(new Span<float>(dst + r * Bc, nc));
                }
                if (fusedDq)
                {
                    // dQ rows of this query tile (unscaled) += dS (nr × nc) · K_j; dp == D on this path.
                    MatMulQueryRows<V>(p, b, i0, j0, dS, ncp, 1, p.K + kvOff + (long)j0 * D, D, p.DQ + p.QueryHead(b, h) + (long)i0 * D, D, nr, D, nc);
                }
                int ld = D;
                if (dp != D)
                {
                    CopyPadded(qi, D, nr, D, qPad, dp); qi = qPad;
                    CopyPadded(dOi, D, nr, D, dOPad, dp); dOi = dOPad;
                    ld = dp;
                }
                // dV (nc×dp) += Pᵀ·dO_i and dK += dSᵀ·Q_i, reading P and dS through transposed strides.
                MatMulKeyRows<V>(p, b, i0, j0, s, 1, ncp, dOi, ld, dV, dp, nc, dp, nr);
                MatMulKeyRows<V>(p, b, i0, j0, dS, 1, ncp, qi, ld, dK, dp, nc, dp, nr);
            }
        }

        float* dkOut = p.DK + kvOff + (long)j0 * D, dvOut = p.DV + kvOff + (long)j0 * D;
        float one = 1f, sc = p.Scale;
        ScaleRows<V>(dK, dp, dkOut, D, nc, D, &sc, 0, divide: false);
        ScaleRows<V>(dV, dp, dvOut, D, nc, D, &one, 0, divide: false);
    }

    /// <summary>Pass 2: dQ for query rows [i0, i0 + nr) of head h, summed over the visible key tiles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void QueryTile<V>(in AttentionProblem p, float* delta, float* scratch, int b, int h, int it) where V : struct, IAttentionVector<V>
    {
        int w = V.Count, D = p.HeadDim, T = p.Seq;
        int dp = RoundUp(D, w), dpMax = RoundUp(D, 16);
        int i0 = it * Br, nr = Math.Min(Br, T - i0), nrp = RoundUp(nr, w);
        float* qT = scratch;                // (D, nrp)  Q_iᵀ
        float* dOT = qT + D * Br;           // (D, nrp)  dO_iᵀ
        float* sT = dOT + D * Br;           // (nc, nrp) scores Sᵀ
        float* dST = sT + Bc * Br;          // (nc, nrp) dPᵀ, then dSᵀ
        float* dQ = dST + Bc * Br;          // (nr, dp)
        float* kPad = dQ + Br * dpMax;      // (nc, dp)
        float* negLse = kPad + Bc * dpMax, di = negLse + Br;

        long qOff = p.QueryHead(b, h), kvOff = p.KeyHead(b, h / p.Group);
        float* kh = p.K + kvOff, vh = p.V + kvOff;
        Transpose(p.Q + qOff + (long)i0 * D, D, nr, D, qT, nrp);
        Transpose(p.DO + qOff + (long)i0 * D, D, nr, D, dOT, nrp);
        float* lseh = p.Lse + p.RowHead(b, h) + i0, deltah = delta + p.RowHead(b, h) + i0;
        for (int r = 0; r < nrp; r++)
        {
            negLse[r] = r < nr ? -lseh[r] : 0f;
            di[r] = r < nr ? deltah[r] : 0f;
        }
        new Span<float>(dQ, nr * dp).Clear();

        var scale = V.Splat(p.Scale);
        bool capped = p.SoftCap > 0;
        var cap = V.Splat(p.SoftCap);
        var capArg = V.Splat(capped ? p.Scale / p.SoftCap : 0f);
        var oneV = V.Splat(1f);
        int pre = p.Prefix(b);
        int jLo = p.FirstKey(i0), jHi = p.LastKey(b, i0 + nr - 1);
        for (int j0 = jLo; j0 <= jHi; j0 += Bc)
        {
            int nc = Math.Min(Bc, jHi + 1 - j0);
            float* kj = kh + (long)j0 * D;
            MatMul<V>(kj, D, 1, qT, nrp, sT, nrp, nc, nrp, D, accumulate: false);
            MatMul<V>(vh + (long)j0 * D, D, 1, dOT, nrp, dST, nrp, nc, nrp, D, accumulate: false);
            for (int c = 0; c < nc; c++)
            {
                float* sr = sT + c * nrp, dsr = dST + c * nrp;
                if (capped)
                    for (int r = 0; r < nrp; r += w)
                    {
                        var t = AttentionExp.Tanh(V.Mul(V.Load(sr + r), capArg));
                        var pv = AttentionExp.Exp(V.Fma(t, cap, V.Load(negLse + r)));
                        V.Store(V.Mul(V.Mul(pv, V.Sub(V.Load(dsr + r), V.Load(di + r))), V.Fma(V.Sub(default, t), t, oneV)), dsr + r);
                    }
                else
                    for (int r = 0; r < nrp; r += w)
                    {
                        var pv = AttentionExp.Exp(V.Fma(V.Load(sr + r), scale, V.Load(negLse + r)));
                        V.Store(V.Mul(pv, V.Sub(V.Load(dsr + r), V.Load(di + r))), dsr + r);
                    }
                int j = j0 + c;
                int rLo = j < pre ? 0 : Math.Max(0, j - i0);
                int rHi = p.Window > 0 ? (int)Math.Min(nrp, (long)j + p.Window - i0) : nrp;
                for (int r = 0; r < rLo; r++) dsr[r] = 0f;
                for (int r = Math.Max(rHi, rLo); r < nrp; r++) dsr[r] = 0f;
            }
            int ldk = D;
            if (dp != D) { CopyPadded(kj, D, nc, D, kPad, dp); kj = kPad; ldk = dp; }
            // dQ (nr×dp) += dS (nr×nc) · K_j, dS read from dSᵀ: dS(r, c) = dST[c·nrp + r].
            MatMul<V>(dST, 1, nrp, kj, ldk, dQ, dp, nr, dp, nc, accumulate: true);
        }

        float sc = p.Scale;
        ScaleRows<V>(dQ, dp, p.DQ + qOff + (long)i0 * D, D, nr, D, &sc, 0, divide: false);
    }
}
