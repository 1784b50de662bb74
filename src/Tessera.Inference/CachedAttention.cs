using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Tessera.Kernels;

namespace Tessera.Inference;

/// <summary>
/// Attention of new query rows against the KV cache: row r (a token of some sequence at position
/// pos) attends to its own sequence's cached positions [lo, pos], lo = 0 or pos − window + 1,
/// with scale 1/√D. The keys and values of the rows themselves are written to the cache before
/// this runs, so one call serves prefill (many rows of one sequence, causal through the
/// positions), decode (one row per sequence) and speculative verification alike. Work is split
/// over (row, kv head) pairs, claimed in chunks by <see cref="DecodeWorkers"/>; the query heads sharing a kv head run back to back, so that head's
/// keys and values come from cache after the first one.
/// </summary>
public sealed unsafe class CachedAttention
{
    readonly int heads, kvHeads, headDim, window, group;
    readonly float scale;
    readonly int positions;
    readonly Action<int, int> body;
    [ThreadStatic] static float[]? scores;   // per thread: (group, positions)

    // The call in flight (set before WorkerPool.For so the cached delegate needs no closure).
    KvCache cache = null!;
    int layer;
    ReadOnlyMemory<TokenRow> rows;
    float* q, o;
    int qStride;

    public CachedAttention(Model.ModelConfig config, int positions)
    {
        heads = config.Heads; kvHeads = config.KvHeads; headDim = config.HeadDim; window = config.SlidingWindow;
        group = heads / kvHeads;
        scale = 1f / MathF.Sqrt(headDim);
        this.positions = positions;
        body = Run;
    }

    /// <summary>
    /// o (rows, H·D) = attention of q over each row's cached history in <paramref name="layerIndex"/>;
    /// row r's H·D queries start at <c>queries + r·queryStride</c> (the q part of a fused q|k|v row).
    /// </summary>
    public void Forward(KvCache kv, int layerIndex, ReadOnlyMemory<TokenRow> tokenRows, float* queries, int queryStride, float* output)
    {
        if (queryStride < heads * headDim) throw new ArgumentException($"CachedAttention: query stride {queryStride} < {heads * headDim}.");
        cache = kv; layer = layerIndex; rows = tokenRows; q = queries; o = output; qStride = queryStride;
        int units = tokenRows.Length * kvHeads;
        long work = 0;
        foreach (var r in tokenRows.Span) work += r.Position + 1;
        var workers = DecodeWorkers.Shared;
        if (work * heads * headDim < 1 << 15) Run(0, units);
        else workers.For(units, 8 * workers.ThreadCount, body);
    }

    void Run(int start, int end)
    {
        var s = scores is { } buffer && buffer.Length >= group * positions ? buffer : scores = new float[group * positions];
        int hd = headDim, stride = heads * headDim;
        var rowSpan = rows.Span;
        for (int u = start; u < end; u++)
        {
            int r = u / kvHeads, g = u % kvHeads;
            var row = rowSpan[r];
            int pos = row.Position;
            int lo = window > 0 ? Math.Max(0, pos - window + 1) : 0, n = pos - lo + 1;
            float* k = cache.Keys(row.Slot, layer, g) + (long)lo * hd;
            float* v = cache.Values(row.Slot, layer, g) + (long)lo * hd;
            for (int h = 0; h < group; h++)
            {
                int head = g * group + h;
                if (hd == 64 && Vector512.IsHardwareAccelerated)
                {
                    Head64(q + (long)r * qStride + head * hd, k, v, n, s.AsSpan(h * n, n), o + (long)r * stride + head * hd);
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

/// <summary>One token row of a forward pass: which sequence slot, at which position, which id.</summary>
public readonly record struct TokenRow(int Slot, int Position, int Token);
