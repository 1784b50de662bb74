using System.Numerics.Tensors;

namespace Tessera.Tensors;

/// <summary>The mixture-of-experts combine: every expert's output rows, weighted by their gates, summed per token.</summary>
public sealed partial class Graph
{
    /// <summary>
    /// y (N, D) with y[t] = Σ over token t's kept assignments, in ascending expert order, of
    /// gates[slot]·outputs[e][i], where outputs[e] (Mₑ, D) holds expert e's results for the first Mₑ
    /// tokens of <paramref name="plan"/>.Rows[e] (Mₑ below the full count when capacity dropped
    /// some) and slot = plan.Slots[e][i] indexes the flat (N, k) <paramref name="gates"/>. A token
    /// with no kept assignment gets a zero row. One op instead of an (N, D) scatter plus an add per
    /// expert; the sums are the same, in the same order. Backward: doutputs[e][i] = gate·dy[t],
    /// dgates[slot] += dy[t]·outputs[e][i] (in double). Runs in parallel over tokens.
    /// </summary>
    public Tensor CombineExperts(IReadOnlyList<Tensor> outputs, Tensor gates, ExpertDispatch plan)
    {
        const string op = "CombineExperts";
        ArgumentNullException.ThrowIfNull(outputs, op);
        ArgumentNullException.ThrowIfNull(plan, op);
        Usable(op, gates);
        int n = plan.Tokens, k = plan.K;
        if (outputs.Count != plan.Rows.Count || outputs.Count == 0)
            throw new ArgumentException($"{op}: {outputs.Count} expert outputs for a plan over {plan.Rows.Count} experts.");
        if (gates.Length != n * k)
            throw new ArgumentException($"{op}: gates {Describe(gates)} must hold N·k = {n}·{k} values.");
        int d = outputs[0].Rank == 2 ? outputs[0].Dim(1) : -1;
        var inputs = new Tensor[outputs.Count + 1];
        for (int e = 0; e < outputs.Count; e++)
        {
            var o = outputs[e];
            Usable(op, o);
            if (o.Rank != 2 || o.Dim(1) != d || o.Dim(0) > plan.Rows[e].Length)
                throw new ArgumentException($"{op}: output of expert {e} {Describe(o)} must be (Mₑ ≤ {plan.Rows[e].Length}, {d}).");
            inputs[e] = o;
        }
        inputs[^1] = gates;

        // Per token, its kept (expert, row) pairs in ascending expert order.
        var count = new int[n];
        var entryExpert = new int[n * k]; var entryRow = new int[n * k]; var entrySlot = new int[n * k];
        for (int e = 0; e < outputs.Count; e++)
        {
            var rows = plan.Rows[e]; var slots = plan.Slots[e];
            for (int i = 0; i < outputs[e].Dim(0); i++)
            {
                int t = rows[i], c = t * k + count[t]++;
                entryExpert[c] = e; entryRow[c] = i; entrySlot[c] = slots[i];
            }
        }

        var y = NewOutput(op, [n, d], false, inputs);
        var src = new Tensor[outputs.Count];
        for (int e = 0; e < src.Length; e++) src[e] = outputs[e];
        ForTokens(n, (long)n * k * d, (start, end) =>
        {
            var ys = y.AsSpan(op); var w = gates.AsSpan(op);
            for (int t = start; t < end; t++)
            {
                var row = ys.Slice(t * d, d);
                if (count[t] == 0) { row.Clear(); continue; }
                for (int c = t * k; c < t * k + count[t]; c++)
                {
                    var s = src[entryExpert[c]].AsSpan(op).Slice(entryRow[c] * d, d);
                    if (c == t * k) TensorPrimitives.Multiply(s, w[entrySlot[c]], row);
                    else TensorPrimitives.MultiplyAdd(s, w[entrySlot[c]], row, row);
                }
            }
        });
        Record(op, y, inputs, () =>
        {
            // Each (expert, row) belongs to exactly one token, so the per-token split writes disjoint rows.
            var add = new bool[src.Length];
            for (int e = 0; e < src.Length; e++)
                if (src[e].RequiresGrad) GradTarget(src[e], out add[e]);
            if (gates.RequiresGrad) GradSpan(gates);
            ForTokens(n, 2L * n * k * d, (start, end) =>
            {
                var dy = y.Grad!.AsSpan(op); var w = gates.AsSpan(op);
                for (int t = start; t < end; t++)
                {
                    var g = dy.Slice(t * d, d);
                    for (int c = t * k; c < t * k + count[t]; c++)
                    {
                        var o = src[entryExpert[c]];
                        int at = entryRow[c] * d;
                        if (o.RequiresGrad)
                        {
                            var ds = o.Grad!.AsSpan(op).Slice(at, d);
                            if (add[entryExpert[c]]) TensorPrimitives.MultiplyAdd(g, w[entrySlot[c]], ds, ds);
                            else TensorPrimitives.Multiply(g, w[entrySlot[c]], ds);
                        }
                        if (gates.RequiresGrad)
                        {
                            gates.Grad!.AsSpan(op)[entrySlot[c]] += (float)Kernels.DoubleSums.Dot(g, o.AsSpan(op).Slice(at, d));
                        }
                    }
                }
            });
        });
        return y;
    }

    /// <summary>Splits [0, n) statically over the shared pool when the work is worth a hand-off.</summary>
    static void ForTokens(int n, long work, Action<int, int> body)
    {
        if (n == 0) return;
        if (work < 1 << 16) { body(0, n); return; }
        Kernels.WorkerPool.Shared.For(n, (_, start, end) => body(start, end));
    }
}
