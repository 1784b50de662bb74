using Tessera.Model;

namespace Tessera.Inference.Tests;

public class SamplerTests
{
    static readonly float[] Logits = [1.0f, 2.0f, 0.5f, 2.0f, -1.0f, 0.0f];

    static double[] Softmax(float[] l, float t)
    {
        var p = l.Select(x => Math.Exp(x / t)).ToArray();
        double s = p.Sum();
        return p.Select(x => x / s).ToArray();
    }

    [Fact]
    public void GreedyIsArgmaxWithTiesToTheLowerId()
    {
        Assert.Equal(1, new Sampler(SamplingOptions.Greedy).Next(Logits));
        Assert.Equal(1, new Sampler(new SamplingOptions { TopK = 1, Seed = 5 }).Next(Logits));
    }

    [Theory]
    [InlineData(1.0f, 0, 1.0f, 0.0f)]
    [InlineData(0.7f, 0, 1.0f, 0.0f)]
    [InlineData(1.0f, 3, 1.0f, 0.0f)]
    [InlineData(1.0f, 0, 0.8f, 0.0f)]
    [InlineData(1.0f, 0, 1.0f, 0.3f)]
    public void SamplesFollowTheFilteredDistribution(float temperature, int topK, float topP, float minP)
    {
        // Expected distribution computed independently: temper, sort, filter, renormalise.
        var p = Softmax(Logits, temperature);
        var idx = Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).ThenBy(i => i).ToList();
        var kept = new List<int>();
        double acc = 0;
        foreach (int i in idx)
        {
            if (topK > 0 && kept.Count == topK) break;
            if (minP > 0 && p[i] < minP * p[idx[0]]) break;
            kept.Add(i);
            acc += p[i];
            if (acc >= topP) break;
        }
        double z = kept.Sum(i => p[i]);
        var expected = new double[p.Length];
        foreach (int i in kept) expected[i] = p[i] / z;

        var sampler = new Sampler(new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, Seed = 42 });
        const int n = 20_000;
        var counts = new int[p.Length];
        for (int s = 0; s < n; s++) counts[sampler.Next(Logits)]++;
        // Tokens outside the kept set must never appear.
        for (int i = 0; i < p.Length; i++) if (expected[i] == 0) Assert.Equal(0, counts[i]);
        // Pearson chi-square over the kept tokens; df ≤ 5, and the 0.1% critical value for df = 5
        // is 20.5, so a correct sampler fails this about once in a thousand seeds (fixed seed here).
        double chi2 = kept.Sum(i => Math.Pow(counts[i] - n * expected[i], 2) / (n * expected[i]));
        Assert.True(chi2 < 20.5, $"chi-square {chi2:F2} over {kept.Count} tokens");
    }

    [Fact]
    public void LogitBiasIsAddedBeforeGreedyAndSampling()
    {
        // Greedy: banning the argmax (id 1) leaves its tie partner id 3; +100 forces id 4.
        Assert.Equal(3, new Sampler(SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [1] = -100 } }).Next(Logits));
        Assert.Equal(4, new Sampler(SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [4] = 100 } }).Next(Logits));
        // Sampled: the distribution is softmax(logits + bias), computed independently here.
        var bias = new Dictionary<int, float> { [0] = 1.5f, [3] = -2f };
        var shifted = Logits.Select((l, i) => l + (bias.TryGetValue(i, out float b) ? b : 0)).ToArray();
        var expected = Softmax(shifted, 0.8f);
        var sampler = new Sampler(new SamplingOptions { Temperature = 0.8f, LogitBias = bias, Seed = 9 });
        var p = new float[Logits.Length];
        sampler.Distribution(Logits, p);
        for (int i = 0; i < p.Length; i++) Assert.Equal(expected[i], p[i], 1e-6);
        Assert.Equal(new float[] { 1.0f, 2.0f, 0.5f, 2.0f, -1.0f, 0.0f }, Logits);   // the caller's logits are not modified
        Assert.Throws<ArgumentException>(() => new Sampler(SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [6] = 1 } }).Next(Logits));
        Assert.Throws<ArgumentException>(() => new Sampler(SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [-1] = 1 } }));
        Assert.Throws<ArgumentException>(() => new Sampler(SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [1] = float.NaN } }));
    }

    [Fact]
    public void SameSeedSameSamplesDifferentSeedDifferent()
    {
        int[] Draw(ulong seed) { var s = new Sampler(new SamplingOptions { Seed = seed }); return Enumerable.Range(0, 64).Select(_ => s.Next(Logits)).ToArray(); }
        Assert.Equal(Draw(1), Draw(1));
        Assert.NotEqual(Draw(1), Draw(2));
    }

    [Theory]
    [InlineData(-1f, 0, 1f, 0f)]
    [InlineData(float.NaN, 0, 1f, 0f)]
    [InlineData(1f, -2, 1f, 0f)]
    [InlineData(1f, 0, 0f, 0f)]
    [InlineData(1f, 0, 1f, 1f)]
    public void ImpossibleOptionsAreRejected(float t, int k, float p, float m)
        => Assert.Throws<ArgumentException>(() => new Sampler(new SamplingOptions { Temperature = t, TopK = k, TopP = p, MinP = m }));
}
