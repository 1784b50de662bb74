using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Vision.FashionMnist;

/// <summary>
/// The floor of the Fashion-MNIST comparison: a linear softmax classifier on the raw 784 pixels
/// (v/255), logits = W·x + b, trained with AdamW on cross-entropy through the same graph ops as the
/// model (Linear, AddBias, CrossEntropy).
/// </summary>
public static class LinearProbe
{
    /// <summary>Trains on the first <paramref name="trainCount"/> images for <paramref name="epochs"/> epochs; returns the accuracy on the first <paramref name="testCount"/> test images.</summary>
    public static double TrainAndScore(FashionMnistSplit train, int trainCount, FashionMnistSplit test, int testCount, int epochs, int seed)
    {
        const int px = FashionMnistSplit.ImagePixels, batch = 256;
        using var p = new ModelParameters();
        var w = p.Add("probe.weight", ParameterKind.Linear, 10, px);
        var b = p.Add("probe.bias", ParameterKind.Bias, 10);
        p.Initialize((ulong)seed, 1);
        using var opt = new AdamW(p.All, 1e-3f, 0.9f, 0.999f, 1e-8f, 0f, _ => false);
        var rng = new Random(seed);
        var order = Enumerable.Range(0, trainCount).ToArray();
        int steps = epochs * (trainCount / batch), cursor = order.Length;
        for (int step = 0; step < steps; step++)
        {
            if (cursor + batch > order.Length) { rng.Shuffle(order); cursor = 0; }
            var x = new float[batch * px]; var y = new int[batch];
            for (int i = 0; i < batch; i++)
            {
                int k = order[cursor++];
                Pixels(train, k, x.AsSpan(i * px, px));
                y[i] = train.Labels[k];
            }
            opt.LearningRate = (float)(1e-3 * (1 - (double)step / steps) + 1e-5);
            using var g = new Graph();
            var loss = g.CrossEntropy(Logits(g, w, b, x, batch), y);
            g.Backward(loss);
            opt.Step();
            opt.ZeroGrad();
        }
        int right = 0;
        for (int start = 0; start < testCount; start += 1000)
        {
            int n = Math.Min(1000, testCount - start);
            var x = new float[n * px];
            for (int i = 0; i < n; i++) Pixels(test, start + i, x.AsSpan(i * px, px));
            using var g = new Graph(recordGradients: false);
            var logits = Logits(g, w, b, x, n).AsSpan("LinearProbe");
            for (int i = 0; i < n; i++)
            {
                var row = logits.Slice(i * 10, 10);
                int best = 0;
                for (int k = 1; k < 10; k++) if (row[k] > row[best]) best = k;
                if (best == test.Labels[start + i]) right++;
            }
        }
        return (double)right / Math.Max(1, testCount);
    }

    static Tensor Logits(Graph g, Tensor w, Tensor b, float[] x, int n)
    {
        var input = g.Custom("ProbePixels", [n, FashionMnistSplit.ImagePixels], [], y => x.CopyTo(y), static (_, _) => { });   // (n, 784), a constant
        return g.AddBias(g.Linear(input, w), b);   // (n, 10)
    }

    static void Pixels(FashionMnistSplit s, int i, Span<float> dst)
    {
        var img = s.Image(i);
        for (int j = 0; j < img.Length; j++) dst[j] = img[j] / 255f;
    }
}
