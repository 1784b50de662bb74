using Tessera.Model.Tests;
using Tessera.Tensors;
using Xunit.Abstractions;
using static Tessera.Model.Tests.ModelFixture;

namespace Tessera.Vision.Tests;

/// <summary>
/// Patchify → patch embedder → image vectors in the token stream → prefix-LM attention, against
/// reference/vision_reference.py (torch, float64): logits, loss and the gradient of every decoder
/// and vision parameter. Row 0 is an image-plus-prompt prefix seen both ways, row 1 an image inside
/// causal text, so the mask is chosen per example. The reference refuses to write a fixture where
/// the prefix mask or the row/column embeddings move the logits by under 1% of their scale.
/// </summary>
public class VisionParityTests(ITestOutputHelper output)
{
    /// <summary>Forward tolerance as ArchParityTests derives it for a 2-layer llama, plus 4 embedder ops.</summary>
    static double Tol(int layers) => (9 + 20 * layers) * 66.0 / (1 << 24);

    [Fact]
    public void ForwardLossAndGradientsMatchTheTorchReference()
    {
        var gold = new VisionGolden();
        var fx = gold.Fx;
        using var model = gold.Load();
        double tol = Tol(model.Decoder.Config.Layers);
        using (var g = new Graph())
        {
            var r = model.Forward(g, fx.Ints("input_ids"), gold.Batch, gold.Seq, gold.Patches(), fx.Ints("prefix"), fx.Ints("targets"));
            Compare("logits", fx.Floats("logits"), r.Logits.ToArray(), tol, output.WriteLine);
            CompareScalar("loss", fx.Scalar("loss"), r.CrossEntropy!.Item(), tol, output.WriteLine);
            g.Backward(r.CrossEntropy!);
        }
        foreach (var p in model.AllParameters)
        {
            Assert.True(p.Grad is not null, $"{p.Name} received no gradient");
            Compare("grad/" + p.Name, fx.Floats("grad/" + p.Name), p.Grad!.ToArray(), 2 * tol, output.WriteLine);
        }
    }

    /// <summary>The same model with every row causal differs from the reference: the test above sees the mask.</summary>
    [Fact]
    public void IgnoringThePrefixWouldFail()
    {
        var gold = new VisionGolden();
        using var model = gold.Load();
        using var g = new Graph(recordGradients: false);
        var causal = model.Forward(g, gold.Fx.Ints("input_ids"), gold.Batch, gold.Seq, gold.Patches()).Logits.ToArray();
        var want = gold.Fx.Floats("logits");
        double scale = want.Max(Math.Abs), worst = 0;
        for (int i = 0; i < want.Length; i++) worst = Math.Max(worst, Math.Abs(want[i] - causal[i]) / scale);
        Assert.True(worst > 100 * Tol(2), $"causal logits differ from the prefix-LM reference by only {worst:E2}");
    }
}
