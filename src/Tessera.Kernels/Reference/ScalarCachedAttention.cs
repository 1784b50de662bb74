namespace Tessera.Kernels.Reference;

/// <summary>
/// Scalar twin of <see cref="CachedAttention"/>, in double: for each row r (slot, position pos) and
/// query head h, scores s_j = scale·q·k_j over the slot's cached positions j ∈ [lo, last] of kv head
/// h / (H / Hkv) (lo = pos − window + 1 with a window, else 0; last = max(pos, PrefixEnd − 1)), s_j ← cap·tanh(s_j/cap) when a
/// soft-cap is set, then o = Σ softmax(s)_j·v_j.
/// </summary>
public static unsafe class ScalarCachedAttention
{
    /// <summary>
    /// output (rows, H·D) from queries (row r's H·D queries at <c>r·queryStride</c>) and the cache's
    /// layer <paramref name="layer"/>.
    /// </summary>
    public static void Forward<TRow>(KvCacheView cache, int layer, ReadOnlySpan<TRow> rows, ReadOnlySpan<float> queries, int queryStride,
        Span<float> output, int heads, int kvHeads, int headDim, int window, float scale, float softCap) where TRow : struct, ICachedRow
    {
        CachedAttention.Check(cache, layer, heads, kvHeads, headDim, queryStride, window, softCap);
        int group = heads / kvHeads, D = headDim;
        for (int r = 0; r < rows.Length; r++)
        {
            int pos = rows[r].Position, lo = window > 0 ? Math.Max(0, pos - window + 1) : 0;
            int last = Math.Max(pos, rows[r].PrefixEnd - 1);
            var s = new double[last - lo + 1];
            for (int h = 0; h < heads; h++)
            {
                float* k = cache.Keys(rows[r].Slot, layer, h / group), v = cache.Values(rows[r].Slot, layer, h / group);
                int qo = r * queryStride + h * D;
                double max = double.NegativeInfinity;
                for (int j = lo; j <= last; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < D; d++) dot += (double)queries[qo + d] * k[(long)j * D + d];
                    double x = dot * scale;
                    if (softCap > 0) x = softCap * Math.Tanh(x / softCap);
                    s[j - lo] = x;
                    max = Math.Max(max, x);
                }
                double sum = 0;
                for (int j = 0; j < s.Length; j++) { s[j] = Math.Exp(s[j] - max); sum += s[j]; }
                for (int d = 0; d < D; d++)
                {
                    double acc = 0;
                    for (int j = lo; j <= last; j++) acc += s[j - lo] * v[(long)j * D + d];
                    output[r * heads * D + h * D + d] = (float)(acc / sum);
                }
            }
        }
    }
}
