using Tessera.Tensors;

namespace Tessera.Model;

/// <summary>
/// One MoE layer's routing in one forward pass. <see cref="Assigned"/>[e] counts the (token, slot)
/// assignments the router made to expert e; <see cref="Kept"/>[e] those it processed after the
/// capacity limit. Dropped assignments contribute zero (the token's residual passes through).
/// </summary>
public sealed record ExpertLoad(int Layer, int Tokens, int[] Assigned, int[] Kept, int Capacity)
{
    /// <summary>Assignments dropped by the capacity limit (0 when dropless).</summary>
    public int Dropped
    {
        get { int d = 0; for (int e = 0; e < Assigned.Length; e++) d += Assigned[e] - Kept[e]; return d; }
    }

    /// <summary>True when no capacity limit applied.</summary>
    public bool Dropless => Capacity == 0;

    /// <summary>Sums two passes over the same layer (e.g. micro-batches of one step).</summary>
    public ExpertLoad Plus(ExpertLoad other)
    {
        if (other.Layer != Layer || other.Assigned.Length != Assigned.Length)
            throw new ArgumentException($"ExpertLoad.Plus: layer {other.Layer} with {other.Assigned.Length} experts cannot be added to layer {Layer} with {Assigned.Length}.");
        var a = new int[Assigned.Length]; var k = new int[Kept.Length];
        for (int e = 0; e < a.Length; e++) { a[e] = Assigned[e] + other.Assigned[e]; k[e] = Kept[e] + other.Kept[e]; }
        return new ExpertLoad(Layer, Tokens + other.Tokens, a, k, Math.Max(Capacity, other.Capacity));
    }
}

/// <summary>
/// What the MoE layers of one forward pass leave behind: their auxiliary loss terms (graph
/// tensors) and their <see cref="ExpertLoad"/> statistics, in layer order. Dense layers add nothing.
/// </summary>
public sealed class RouterStats
{
    readonly List<Tensor> loadBalance = [];
    readonly List<Tensor> zLoss = [];
    readonly List<ExpertLoad> loads = [];

    /// <summary>Per-layer Switch load-balancing losses (rank-0 graph tensors).</summary>
    public IReadOnlyList<Tensor> LoadBalanceLosses => loadBalance;

    /// <summary>Per-layer router z-losses (rank-0 graph tensors).</summary>
    public IReadOnlyList<Tensor> ZLosses => zLoss;

    /// <summary>Per-MoE-layer routing statistics.</summary>
    public IReadOnlyList<ExpertLoad> Loads => loads;

    /// <summary>Records one MoE layer.</summary>
    public void Add(Tensor loadBalanceLoss, Tensor routerZLoss, ExpertLoad load)
    {
        loadBalance.Add(loadBalanceLoss);
        zLoss.Add(routerZLoss);
        loads.Add(load);
    }
}
