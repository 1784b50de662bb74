using Tessera.Tensors;
using Xunit.Abstractions;
using static Tessera.Model.Tests.ModelFixture;

namespace Tessera.Model.Tests;

/// <summary>
/// Parity of the whole model with reference/model_reference.py (torch, float64 from the same
/// float32 weights): a 2-layer MoE (4 experts, top-2, GQA, untied) and a 2-layer dense tied
/// model. Tolerances are derived in <see cref="ModelFixture"/>. The 10-step training trajectory
/// is checked in Tessera.Training.Tests.
/// </summary>
public class TransformerParityTests(ITestOutputHelper output)
{
    void Log(string s) => output.WriteLine(s);

    [Fact]
    public void MoeForwardMatchesTorch()
    {
        var fx = GoldenFixture.Load("model_moe");
        using var model = Build(fx);
        using var g = new Graph(recordGradients: false);
        int b = fx.ConfigInt("batch"), t = fx.ConfigInt("seq");
        var r = model.Forward(g, fx.Ints("input_ids"), b, t, fx.Ints("targets"));
        // Same routing: the reference only accepted seeds whose k-th/(k+1)-th router-logit gap
        // exceeds min_router_margin everywhere, far above fp32 error, so counts must agree exactly.
        Assert.Equal(fx.Ints("router_assigned"), r.ExpertLoads.SelectMany(l => l.Assigned).ToArray());
        Assert.All(r.ExpertLoads, l => Assert.Equal(0, l.Dropped));
        Compare("logits", fx.Floats("logits"), r.Logits.ToArray(), ForwardTol, Log);
        CompareScalar("loss_ce", fx.Scalar("loss_ce"), r.CrossEntropy!.Item(), ForwardTol, Log);
        CompareScalar("loss_aux", fx.Scalar("loss_aux"), r.LoadBalance!.Item(), ForwardTol, Log);
        CompareScalar("loss_z", fx.Scalar("loss_z"), r.RouterZ!.Item(), ForwardTol, Log);
        CompareScalar("loss_total", fx.Scalar("loss_total"), r.Loss!.Item(), ForwardTol, Log);
    }

    [Fact]
    public void MoeGradientsMatchTorch()
    {
        var fx = GoldenFixture.Load("model_moe");
        using var model = Build(fx);
        CheckGradients(fx, model);
    }

    [Fact]
    public void CapacityFactorDropsTheSameAssignmentsAsTorch()
    {
        var fx = GoldenFixture.Load("model_moe");
        using var model = Build(fx, Config(fx) with { CapacityFactor = (float)fx.ConfigDouble("capacity_factor") });
        using var g = new Graph(recordGradients: false);
        int b = fx.ConfigInt("batch"), t = fx.ConfigInt("seq");
        var r = model.Forward(g, fx.Ints("input_ids"), b, t, fx.Ints("targets"));
        int capacity = (int)Math.Ceiling(fx.ConfigDouble("capacity_factor") * b * t * model.Config.TopK / model.Config.Experts);
        Assert.All(r.ExpertLoads, l => Assert.Equal(capacity, l.Capacity));
        Assert.Equal(fx.Ints("capacity/assigned"), r.ExpertLoads.SelectMany(l => l.Assigned).ToArray());
        Assert.Equal(fx.Ints("capacity/kept"), r.ExpertLoads.SelectMany(l => l.Kept).ToArray());
        int dropped = r.ExpertLoads.Sum(l => l.Dropped);
        Log($"capacity {capacity}: dropped {dropped} assignments");
        Assert.True(dropped > 0, "the fixture was chosen so that some assignments are dropped");
        Compare("capacity/logits", fx.Floats("capacity/logits"), r.Logits.ToArray(), ForwardTol, Log);
        CompareScalar("capacity_loss_total", fx.Scalar("capacity_loss_total"), r.Loss!.Item(), ForwardTol, Log);
    }

    [Fact]
    public void DenseTiedForwardAndGradientsMatchTorch()
    {
        var fx = GoldenFixture.Load("model_dense");
        using var model = Build(fx);
        Assert.False(model.Parameters.Contains("lm_head.weight"));
        using (var g = new Graph(recordGradients: false))
        {
            var r = model.Forward(g, fx.Ints("input_ids"), fx.ConfigInt("batch"), fx.ConfigInt("seq"), fx.Ints("targets"));
            Assert.Empty(r.ExpertLoads);
            Compare("logits", fx.Floats("logits"), r.Logits.ToArray(), ForwardTol, Log);
            CompareScalar("loss", fx.Scalar("loss_total"), r.Loss!.Item(), ForwardTol, Log);
        }
        CheckGradients(fx, model);
    }

    void CheckGradients(GoldenFixture fx, Transformer model)
    {
        using (var g = new Graph())
        {
            var r = model.Forward(g, fx.Ints("input_ids"), fx.ConfigInt("batch"), fx.ConfigInt("seq"), fx.Ints("targets"));
            g.Backward(r.Loss!);
        }
        double worst = 0;
        foreach (var name in fx.ParameterNames)
        {
            var grad = model.Parameters[name].Grad;
            Assert.True(grad is not null, $"{name} received no gradient");
            worst = Math.Max(worst, Compare("grad/" + name, fx.Floats("grad/" + name), grad!.ToArray(), GradTol, Log));
        }
        Log($"worst relative gradient error {worst:E2}");
    }
}
