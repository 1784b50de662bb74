namespace Tessera.Inference;

/// <summary>
/// Score and Embed on the fast path: one forward pass of the whole sequence into a cache slot,
/// reading every row's logits (scoring) or final hidden state (embedding). Same definitions as
/// <see cref="ReferenceEngine"/>.
/// </summary>
public static class SequenceReadout
{
    /// <summary>Element i is log p(ids[i] | ids[..i]) with alternatives; element 0 has NaN log-probability.</summary>
    public static IReadOnlyList<TokenEvent> Score(ForwardPass pass, int slot, IReadOnlyList<int> ids, int topLogprobs)
    {
        int T = ids.Count;
        var rows = Rows(slot, ids);
        var outputs = new int[T - 1];
        for (int i = 0; i < outputs.Length; i++) outputs[i] = i;
        pass.Cache.Ensure(slot);
        pass.Run(rows, outputs);
        var result = new TokenEvent[T];
        result[0] = new TokenEvent(ids[0], float.NaN, []);
        for (int i = 1; i < T; i++) result[i] = ReferenceEngine.Describe(pass.Logits(i - 1), ids[i], topLogprobs);
        return result;
    }

    /// <summary>Mean over positions of the final RMS-normalised hidden state, L2-normalised.</summary>
    public static float[] Embed(ForwardPass pass, int slot, IReadOnlyList<int> ids)
    {
        int T = ids.Count, D = pass.Weights.Config.Dim;
        var outputs = new int[T];
        for (int i = 0; i < T; i++) outputs[i] = i;
        pass.Cache.Ensure(slot);
        pass.Run(Rows(slot, ids), outputs, computeLogits: false);
        var e = new float[D];
        for (int t = 0; t < T; t++)
        {
            var h = pass.Hidden(t);
            for (int d = 0; d < D; d++) e[d] += h[d];
        }
        double norm = 0;
        foreach (float v in e) norm += (double)v * v;
        float inv = norm > 0 ? (float)(1 / Math.Sqrt(norm)) : 0f;
        for (int d = 0; d < D; d++) e[d] *= inv;
        return e;
    }

    static TokenRow[] Rows(int slot, IReadOnlyList<int> ids)
    {
        var rows = new TokenRow[ids.Count];
        for (int i = 0; i < rows.Length; i++) rows[i] = new TokenRow(slot, i, ids[i]);
        return rows;
    }
}
