using Tessera.Tensors;
using Xunit.Abstractions;

namespace Tessera.Tensors.Tests;

/// <summary>
/// Parity with PyTorch (reference/golden_block.py, float64 compute from the same float32 weights):
/// logits, losses, router decisions, every parameter gradient, and 5 AdamW steps with clipping.
/// Tolerances: see <see cref="ForwardTol"/>, <see cref="GradTol"/> and <see cref="StepTol"/>.
/// </summary>
public class GoldenBlockTests(ITestOutputHelper output)
{
    const double U = 1.0 / (1 << 24);

    /// <summary>
    /// Forward values, relative to each tensor's max magnitude. The reference is float64, so the
    /// whole difference is our fp32 rounding. Each op contributes at most γₙ ≈ (n + 2)·u of its
    /// output scale, with n ≤ 64 the longest reduction (Linear over F = 64, lm_head/CE over V = 64);
    /// the longest forward chain is ~20 ops, and RMSNorm / softmax are well conditioned (no
    /// amplification beyond O(1)), so 20·66·u ≈ 8e-5. A wrong op is off by O(1) of the scale.
    /// </summary>
    static readonly double ForwardTol = 20 * 66 * U;

    /// <summary>
    /// Gradients: the backward chain is about twice the forward chain (each op's backward consumes
    /// its forward output and adds its own reductions, N = 16 tokens for weight gradients), so
    /// twice the forward bound: 40·66·u ≈ 1.6e-4 of each gradient's max magnitude.
    /// </summary>
    static readonly double GradTol = 40 * 66 * U;

    /// <summary>
    /// Parameters after 5 AdamW steps, relative to how far each tensor moved (|p₅ − p₀|max ≈ 5·lr).
    /// Adam divides m by √v + ε, so a gradient entry g with fp32 error δ moves the update by
    /// ≈ lr·δ/(|g| + ε): negligible for typical entries, larger only for the rare entries whose
    /// gradient is near zero (they set the worst case, ~1e-4 of the movement with the scalar
    /// kernels). 1 % leaves room for fp32-accumulating fast kernels (≈ 10–100× the gradient error)
    /// while still failing on a wrong optimizer: with weight decay dropped every tensor is off by
    /// ≥ 4.6 % of its movement, with clipping dropped by ≥ 9 % (both measured by sabotage).
    /// The loss trajectory is checked at <see cref="ForwardTol"/> on top of this.
    /// </summary>
    const double StepTol = 1e-2;

    [Fact]
    public void ForwardMatchesTorch()
    {
        var fx = GoldenFixture.Load();
        using var block = new GoldenBlock(fx);
        using var g = new Graph(recordGradients: false);
        var r = block.Forward(g, fx.Ints("input_ids"), fx.Ints("targets"));

        // Routing must be identical and robust: the script only accepted seeds whose top-2/top-3
        // margin exceeds 1e-3, and we check our own fp32 probabilities agree.
        Assert.Equal(fx.Ints("router_top"), r.RouterTop);
        var probs = r.RouterProbs.ToArray();
        int e = block.Experts, k = block.TopK;
        for (int t = 0; t < probs.Length / e; t++)
        {
            var row = probs.AsSpan(t * e, e).ToArray();
            Array.Sort(row); Array.Reverse(row);
            Assert.True(row[k - 1] - row[k] > fx.ConfigDouble("min_router_margin"), $"token {t}: fp32 router margin {row[k - 1] - row[k]} too small");
        }
        Compare("router_probs", fx.Floats("router_probs"), probs, ForwardTol);
        Compare("logits", fx.Floats("logits"), r.Logits.ToArray(), ForwardTol);
        CompareScalar("loss_ce", fx.Scalar("loss_ce"), r.Ce.Item());
        CompareScalar("loss_aux", fx.Scalar("loss_aux"), r.Aux.Item());
        CompareScalar("loss_z", fx.Scalar("loss_z"), r.Z.Item());
        CompareScalar("loss_total", fx.Scalar("loss_total"), r.Total.Item());
    }

    [Fact]
    public void GradientsMatchTorch()
    {
        var fx = GoldenFixture.Load();
        using var block = new GoldenBlock(fx);
        using (var g = new Graph())
        {
            var r = block.Forward(g, fx.Ints("input_ids"), fx.Ints("targets"));
            g.Backward(r.Total);
        }
        foreach (var name in fx.ParameterNames)
        {
            var grad = block.Params[name].Grad;
            Assert.True(grad is not null, $"{name} received no gradient");
            Compare("grad/" + name, fx.Floats("grad/" + name), grad!.ToArray(), GradTol);
        }
    }

    [Fact]
    public void FiveAdamWStepsMatchTorch()
    {
        var fx = GoldenFixture.Load();
        using var block = new GoldenBlock(fx);
        var (losses, norms) = Train(block, fx);
        var refLosses = fx.Doubles("losses"); var refNorms = fx.Doubles("grad_norms");
        for (int s = 0; s < losses.Length; s++)
        {
            CompareScalar($"loss[step {s}]", refLosses[s], losses[s]);
            CompareScalar($"grad_norm[step {s}]", refNorms[s], norms[s]);
        }
        int steps = fx.ConfigInt("steps");
        foreach (var name in fx.ParameterNames)
        {
            var init = fx.Floats("init/" + name); var expected = fx.Floats($"step{steps}/" + name);
            var actual = block.Params[name].ToArray();
            double moved = 0, err = 0; int at = 0;
            for (int i = 0; i < init.Length; i++)
            {
                moved = Math.Max(moved, Math.Abs((double)expected[i] - init[i]));
                double d = Math.Abs((double)expected[i] - actual[i]);
                if (d > err) { err = d; at = i; }
            }
            output.WriteLine($"step{steps}/{name}: max err {err:E2} / moved {moved:E2} = {err / moved:E2}");
            Assert.True(moved > 0, $"{name} did not move in the reference");
            Assert.True(err <= StepTol * moved, $"step{steps}/{name}[{at}]: expected {expected[at]:R}, got {actual[at]:R}; |err| {err:E3} > {StepTol}·{moved:E3}");
        }
    }

    [Fact]
    public void SameSeedSameThreadCountIsBitIdentical()
    {
        var fx = GoldenFixture.Load();
        using var a = new GoldenBlock(fx);
        using var b = new GoldenBlock(fx);
        var (la, _) = Train(a, fx);
        var (lb, _) = Train(b, fx);
        Assert.Equal(la, lb);
        foreach (var name in fx.ParameterNames)
            Assert.True(a.Params[name].ToArray().AsSpan().SequenceEqual(b.Params[name].ToArray()), $"{name} differs between identical runs");
    }

    /// <summary>The reference's loop: zero grads, forward, backward, clip to the global norm, AdamW step.</summary>
    static (double[] Losses, double[] Norms) Train(GoldenBlock block, GoldenFixture fx)
    {
        int steps = fx.ConfigInt("steps");
        using var opt = new AdamW(block.ParamList, (float)fx.ConfigDouble("lr"), (float)fx.ConfigDouble("beta1"), (float)fx.ConfigDouble("beta2"),
            (float)fx.ConfigDouble("adam_eps"), (float)fx.ConfigDouble("weight_decay"));
        var losses = new double[steps]; var norms = new double[steps];
        var ids = fx.Ints("input_ids"); var targets = fx.Ints("targets");
        for (int s = 0; s < steps; s++)
        {
            opt.ZeroGrad();
            using (var g = new Graph())
            {
                var r = block.Forward(g, ids, targets);
                Assert.True(ExpertDispatch.Build(r.RouterTop, block.TopK, block.Experts).Rows.All(rows => rows.Length > 0), $"step {s}: an expert got no tokens");
                losses[s] = r.Total.Item();
                g.Backward(r.Total);
            }
            norms[s] = GradClip.ClipGlobalNorm(block.ParamList, fx.ConfigDouble("clip"));
            opt.Step();
        }
        return (losses, norms);
    }

    void Compare(string what, float[] expected, float[] actual, double relTol)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 0, err = 0; int at = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            double d = Math.Abs((double)expected[i] - actual[i]);
            if (!(d <= err)) { err = d; at = i; }
        }
        output.WriteLine($"{what}: max err {err:E2} / scale {scale:E2} = {err / scale:E2} (tol {relTol:E2})");
        Assert.True(err <= relTol * scale, $"{what}[{at}]: expected {expected[at]:R}, got {actual[at]:R}; |err| {err:E3} > {relTol:E2}·{scale:E3}");
    }

    void CompareScalar(string what, double expected, double actual)
    {
        double err = Math.Abs(expected - actual);
        output.WriteLine($"{what}: {actual:R} vs {expected:R}, rel err {err / Math.Abs(expected):E2}");
        Assert.True(err <= ForwardTol * Math.Max(1, Math.Abs(expected)), $"{what}: expected {expected:R}, got {actual:R}");
    }
}
