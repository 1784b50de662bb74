using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>Inverted dropout: gradient, mask statistics, determinism and evaluation mode.</summary>
public class DropoutTests
{
    [Fact]
    public void GradientMatchesFiniteDifferencesWithAFixedMask()
    {
        var g = new Rng(11);
        var x = GradCheck.Random(g, [4, 33], "x");
        // A fresh stream with the same seed per forward pass fixes the mask across the FD evaluations.
        try { GradCheck.Check("Dropout p=0.3", [x], (gr, a) => gr.Dropout(a[0], 0.3f, new Rng(99))); }
        finally { x.Dispose(); }
    }

    [Theory]
    [InlineData(0.1f, 1)]
    [InlineData(0.5f, 2)]
    [InlineData(0.9f, 3)]
    public void KeepsTheRightShareScaledByTheInverseKeepProbability(float p, ulong seed)
    {
        const int n = 40_001; // odd: exercises the single-element tail
        using var x = Tensor.Zeros([n], "x");
        x.AsSpan("test").Fill(2f);
        using var graph = new Graph();
        var y = graph.Dropout(x, p, new Rng(seed)).ToArray();
        int kept = 0;
        float scaled = 2f / (1f - p);
        foreach (var v in y)
        {
            if (v != 0) { Assert.Equal(scaled, v); kept++; }
        }
        // Binomial(n, 1 − p): the kept count lies within 5 standard deviations of its mean.
        double mean = n * (1 - p), sd = Math.Sqrt(n * p * (1 - p));
        Assert.InRange(kept, mean - 5 * sd, mean + 5 * sd);
    }

    [Fact]
    public void SameRngStateGivesTheSameMaskAndTheStreamAdvances()
    {
        using var x = Tensor.Zeros([257], "x");
        new Rng(3).FillUniform(x, 1f, 2f);
        using var graph = new Graph();
        var rng = new Rng(5);
        var state = rng.State;
        var a = graph.Dropout(x, 0.5f, rng).ToArray();
        var b = graph.Dropout(x, 0.5f, rng).ToArray();
        rng.State = state;
        var c = graph.Dropout(x, 0.5f, rng).ToArray();
        Assert.Equal(a, c);
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void WithoutADropoutRngOrWithPZeroItIsTheIdentity()
    {
        using var x = Tensor.Zeros([10], "x");
        using var graph = new Graph();
        Assert.Same(x, graph.Dropout(x, 0.5f));
        graph.DropoutRng = new Rng(1);
        Assert.Same(x, graph.Dropout(x, 0f));
        Assert.NotSame(x, graph.Dropout(x, 0.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => graph.Dropout(x, 1f, new Rng(1)));
    }
}
