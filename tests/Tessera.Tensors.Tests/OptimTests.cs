using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>AdamW against a double-precision transcription of torch's formula, and clip_grad_norm_ semantics.</summary>
public class OptimTests
{
    [Fact]
    public void AdamWMatchesTheTorchFormula()
    {
        const int n = 64, steps = 4;
        const double lr = 3e-3, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
        var rng = new Rng(5);
        var p = GradCheck.Random(rng, [n], "p");
        using var opt = new AdamW([p], (float)lr, (float)b1, (float)b2, (float)eps, (float)wd);
        var pd = p.ToArray().Select(v => (double)v).ToArray();
        var m = new double[n]; var v = new double[n];
        for (int t = 1; t <= steps; t++)
        {
            using (var g = new Graph()) { p.RequiresGrad = true; g.Backward(g.Sum(g.Mul(p, p))); } // grad = 2p
            var grad = p.Grad!.ToArray();
            opt.Step();
            for (int i = 0; i < n; i++)
            {
                pd[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * grad[i];
                v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
                pd[i] -= lr / (1 - Math.Pow(b1, t)) * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(1 - Math.Pow(b2, t)) + eps);
            }
            opt.ZeroGrad();
            var actual = p.ToArray();
            // Each step does ~10 fp32 roundings on values of size ≤ 1 plus lr-sized updates; 64·u per step bounds it.
            for (int i = 0; i < n; i++) Assert.True(Math.Abs(actual[i] - pd[i]) <= 64 * t / (double)(1 << 24), $"step {t} [{i}]: {actual[i]} vs {pd[i]}");
        }
        Assert.Equal(steps, opt.StepCount);
        p.Dispose();
    }

    [Fact]
    public void WeightDecayIsDecoupled()
    {
        // Zero gradient: Adam's update is 0/(0 + ε) = 0, so only the decay p·(1 − lr·wd) acts.
        using var p = Tensor.FromArray([2f, -4f], [2], "p");
        p.RequiresGrad = true;
        using (var g = new Graph()) g.Backward(g.Scale(g.Sum(p), 0f));
        using var opt = new AdamW([p], 0.5f, weightDecay: 0.1f);
        opt.Step();
        Assert.Equal([2f * 0.95f, -4f * 0.95f], p.ToArray());
        using var q = Tensor.FromArray([2f], [1], "bias");
        q.RequiresGrad = true;
        using (var g = new Graph()) g.Backward(g.Scale(g.Sum(q), 0f));
        using var opt2 = new AdamW([q], 0.5f, weightDecay: 0.1f, decays: t => t.Name != "bias");
        opt2.Step();
        Assert.Equal([2f], q.ToArray());
    }

    [Fact]
    public void ClipGlobalNormScalesOnlyAboveTheLimit()
    {
        using var a = Tensor.FromArray([3f, 0f], [2], "a");
        using var b = Tensor.FromArray([0f, 4f], [2], "b");
        a.RequiresGrad = b.RequiresGrad = true;
        using (var g = new Graph()) g.Backward(g.Add(g.Sum(g.Mul(a, a)), g.Sum(g.Mul(b, b)))); // grads 6, 8 → norm 10
        double norm = GradClip.ClipGlobalNorm([a, b], 5.0);
        Assert.Equal(10.0, norm, 12);
        float c = (float)(5.0 / (10.0 + 1e-6));
        Assert.Equal([6f * c, 0f], a.Grad!.ToArray());
        Assert.Equal([0f, 8f * c], b.Grad!.ToArray());
        var before = a.Grad!.ToArray();
        GradClip.ClipGlobalNorm([a, b], 100.0);
        Assert.Equal(before, a.Grad!.ToArray());
        a.Grad!.AsSpan()[0] = float.NaN;
        Assert.Throws<ArithmeticException>(() => GradClip.ClipGlobalNorm([a, b], 1.0));
    }
}
