namespace Tessera.Tensors;

/// <summary>
/// Which token rows each expert processes, derived from the top-k expert ids (N·k, row-major
/// (token, slot)). For expert e, <see cref="Rows"/>[e] lists its tokens in ascending order and
/// <see cref="Slots"/>[e] the matching flat (token·k + slot) positions into the (N, k) gates. Pure
/// index bookkeeping: feed Rows to <see cref="Graph.GatherRows"/> and both to
/// <see cref="Graph.ScatterRowsWeighted"/>.
/// </summary>
public sealed class ExpertDispatch
{
    ExpertDispatch(int[][] rows, int[][] slots, int tokens, int k)
    {
        Rows = rows;
        Slots = slots;
        Tokens = tokens;
        K = k;
    }

    /// <summary>Token rows routed to each expert, ascending.</summary>
    public IReadOnlyList<int[]> Rows { get; }

    /// <summary>Flat gate positions (token·k + slot) matching <see cref="Rows"/>.</summary>
    public IReadOnlyList<int[]> Slots { get; }

    /// <summary>Number of tokens N.</summary>
    public int Tokens { get; }

    /// <summary>Experts per token.</summary>
    public int K { get; }

    /// <summary>Groups the top-k ids (N·k) by expert, in token order so downstream scatters are deterministic.</summary>
    public static ExpertDispatch Build(ReadOnlySpan<int> topIds, int k, int experts)
    {
        if (k < 1 || topIds.Length % k != 0)
            throw new ArgumentException($"ExpertDispatch: {topIds.Length} expert ids do not split into rows of k = {k}.");
        var counts = new int[experts];
        for (int i = 0; i < topIds.Length; i++)
        {
            if ((uint)topIds[i] >= (uint)experts)
                throw new ArgumentOutOfRangeException(nameof(topIds), topIds[i], $"ExpertDispatch: expert id {topIds[i]} at {i} is outside [0, {experts}).");
            counts[topIds[i]]++;
        }
        var rows = new int[experts][]; var slots = new int[experts][];
        for (int e = 0; e < experts; e++) { rows[e] = new int[counts[e]]; slots[e] = new int[counts[e]]; }
        var fill = new int[experts];
        for (int i = 0; i < topIds.Length; i++)
        {
            int e = topIds[i];
            rows[e][fill[e]] = i / k;
            slots[e][fill[e]++] = i;
        }
        return new ExpertDispatch(rows, slots, topIds.Length / k, k);
    }
}
