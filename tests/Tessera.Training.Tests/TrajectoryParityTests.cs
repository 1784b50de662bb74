using Tessera.Data;
using Tessera.Model.Tests;
using Xunit.Abstractions;
using static Tessera.Model.Tests.ModelFixture;

namespace Tessera.Training.Tests;

/// <summary>
/// The 10-step training trajectory of reference/model_reference.py (2-layer MoE, gradient
/// accumulation over 2 micro-batches, AdamW with no decay on norms/embedding, warmup + cosine,
/// clipping at 1.0, the token stream read in order) reproduced by <see cref="Trainer"/>.
/// </summary>
public class TrajectoryParityTests(ITestOutputHelper output)
{
    /// <summary>
    /// Parameters after 10 steps, relative to how far each tensor moved. As in the golden block
    /// test: Adam divides by √v + ε, so an fp32 gradient error δ moves an update by ≈ lr·δ/(|g| + ε),
    /// largest for the rare near-zero gradient entries; 1 % of the movement leaves room for
    /// fp32-accumulating fast kernels and still fails for a wrong optimizer, schedule or decay
    /// grouping (each changes updates by O(lr·wd) or more, ≥ several % of the movement).
    /// </summary>
    const double StepTol = 1e-2;

    [Fact]
    public void TenStepsMatchTorch()
    {
        var fx = GoldenFixture.Load("model_moe");
        using var dir = new TempDir();
        TokenShard.Write(dir.File("stream.bin"), [fx.Ints("stream")], fx.ConfigInt("vocab"));
        using var shard = TokenShard.Open(dir.File("stream.bin"));
        using var model = ModelFixture.Build(fx);
        var options = new TrainOptions
        {
            Steps = fx.ConfigInt("steps"), BatchSize = fx.ConfigInt("batch"), SequenceLength = fx.ConfigInt("seq"),
            GradAccumulation = fx.ConfigInt("accum"), LearningRate = (float)fx.ConfigDouble("lr"), MinLearningRate = (float)fx.ConfigDouble("min_lr"),
            WarmupSteps = fx.ConfigInt("warmup"), WeightDecay = (float)fx.ConfigDouble("weight_decay"), Beta1 = (float)fx.ConfigDouble("beta1"),
            Beta2 = (float)fx.ConfigDouble("beta2"), AdamEpsilon = (float)fx.ConfigDouble("adam_eps"), ClipNorm = (float)fx.ConfigDouble("clip"),
            ShuffleData = false, EvalEvery = 0, CheckpointEvery = 0,
        };
        using var trainer = new Trainer(model, options, new TrainData([shard]));
        var reports = new List<StepReport>();
        trainer.StepCompleted = reports.Add;
        trainer.Run();

        var losses = fx.Doubles("losses"); var ces = fx.Doubles("ce_losses"); var norms = fx.Doubles("grad_norms"); var lrs = fx.Doubles("lrs");
        Assert.Equal(losses.Length, reports.Count);
        for (int s = 0; s < reports.Count; s++)
        {
            var r = reports[s];
            Assert.Equal((float)lrs[s], r.LearningRate);   // both sides round the same double schedule to float32
            CompareScalar($"loss[{s}]", losses[s], r.TotalLoss, ForwardTol, output.WriteLine);
            CompareScalar($"ce[{s}]", ces[s], r.Loss, ForwardTol, output.WriteLine);
            CompareScalar($"grad_norm[{s}]", norms[s], r.GradNorm, GradTol, output.WriteLine);
            Assert.Equal(0, r.DroppedAssignments);
        }
        double worst = 0;
        foreach (var name in fx.ParameterNames)
        {
            var init = fx.Floats("init/" + name); var expected = fx.Floats($"step{options.Steps}/" + name);
            var actual = model.Parameters[name].ToArray();
            double moved = 0, err = 0; int at = 0;
            for (int i = 0; i < init.Length; i++)
            {
                moved = Math.Max(moved, Math.Abs((double)expected[i] - init[i]));
                double d = Math.Abs((double)expected[i] - actual[i]);
                if (d > err) { err = d; at = i; }
            }
            worst = Math.Max(worst, err / moved);
            Assert.True(moved > 0, $"{name} did not move in the reference");
            Assert.True(err <= StepTol * moved, $"step{options.Steps}/{name}[{at}]: expected {expected[at]:R}, got {actual[at]:R}; |err| {err:E3} > {StepTol}·{moved:E3}");
        }
        output.WriteLine($"worst parameter error after {options.Steps} steps: {worst:E2} of the movement");
    }
}
