using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>
/// <see cref="Graph.CombineExperts"/>: finite differences, and equality with the slow twin it
/// replaced in the MoE layer (one <see cref="Graph.ScatterRowsWeighted"/> per expert plus adds).
/// </summary>
public class ExpertCombineTests
{
    // 6 tokens, k = 2, 3 experts. Token 5 picks experts 0 and 2 both of which are over capacity 2
    // below, so with the cap it gets a zero row.
    static readonly int[] Top = [0, 1, 1, 2, 2, 0, 1, 0, 2, 1, 0, 2];
    const int N = 6, K = 2, E = 3, D = 5;

    static int[] Kept(ExpertDispatch plan, int capacity)
    {
        var kept = new int[E];
        for (int e = 0; e < E; e++) kept[e] = capacity == 0 ? plan.Rows[e].Length : Math.Min(capacity, plan.Rows[e].Length);
        return kept;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void GradientsMatchFiniteDifferences(int capacity)
    {
        var rng = new Rng(40);
        var plan = ExpertDispatch.Build(Top, K, E);
        var kept = Kept(plan, capacity);
        var inputs = new Tensor[E + 1];
        for (int e = 0; e < E; e++) inputs[e] = GradCheck.Random(rng, [kept[e], D], $"y{e}");
        inputs[E] = GradCheck.Random(rng, [N, K], "gates");
        try
        {
            GradCheck.Check($"CombineExperts cap {capacity}", inputs, (g, a) => g.CombineExperts(a[..E], a[E], plan), K);
        }
        finally { foreach (var t in inputs) t.Dispose(); }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void EqualsScatterPlusAddBitForBit(int capacity)
    {
        var rng = new Rng(41);
        var plan = ExpertDispatch.Build(Top, K, E);
        var kept = Kept(plan, capacity);
        var ys = new Tensor[E];
        for (int e = 0; e < E; e++) ys[e] = GradCheck.Random(rng, [kept[e], D], $"y{e}");
        var gates = GradCheck.Random(rng, [N, K], "gates");
        var seed = GradCheck.Random(rng, [N, D], "seed");
        var all = new List<Tensor>(ys) { gates };
        foreach (var t in all) t.RequiresGrad = true;

        float[] Run(bool fused, out List<float[]> grads)
        {
            foreach (var t in all) t.Grad?.AsSpan().Clear();
            using var g = new Graph();
            Tensor y;
            if (fused) y = g.CombineExperts(ys, gates, plan);
            else
            {
                Tensor? sum = null;
                for (int e = 0; e < E; e++)
                {
                    var part = g.ScatterRowsWeighted(ys[e], gates, plan.Slots[e].AsSpan(0, kept[e]), plan.Rows[e].AsSpan(0, kept[e]), N);
                    sum = sum is null ? part : g.Add(sum, part);
                }
                y = sum!;
            }
            var result = y.ToArray();
            g.Backward(y, seed);
            grads = all.ConvertAll(t => t.Grad!.ToArray());
            return result;
        }

        var slow = Run(false, out var slowGrads);
        var fast = Run(true, out var fastGrads);
        Assert.Equal(slow, fast);
        for (int i = 0; i < all.Count; i++) Assert.Equal(slowGrads[i], fastGrads[i]);
        if (capacity > 0) Assert.All(fast.AsSpan(5 * D, D).ToArray(), v => Assert.Equal(0f, v)); // token 5: both assignments dropped
        foreach (var t in all) t.Dispose();
        seed.Dispose();
    }
}
