using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Tessera.Kernels.AttentionTile;

namespace Tessera.Kernels;

/// <summary>
/// Forward pass. One work item is (b, h, query tile of Br rows). It streams the key/value tiles
/// the mask leaves visible and keeps, per query row, the running max m, the running sum
/// l = Σ exp(s − m) and an unnormalised output accumulator; when a tile raises the max, l and the
/// accumulator are rescaled by exp(m_old − m_new) (online softmax). At the end o = acc / l and
/// lse = m + log l.
///
/// The score tile is formed transposed, Sᵀ (keys × queries) = K_j·Q_iᵀ: Q_iᵀ is transposed once
/// per work item (not once per key tile, as Kᵀ would be), K rows are read in place, and the
/// softmax statistics then run down columns, i.e. lane-wise across queries with no horizontal
/// reductions. P·V reads Sᵀ through transposed strides.
/// </summary>
internal static unsafe class AttentionForward
{
    const int Br = Attention.TileRows, Bc = Attention.TileCols;

    /// <summary>Floats of scratch per worker (sized for the widest vector, 16 lanes).</summary>
    public static long ScratchFloats(int headDim)
    {
        long dp = RoundUp(headDim, 16);
        return (long)headDim * Br + (long)Bc * Br + Br * dp + Bc * dp + 4L * Br;
    }

    public static void Run<V>(AttentionProblem p) where V : struct, IAttentionVector<V>
    {
        int tiles = (p.Seq + Br - 1) / Br;
        int items = p.Batch * p.Heads * tiles;
        nuint floats = (nuint)ScratchFloats(p.HeadDim);
        // Chunks of two items (with an even tile count, a cheap and a dear tile of the zig-zag order: equal
        // work) claimed one at a time, so a thread the host slows down takes fewer (the GEMM's dynamic split).
        // Each thread's tile buffers are its own, kept between chunks and calls.
        WorkerPool.Shared.For(items, (items + 1) / 2, (start, end) =>
        {
            float* scratch = GemmScratch.ForCurrentThread.Attention(floats);
            for (int idx = start; idx < end; idx++)
            {
                int bh = idx / tiles;
                Tile<V>(p, scratch, bh / p.Heads, bh % p.Heads, AttentionProblem.ZigZag(idx % tiles, tiles));
            }
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile<V>(in AttentionProblem p, float* scratch, int b, int h, int it) where V : struct, IAttentionVector<V>
    {
        int w = V.Count, D = p.HeadDim, T = p.Seq;
        int dp = RoundUp(D, w), dpMax = RoundUp(D, 16);
        int i0 = it * Br, nr = Math.Min(Br, T - i0), nrp = RoundUp(nr, w);
        float* qT = scratch;               // (D, nrp)   Q_iᵀ, zero-padded columns
        float* sT = qT + D * Br;           // (nc, nrp)  scores, then probabilities
        float* acc = sT + Bc * Br;         // (nr, dp)   unnormalised output
        float* vPad = acc + Br * dpMax;    // (nc, dp)   V_j padded to the vector width when D % w ≠ 0
        float* m = vPad + Bc * dpMax, l = m + Br, alpha = l + Br;
        float* lanes = alpha + Br;         // 0, 1, …, Br − 1 as floats: the row index of each lane

        float* qh = p.Q + p.QueryHead(b, h);
        long kvOff = p.KeyHead(b, h / p.Group);
        float* kh = p.K + kvOff, vh = p.V + kvOff;

        Transpose(qh + (long)i0 * D, D, nr, D, qT, nrp);
        for (int r = 0; r < nrp; r++) { m[r] = float.NegativeInfinity; l[r] = 0f; lanes[r] = r; }
        new Span<float>(acc, nr * dp).Clear();

        var scale = V.Splat(p.Scale);
        bool capped = p.SoftCap > 0;
        var cap = V.Splat(p.SoftCap);
        var capArg = V.Splat(capped ? p.Scale / p.SoftCap : 0f);   // tanh's argument s·scale/cap as one product
        int pre = p.Prefix(b);
        int jLo = p.FirstKey(i0), jHi = p.LastKey(b, i0 + nr - 1);
        for (int j0 = jLo; j0 <= jHi; j0 += Bc)
        {
            int nc = Math.Min(Bc, jHi + 1 - j0);
            MatMul<V>(kh + (long)j0 * D, D, 1, qT, nrp, sT, nrp, nc, nrp, D, accumulate: false);

            // Mask: key j is visible to queries i0 + r with j ≤ i < j + window, and to every query
            // when j lies in the bidirectional prefix. For scale > 0 the
            // scale is folded into the exponent below (max(s·scale) = scale·max s); otherwise the
            // tile is scaled first, since a non-positive scale reverses or flattens the order. A
            // soft-cap replaces s by cap·tanh(s·scale/cap) first, which leaves nothing to fold.
            bool folded = p.Scale > 0 && !capped;
            for (int c = 0; c < nc; c++)
            {
                float* row = sT + c * nrp;
                if (capped)
                    for (int g = 0; g < nrp; g += w)
                        V.Store(V.Mul(cap, AttentionExp.Tanh(V.Mul(V.Load(row + g), capArg))), row + g);
                else if (!folded) for (int g = 0; g < nrp; g += w) V.Store(V.Mul(V.Load(row + g), scale), row + g);
                int j = j0 + c;
                int rLo = j < pre ? 0 : Math.Max(0, j - i0);
                int rHi = p.Window > 0 ? (int)Math.Min(nrp, (long)j + p.Window - i0) : nrp;
                if (rLo == 0 && rHi >= nrp) continue;
                // Whole vectors, one blend each (scalar stores here were followed by vector loads of the same
                // lines in the softmax below, which cannot be forwarded from them).
                var lo = V.Splat(rLo);
                var hi = V.Splat(Math.Max(rHi, rLo));
                for (int g = 0; g < nrp; g += w)
                    if (g < rLo || g + w > rHi)
                        V.Store(V.NegativeInfinityOutside(V.Load(row + g), V.Load(lanes + g), lo, hi), row + g);
            }
            var expScale = folded ? scale : V.Splat(1f);

            // Online softmax down each column (one query per lane); m is kept in scaled units.
            for (int g = 0; g < nrp; g += w)
            {
                var mOld = V.Load(m + g);
                // Two independent chains (max is exact, so the order does not change the result).
                var rawMax = V.Load(sT + g);
                var rawMax2 = rawMax;
                int c2 = 1;
                for (; c2 + 1 < nc; c2 += 2)
                {
                    rawMax = V.Max(rawMax, V.Load(sT + c2 * nrp + g));
                    rawMax2 = V.Max(rawMax2, V.Load(sT + (c2 + 1) * nrp + g));
                }
                if (c2 < nc) rawMax = V.Max(rawMax, V.Load(sT + c2 * nrp + g));
                rawMax = V.Max(rawMax, rawMax2);
                var mNew = V.Max(mOld, V.Mul(rawMax, expScale));
                // A query that has seen no visible key yet keeps m = −∞; subtracting 0 instead
                // avoids −∞ − (−∞) = NaN and still gives exp(−∞) = 0 for its masked scores.
                var negRef = V.Sub(default, V.NegativeInfinityToZero(mNew));
                var sum = default(V);
                for (int c = 0; c < nc; c++)
                {
                    var e = AttentionExp.Exp(V.Fma(V.Load(sT + c * nrp + g), expScale, negRef));
                    V.Store(e, sT + c * nrp + g);
                    sum = V.Add(sum, e);
                }
                var a = AttentionExp.Exp(V.Add(mOld, negRef));
                V.Store(V.Fma(V.Load(l + g), a, sum), l + g);
                V.Store(mNew, m + g);
                V.Store(a, alpha + g);
            }

            if (j0 != jLo)
                for (int r = 0; r < nr; r++)
                {
                    var a = V.Splat(alpha[r]);
                    float* accRow = acc + r * dp;
                    for (int d = 0; d < dp; d += w) V.Store(V.Mul(V.Load(accRow + d), a), accRow + d);
                }

            float* vj = vh + (long)j0 * D;
            int ldv = D;
            if (dp != D) { CopyPadded(vj, D, nc, D, vPad, dp); vj = vPad; ldv = dp; }
            // acc (nr×dp) += P (nr×nc) · V_j (nc×dp), P read from Sᵀ: P(r, c) = sT[c·nrp + r].
            MatMulQueryRows<V>(p, b, i0, j0, sT, 1, nrp, vj, ldv, acc, dp, nr, dp, nc);
        }

        float* oh = p.O + p.QueryHead(b, h) + (long)i0 * D;
        float* lseh = p.Lse + p.RowHead(b, h) + i0;
        ScaleRows<V>(acc, dp, oh, D, nr, D, l, 1, divide: true);  // o = acc / l
        for (int r = 0; r < nr; r++) lseh[r] = m[r] + MathF.Log(l[r]);
    }
}
