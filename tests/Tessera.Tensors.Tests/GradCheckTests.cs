using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>Finite-difference gradient checks for every differentiable op (see <see cref="GradCheck"/>).</summary>
public class GradCheckTests
{
    static Tensor R(Rng rng, string name, params int[] shape) => GradCheck.Random(rng, shape, name);

    static void Run(string what, Tensor[] inputs, Func<Graph, Tensor[], Tensor> f, int reduction = 1)
    {
        try { GradCheck.Check(what, inputs, f, reduction); }
        finally { foreach (var t in inputs) t.Dispose(); }
    }

    [Fact]
    public void Linear2D() { var g = new Rng(1); Run("Linear", [R(g, "x", 3, 5), R(g, "w", 4, 5)], (gr, a) => gr.Linear(a[0], a[1]), 5); }

    [Fact]
    public void Linear3D() { var g = new Rng(2); Run("Linear3D", [R(g, "x", 2, 3, 4), R(g, "w", 3, 4)], (gr, a) => gr.Linear(a[0], a[1]), 6); }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void MatMul2D(bool ta, bool tb)
    {
        var g = new Rng(3);
        // op(A) is (3, 4), op(B) is (4, 2).
        Run($"MatMul ta={ta} tb={tb}", [ta ? R(g, "a", 4, 3) : R(g, "a", 3, 4), tb ? R(g, "b", 2, 4) : R(g, "b", 4, 2)],
            (gr, a) => gr.MatMul(a[0], a[1], ta, tb), 4);
    }

    [Fact]
    public void MatMulBatched() { var g = new Rng(4); Run("MatMul batched", [R(g, "a", 2, 3, 4), R(g, "b", 2, 3, 2)], (gr, a) => gr.MatMul(a[0], a[1], transA: true), 3); }

    [Fact]
    public void AddMulScale()
    {
        var g = new Rng(5);
        Run("Add", [R(g, "a", 2, 3), R(g, "b", 2, 3)], (gr, a) => gr.Add(a[0], a[1]));
        Run("Mul", [R(g, "a", 2, 3), R(g, "b", 2, 3)], (gr, a) => gr.Mul(a[0], a[1]));
        Run("Scale", [R(g, "a", 2, 3)], (gr, a) => gr.Scale(a[0], -1.75f));
        // The same tensor used twice must receive both contributions.
        Run("Mul(x, x)", [R(g, "a", 7)], (gr, a) => gr.Mul(a[0], a[0]));
    }

    [Fact]
    public void SumMean()
    {
        var g = new Rng(6);
        Run("Sum", [R(g, "a", 3, 4)], (gr, a) => gr.Sum(a[0]), 12);
        Run("Mean", [R(g, "a", 3, 4)], (gr, a) => gr.Mean(a[0]), 12);
    }

    [Fact]
    public void ReshapeAndPermute()
    {
        var g = new Rng(7);
        Run("Reshape", [R(g, "x", 2, 6)], (gr, a) => gr.Mul(gr.Reshape(a[0], [3, -1]), gr.Reshape(a[0], [3, 4])));
        Run("Permute (0,2,1,3)", [R(g, "x", 2, 3, 2, 2)], (gr, a) => gr.Permute(a[0], [0, 2, 1, 3]));
        Run("Permute (2,0,1)", [R(g, "x", 2, 3, 4)], (gr, a) => gr.Permute(a[0], [2, 0, 1]));
    }

    [Fact]
    public void RmsNorm() { var g = new Rng(8); Run("RmsNorm", [R(g, "x", 3, 6), R(g, "w", 6)], (gr, a) => gr.RmsNorm(a[0], a[1], 1e-5f), 6); }

    [Fact]
    public void RmsNormWithGainOffset()
    {
        var g = new Rng(20);
        Run("RmsNorm 1+w", [R(g, "x", 3, 6), R(g, "w", 6)], (gr, a) => gr.RmsNorm(a[0], a[1], 1e-6f, gainOffset: 1f), 6);
    }

    [Fact]
    public void PerHeadRmsNormThroughReshapeViews()
    {
        // QK-norm: (N, H·Dh) viewed as (N·H, Dh), normed per head with a (Dh) gain, viewed back.
        const int N = 3, H = 2, Dh = 4;
        var g = new Rng(21);
        Run("QK-norm", [R(g, "q", N, H * Dh), R(g, "w", Dh)], (gr, a) =>
        {
            var heads = gr.Reshape(a[0], [N * H, Dh]);          // (N·H, Dh)
            var normed = gr.RmsNorm(heads, a[1], 1e-6f, gainOffset: 1f);
            return gr.Reshape(normed, [N, H * Dh]);            // (N, H·Dh)
        }, Dh);
    }

    [Fact]
    public void GatedAndCapped()
    {
        var g = new Rng(22);
        Run("GeGlu", [R(g, "gate", 3, 3), R(g, "up", 3, 3)], (gr, a) => gr.GeGlu(a[0], a[1]));
        Run("SoftCap", [GradCheck.Random(g, [2, 5], "x", -6f, 6f)], (gr, a) => gr.SoftCap(a[0], 3f));
    }

    [Fact]
    public void SoftCapOffIsTheIdentity()
    {
        using var x = GradCheck.Random(new Rng(23), [4], "x");
        using var g = new Graph();
        Assert.Same(x, g.SoftCap(x, 0f));
    }

    [Fact]
    public void AddBias()
    {
        var g = new Rng(24);
        Run("AddBias", [R(g, "x", 4, 3), R(g, "b", 3)], (gr, a) => gr.AddBias(a[0], a[1]));
        Run("AddBias 3D", [R(g, "x", 2, 2, 5), R(g, "b", 5)], (gr, a) => gr.Mul(gr.AddBias(a[0], a[1]), a[0]));
    }

    /// <remarks>
    /// Graph-level checks at small head dims (the plumbing of softCap into forward and backward);
    /// fp32 finite differences cannot resolve a D = 256 head (the output roundoff grows with the
    /// number of outputs times D), so the kernel's gradient at D = 64 and 256 is checked against a
    /// double-precision forward in Tessera.Kernels.Tests AttentionTests.GradientsMatchFiniteDifferences.
    /// </remarks>
    [Theory]
    [InlineData(8, 0)]
    [InlineData(8, 3)]
    [InlineData(16, 2)]
    public void AttentionWithLogitSoftCap(int headDim, int window)
    {
        // Scores q·k·scale with unit spread for any D, against a cap of 1: well into tanh's bend.
        var g = new Rng(25);
        float scale = 3f / MathF.Sqrt(headDim);
        Run($"Attention D={headDim} window={window} softCap",
            [R(g, "q", 1, 2, 5, headDim), R(g, "k", 1, 1, 5, headDim), R(g, "v", 1, 1, 5, headDim)],
            (gr, a) => gr.Attention(a[0], a[1], a[2], scale, window, softCap: 1f), Math.Max(5, headDim));
    }

    [Fact]
    public void Rope()
    {
        var g = new Rng(9);
        var table = new RopeTable(8, 4, 10000f);
        Run("Rope", [R(g, "x", 2, 3, 2, 4)], (gr, a) => gr.Rope(a[0], table, positionOffset: 2));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void AttentionGqa(int window)
    {
        var g = new Rng(10);
        Run($"Attention window={window}", [R(g, "q", 1, 4, 5, 4), R(g, "k", 1, 2, 5, 4), R(g, "v", 1, 2, 5, 4)],
            (gr, a) => gr.Attention(a[0], a[1], a[2], window: window), 5);
    }

    [Fact]
    public void Activations()
    {
        var g = new Rng(11);
        Run("Silu", [R(g, "x", 9)], (gr, a) => gr.Silu(a[0]));
        Run("Gelu", [R(g, "x", 9)], (gr, a) => gr.Gelu(a[0]));
        Run("SwiGlu", [R(g, "gate", 3, 3), R(g, "up", 3, 3)], (gr, a) => gr.SwiGlu(a[0], a[1]));
    }

    [Fact]
    public void SoftmaxFamily()
    {
        var g = new Rng(12);
        Run("Softmax", [R(g, "x", 3, 5)], (gr, a) => gr.Softmax(a[0]), 5);
        Run("LogSoftmax", [R(g, "x", 3, 5)], (gr, a) => gr.LogSoftmax(a[0]), 5);
    }

    [Fact]
    public void EmbeddingWithRepeatedIds() { var g = new Rng(13); Run("Embedding", [R(g, "table", 5, 3)], (gr, a) => gr.Embedding(a[0], [4, 0, 4, 2, 4])); }

    [Fact]
    public void CrossEntropyWithIgnoredRow()
    {
        var g = new Rng(14);
        Run("CrossEntropy", [R(g, "logits", 4, 6)], (gr, a) => gr.CrossEntropy(a[0], [5, -100, 0, 3]), 6);
    }

    [Fact]
    public void RoutingGatherAndNormalize()
    {
        var g = new Rng(15);
        Run("GatherColumns", [R(g, "x", 3, 4)], (gr, a) => gr.GatherColumns(a[0], [3, 1, 0, 2, 2, 3], 2));
        Run("NormalizeRows", [GradCheck.Random(g, [3, 2], "p", 0.3f, 1f)], (gr, a) => gr.NormalizeRows(a[0]), 2);
        Run("GatherRows", [R(g, "x", 4, 3)], (gr, a) => gr.GatherRows(a[0], [3, 3, 0]));
    }

    [Fact]
    public void ScatterRowsWeighted()
    {
        var g = new Rng(16);
        // Rows 1 and 3 receive two contributions, row 2 none; weights are read through a flat index.
        Run("ScatterRowsWeighted", [R(g, "src", 4, 3), R(g, "w", 3, 2)],
            (gr, a) => gr.ScatterRowsWeighted(a[0], a[1], [5, 0, 2, 3], [1, 3, 1, 3], 4), 3);
    }

    [Fact]
    public void RouterLosses()
    {
        var g = new Rng(17);
        Run("RouterZLoss", [R(g, "logits", 5, 4)], (gr, a) => gr.RouterZLoss(a[0]), 4);
        Run("LoadBalanceLoss", [GradCheck.Random(g, [5, 4], "probs", 0f, 1f)],
            (gr, a) => gr.LoadBalanceLoss(a[0], [0, 1, 2, 1, 3, 1, 0, 2, 1, 3]), 5);
    }

    /// <summary>
    /// The whole MoE path — router, softmax, top-2 (non-differentiable), gate gather and
    /// renormalisation, gathered SwiGLU experts, weighted scatter, aux losses — checked end to end.
    /// The router weights are scaled so every top-2/top-3 margin dwarfs the probe step; the test
    /// asserts that, since a routing flip inside the difference would make the check meaningless.
    /// </summary>
    [Fact]
    public void MoeLayerEndToEnd()
    {
        const int n = 5, d = 4, f = 6, e = 4, k = 2;
        // Draw router weights until every token's top-2/top-3 probability margin is wide (> 0.02,
        // far above what a 2⁻⁵ probe can move); the first few seeds are tried in a fixed order.
        Rng g = null!; Tensor x = null!, gate = null!;
        for (ulong seed = 18; seed < 64; seed++)
        {
            g = new Rng(seed);
            x = R(g, "x", n, d);
            gate = GradCheck.Random(g, [e, d], "gate", -3f, 3f);
            if (MinTopKMargin(x, gate, k) > 0.02) break;
            x.Dispose(); gate.Dispose();
        }
        Assert.True(MinTopKMargin(x, gate, k) > 0.02, "no seed gave robust routing");
        var w = new List<Tensor>();
        for (int i = 0; i < e; i++) { w.Add(R(g, $"w1.{i}", f, d)); w.Add(R(g, $"w3.{i}", f, d)); w.Add(R(g, $"w2.{i}", d, f)); }
        var proj = R(g, "projection", n, d);
        Run("MoE layer", [x, gate, .. w], (gr, a) =>
        {
            var logits = gr.Linear(a[0], a[1]);                                   // (N, E)
            var probs = gr.Softmax(logits);
            var top = gr.TopK(probs, k);
            var gates = gr.NormalizeRows(gr.GatherColumns(probs, top, k));       // (N, k)
            var plan = ExpertDispatch.Build(top, k, e);
            Tensor y = gr.Scale(gr.Add(gr.LoadBalanceLoss(probs, top), gr.RouterZLoss(logits)), 0.1f);
            Tensor? moe = null;
            for (int i = 0; i < e; i++)
            {
                if (plan.Rows[i].Length == 0) continue;
                var xe = gr.GatherRows(a[0], plan.Rows[i]);                       // (Mₑ, D)
                var he = gr.SwiGlu(gr.Linear(xe, a[2 + 3 * i]), gr.Linear(xe, a[3 + 3 * i]));
                var ye = gr.Linear(he, a[4 + 3 * i]);                             // (Mₑ, D)
                var part = gr.ScatterRowsWeighted(ye, gates, plan.Slots[i], plan.Rows[i], n);
                moe = moe is null ? part : gr.Add(moe, part);
            }
            // One scalar: a fixed random projection of the MoE output plus the aux losses, so the
            // gradients of the losses flow through the same router as the experts'.
            return gr.Add(gr.Sum(gr.Mul(moe!, proj)), y);
        }, 8);
        proj.Dispose();
    }

    static double MinTopKMargin(Tensor x, Tensor gate, int k)
    {
        using var probe = new Graph(recordGradients: false);
        var probs = probe.Softmax(probe.Linear(x, gate));
        int e = probs.Dim(1);
        var p = probs.ToArray();
        double min = double.PositiveInfinity;
        for (int t = 0; t < probs.Dim(0); t++)
        {
            var row = p.AsSpan(t * e, e).ToArray();
            Array.Sort(row); Array.Reverse(row);
            min = Math.Min(min, row[k - 1] - row[k]);
        }
        return min;
    }

    [Fact]
    public void CheckerDetectsAWrongGradient()
    {
        // y = x + stop_gradient(x²): the tape only knows the identity, so the analytic gradient (1)
        // disagrees with the true derivative (1 + 2x) and the checker must reject it.
        var g = new Rng(19);
        var x = GradCheck.Random(g, [6], "x", 0.5f, 1f);
        Assert.Throws<Xunit.Sdk.XunitException>(() => GradCheck.Check("stop-gradient", [x], (gr, a) =>
        {
            var sq = Tensor.FromArray(a[0].ToArray().Select(v => v * v).ToArray(), [6], "x² (detached)");
            return gr.Add(a[0], sq);
        }));
        x.Dispose();
    }
}
