using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Training.Tests;

/// <summary>The pre-allocation memory estimate that refuses configs that cannot fit, and the work the op profile records.</summary>
public class TrainMemoryEstimateTests
{
    [Fact]
    public void AHugeConfigIsRefusedWithTheEstimateInTheMessage()
    {
        var huge = ModelConfig.Preset("large") with { Layers = 96 };
        var e = Assert.Throws<InsufficientMemoryException>(() => TrainMemoryEstimate.EnsureFits(huge, 64, 1024, 2_000_000_000, "bench train huge"));
        var est = TrainMemoryEstimate.For(huge, 64, 1024);
        Assert.StartsWith("bench train huge: training needs about ", e.Message);
        Assert.Contains($"{est.TotalBytes / 1e9:F2} GB at B×T = 64×1024", e.Message);
        Assert.Contains("only 2.00 GB are available", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void TheParameterPartsFollowTheParameterCountAndActivationsGrowWithTokens()
    {
        var c = ModelConfig.Preset("medium");
        var a = TrainMemoryEstimate.For(c, 4, 512);
        Assert.Equal(4 * c.ParameterCount, a.ParameterBytes);
        Assert.Equal(4 * c.ParameterCount, a.GradientBytes);
        Assert.Equal(8 * c.ParameterCount, a.OptimizerBytes);
        var b = TrainMemoryEstimate.For(c, 8, 512);
        Assert.Equal(2 * a.ActivationBytes, b.ActivationBytes);
        // Below the logits alone (N·V floats, three copies) the estimate would be wrong.
        Assert.True(a.ActivationBytes > 3L * 4 * 4 * 512 * c.VocabSize);
        // A config that fits is returned, not refused.
        Assert.Equal(a, TrainMemoryEstimate.EnsureFits(c, 4, 512, a.TotalBytes, "x"));
        Assert.Throws<InsufficientMemoryException>(() => TrainMemoryEstimate.EnsureFits(c, 4, 512, a.TotalBytes - 1, "x"));
    }

    [Fact]
    public void ThePresetsHaveTheirAdvertisedSizes()
    {
        Assert.InRange(ModelConfig.Preset("medium").ParameterCount, 25_000_000, 35_000_000);
        Assert.InRange(ModelConfig.Preset("large").ParameterCount, 100_000_000, 300_000_000);
        Assert.InRange(ModelConfig.Preset("large-moe").ParameterCount, 100_000_000, 300_000_000);
        // large-moe: 4 experts of half the width, top-2, so as many active parameters as large (+ the router).
        Assert.InRange(ModelConfig.Preset("large-moe").ActiveParameterCount - ModelConfig.Preset("large").ActiveParameterCount, 0, 100_000);
    }

    [Fact]
    public void TheProfileRecordsLinearFlopsAndBytesAndKeepsAllocationApart()
    {
        const int m = 6, k = 5, n = 7;
        bool was = OpProfile.Enabled;
        OpProfile.Enabled = true;
        try
        {
            using var x = Tensor.FromArray(new float[m * k], [m, k]);
            using var w = Tensor.FromArray(new float[n * k], [n, k]);
            x.RequiresGrad = w.RequiresGrad = true;
            // A tag private to this test, so ops that other tests run meanwhile cannot add to its entries.
            string tag = "memtest-" + Guid.NewGuid().ToString("N");
            using (var g = new Graph())
            {
                Tensor y;
                using (OpProfile.Tagged(tag)) y = g.Linear(x, w);
                using var seed = Tensor.FromArray(new float[m * n], [m, n]);
                g.Backward(y, seed);
            }
            var fwd = OpProfile.Entries().Find(e => e.Key == $"Linear[{tag}] fwd");
            var bwd = OpProfile.Entries().Find(e => e.Key == $"Linear[{tag}] bwd");
            Assert.Equal(2.0 * m * n * k, fwd.Flops);
            Assert.Equal(4.0 * (m * k + n * k + m * n), fwd.Bytes);
            Assert.Equal(2 * fwd.Flops, bwd.Flops);
            Assert.Equal(1, fwd.Calls);
            Assert.Null(OpProfile.CurrentTag);
            Assert.Contains(OpProfile.Entries(), e => e.Key == OpProfile.AllocationKey && e.Calls > 0);
        }
        finally
        {
            OpProfile.Enabled = was;
        }
    }
}
