using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tessera.Kernels.Reference;

[assembly: InternalsVisibleTo("Tessera.Kernels.Tests")]

namespace Tessera.Kernels;

/// <summary>
/// Tiled (FlashAttention-2 style) causal attention, forward and backward. Same contract as
/// <see cref="ScalarAttention"/>: q, o (B, Hq, T, D); k, v (B, Hkv, T, D); query head h reads
/// key/value head h / (Hq / Hkv); with <c>window</c> &gt; 0 query i sees keys j with
/// i − window &lt; j ≤ i, with 0 all j ≤ i. With <c>softCap</c> &gt; 0 each score s = q·k·scale is
/// replaced by softCap·tanh(s / softCap) before the mask and softmax (Gemma 2), and the backward
/// multiplies dS by 1 − tanh². lse (B, Hq, T) is written by forward and read by
/// backward. No T×T matrix is ever formed: each worker holds a few tile-sized buffers
/// (see <see cref="ForwardScratchBytes"/>), so memory is linear in T. Tiles that the causal mask
/// or the window hide completely are never visited. Work is split over (batch, head, tile)
/// (forward: pairs of tiles claimed one at a time; backward: whole (batch, kv head) pairs, or tiles) on
/// <see cref="WorkerPool.Shared"/>, and every output tile is computed by one worker in a fixed order,
/// so results are bit-identical for any thread count.
/// </summary>
public static unsafe class Attention
{
    /// <summary>
    /// Query rows per tile (Br) and keys per tile (Bc). At D = 64 a worker's tiles
    /// (Qᵀ, Sᵀ, O accumulator: 3 × 16 KiB) sit in Zen 4's 1 MiB L2 and the K/V rows streamed per
    /// key tile (2 × 16 KiB) in L1; 64 also keeps Br a multiple of both vector widths.
    /// </summary>
    internal const int TileRows = 64, TileCols = 64;

    /// <summary>
    /// o = softmax(cap(q·kᵀ·scale) + causal/window mask)·v per head, cap(s) = softCap·tanh(s/softCap)
    /// when <paramref name="softCap"/> &gt; 0 and the identity when 0; lse keeps each row's log-sum-exp.
    /// <paramref name="prefix"/> (empty, or one length per batch row) makes the first prefix[b]
    /// positions of row b a bidirectional block (prefix-LM): query i sees key j when j ≤ i or j &lt; prefix[b].
    /// </summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        int batch, int heads, int kvHeads, int seq, int headDim, float scale, int window = 0, float softCap = 0f, ReadOnlySpan<int> prefix = default)
    {
        if (Vector512.IsHardwareAccelerated) Forward<AttentionVector512>(q, k, v, o, lse, batch, heads, kvHeads, seq, headDim, scale, window, softCap, prefix);
        else Forward<AttentionVector256>(q, k, v, o, lse, batch, heads, kvHeads, seq, headDim, scale, window, softCap, prefix);
    }

    /// <summary>
    /// Gradients of <see cref="Forward"/> given dO, the saved o and lse; dq, dk, dv are overwritten.
    /// P is recomputed tile by tile from q, k and lse.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> o, ReadOnlySpan<float> lse, ReadOnlySpan<float> dO,
        Span<float> dq, Span<float> dk, Span<float> dv, int batch, int heads, int kvHeads, int seq, int headDim, float scale, int window = 0,
        float softCap = 0f, ReadOnlySpan<int> prefix = default)
    {
        if (Vector512.IsHardwareAccelerated) Backward<AttentionVector512>(q, k, v, o, lse, dO, dq, dk, dv, batch, heads, kvHeads, seq, headDim, scale, window, softCap, prefix);
        else Backward<AttentionVector256>(q, k, v, o, lse, dO, dq, dk, dv, batch, heads, kvHeads, seq, headDim, scale, window, softCap, prefix);
    }

    /// <summary>Bytes of scratch one <see cref="Forward"/> call allocates (all workers together).</summary>
    public static long ForwardScratchBytes(int headDim)
        => (long)WorkerPool.Shared.ThreadCount * AttentionForward.ScratchFloats(headDim) * sizeof(float);

    /// <summary>Bytes of scratch one <see cref="Backward"/> call allocates (all workers, the (B, Hq, T) row terms D_i,
    /// and at most the store budget for dS tiles, which is kept between calls).</summary>
    public static long BackwardScratchBytes(int batch, int heads, int seq, int headDim)
        => ((long)WorkerPool.Shared.ThreadCount * AttentionBackward.ScratchFloats(headDim) + (long)batch * heads * seq
            + Math.Min(AttentionBackward.StoreBudgetFloats, (long)batch * AttentionBackward.PairStoreFloats(heads, seq))) * sizeof(float);

    /// <summary>Forward at a chosen vector width (tests run both widths on any machine).</summary>
    internal static void Forward<V>(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        int batch, int heads, int kvHeads, int seq, int headDim, float scale, int window, float softCap = 0f, ReadOnlySpan<int> prefix = default)
        where V : struct, IAttentionVector<V>
    {
        AttentionChecks.Check(q.Length, k.Length, v.Length, o.Length, lse.Length, batch, heads, kvHeads, seq, headDim, window);
        AttentionChecks.SoftCap(softCap);
        AttentionChecks.Prefix(prefix, batch, seq);
        if (batch == 0 || seq == 0) return;
        fixed (float* pq = q, pk = k, pv = v, po = o, pl = lse)
        fixed (int* pp = prefix)
        {
            var p = new AttentionProblem(pq, pk, pv, po, pl, null, null, null, null, batch, heads, kvHeads, seq, headDim, scale, window, softCap, pp);
            AttentionForward.Run<V>(p);
        }
    }

    /// <summary>Backward at a chosen vector width.</summary>
    internal static void Backward<V>(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> o, ReadOnlySpan<float> lse, ReadOnlySpan<float> dO,
        Span<float> dq, Span<float> dk, Span<float> dv, int batch, int heads, int kvHeads, int seq, int headDim, float scale, int window,
        float softCap = 0f, ReadOnlySpan<int> prefix = default)
        where V : struct, IAttentionVector<V>
    {
        AttentionChecks.Check(q.Length, k.Length, v.Length, o.Length, lse.Length, batch, heads, kvHeads, seq, headDim, window);
        AttentionChecks.SoftCap(softCap);
        AttentionChecks.Prefix(prefix, batch, seq);
        long qn = (long)batch * heads * seq * headDim, kn = (long)batch * kvHeads * seq * headDim;
        if (dO.Length < qn || dq.Length < qn)
            throw new ArgumentException($"Attention: dO/dq need (B={batch}, H={heads}, T={seq}, D={headDim}) = {qn} floats, got dO={dO.Length}, dq={dq.Length}.");
        if (dk.Length < kn || dv.Length < kn)
            throw new ArgumentException($"Attention: dk/dv need (B={batch}, Hkv={kvHeads}, T={seq}, D={headDim}) = {kn} floats, got dk={dk.Length}, dv={dv.Length}.");
        if (batch == 0 || seq == 0) return;
        fixed (float* pq = q, pk = k, pv = v, po = o, pl = lse, pdo = dO, pdq = dq, pdk = dk, pdv = dv)
        fixed (int* pp = prefix)
        {
            var p = new AttentionProblem(pq, pk, pv, po, pl, pdo, pdq, pdk, pdv, batch, heads, kvHeads, seq, headDim, scale, window, softCap, pp);
            AttentionBackward.Run<V>(p);
        }
    }
}

/// <summary>Pointers and sizes of one attention call, with the index arithmetic both passes share.</summary>
internal readonly unsafe struct AttentionProblem(float* q, float* k, float* v, float* o, float* lse,
    float* dO, float* dq, float* dk, float* dv,
    int batch, int heads, int kvHeads, int seq, int headDim, float scale, int window, float softCap, int* prefix)
{
    /// <summary>Per batch row, the length of the bidirectional prefix (null: none anywhere).</summary>
    readonly int* prefix = prefix;

    public readonly float* Q = q, K = k, V = v, O = o, Lse = lse, DO = dO, DQ = dq, DK = dk, DV = dv;
    public readonly int Batch = batch, Heads = heads, KvHeads = kvHeads, Seq = seq, HeadDim = headDim, Window = window;
    public readonly float Scale = scale;
    /// <summary>Logit soft-cap (0: none).</summary>
    public readonly float SoftCap = softCap;

    /// <summary>Query heads per key/value head.</summary>
    public int Group => Heads / KvHeads;

    /// <summary>Offset of row 0 of query head h in batch b (q, o, dO, dq).</summary>
    public long QueryHead(int b, int h) => ((long)b * Heads + h) * Seq * HeadDim;

    /// <summary>Offset of row 0 of key/value head g in batch b (k, v, dk, dv).</summary>
    public long KeyHead(int b, int g) => ((long)b * KvHeads + g) * Seq * HeadDim;

    /// <summary>Offset of query head h's row terms (lse, D_i).</summary>
    public long RowHead(int b, int h) => ((long)b * Heads + h) * Seq;

    /// <summary>Length of batch row b's bidirectional prefix (0: fully causal).</summary>
    public int Prefix(int b) => prefix == null ? 0 : prefix[b];

    /// <summary>Last key any query in [i0, i1] of batch row b can see: i1, or the end of the prefix when that lies further.</summary>
    public int LastKey(int b, int i1) => Math.Max(i1, Prefix(b) - 1);

    /// <summary>First key any query in [i0, …] can see.</summary>
    public int FirstKey(int i0) => Window > 0 ? Math.Max(0, i0 - Window + 1) : 0;

    /// <summary>Last query that can see key j1.</summary>
    public int LastQuery(int j1) => Window > 0 ? (int)Math.Min(Seq - 1L, (long)j1 + Window - 1) : Seq - 1;

    /// <summary>
    /// Tile order within one head: 0, n−1, 1, n−2, … Under causality tile t costs ∝ t (or n−t),
    /// so pairing cheap with dear tiles lets the pool's contiguous static split balance even
    /// when B·H is smaller than the thread count.
    /// </summary>
    public static int ZigZag(int r, int n) => (r & 1) == 0 ? r >> 1 : n - 1 - (r >> 1);
}
