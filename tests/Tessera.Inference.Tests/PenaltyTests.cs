using Tessera.Tensors;

namespace Tessera.Inference.Tests;

/// <summary>Frequency and presence penalties against a scalar reference of OpenAI's formula.</summary>
public sealed class PenaltyTests
{
    /// <summary>OpenAI: μ[j] − c[j]·α_frequency − 1[c[j] &gt; 0]·α_presence, c counting generated tokens only.</summary>
    static double[] Reference(float[] logits, Dictionary<int, int> counts, float frequency, float presence, IReadOnlyDictionary<int, float>? bias)
    {
        var r = new double[logits.Length];
        for (int j = 0; j < logits.Length; j++)
        {
            double l = logits[j] + (bias is not null && bias.TryGetValue(j, out float b) ? b : 0);
            int c = counts.GetValueOrDefault(j);
            r[j] = l - c * frequency - (c > 0 ? presence : 0);
        }
        return r;
    }

    static float[] Row(Rng rng, int v, int step)
    {
        var x = new float[v];
        rng.FillNormal(x, 0, 2);
        x[step % 5] += 3;   // a few favourites, so penalties change the choices
        return x;
    }

    [Theory]
    [InlineData(0.0f, 0.0f, 1.0f)]
    [InlineData(0.7f, 0.0f, 1.0f)]
    [InlineData(0.0f, 1.3f, 0.8f)]
    [InlineData(2.0f, 2.0f, 1.2f)]
    [InlineData(-1.5f, 0.5f, 1.0f)]
    public void DistributionAndDrawsFollowTheFormula(float frequency, float presence, float temperature)
    {
        const int V = 37;
        var bias = new Dictionary<int, float> { [3] = 1.5f, [4] = -2f };
        var sampler = new Sampler(new SamplingOptions { Temperature = temperature, FrequencyPenalty = frequency, PresencePenalty = presence, LogitBias = bias, Seed = 9 });
        var counts = new Dictionary<int, int>();
        var rng = new Rng(5);
        var p = new float[V];
        for (int step = 0; step < 60; step++)
        {
            var logits = Row(rng, V, step);
            var reference = Reference(logits, counts, frequency, presence, bias);
            double max = reference.Max(), sum = reference.Sum(l => Math.Exp((l - max) / temperature));
            sampler.Distribution(logits, p);
            for (int j = 0; j < V; j++)
            {
                double expected = Math.Exp((reference[j] - max) / temperature) / sum;
                Assert.True(Math.Abs(p[j] - expected) <= 1e-5 + 1e-4 * expected, $"step {step}, id {j}: {p[j]} vs {expected}");
            }
            int id = sampler.Next(logits);
            counts[id] = counts.GetValueOrDefault(id) + 1;
        }
        if (frequency != 0 || presence != 0) Assert.True(counts.Count > 5);
    }

    [Fact]
    public void GreedyWithPenaltiesIsTheArgmaxOfThePenalisedLogits()
    {
        const int V = 23;
        var sampler = new Sampler(SamplingOptions.Greedy with { FrequencyPenalty = 0.9f, PresencePenalty = 0.4f });
        var counts = new Dictionary<int, int>();
        var rng = new Rng(8);
        var chosen = new HashSet<int>();
        for (int step = 0; step < 40; step++)
        {
            var logits = Row(rng, V, 0);
            var reference = Reference(logits, counts, 0.9f, 0.4f, null);
            int expected = 0;
            for (int j = 1; j < V; j++) if (reference[j] > reference[expected]) expected = j;
            int id = sampler.Next(logits);
            Assert.Equal(expected, id);
            counts[id] = counts.GetValueOrDefault(id) + 1;
            chosen.Add(id);
        }
        Assert.True(chosen.Count > 1);   // without penalties token 0 (boosted every step) would win most steps
    }

    [Fact]
    public void PenaltiesOutsideTheirRangeAreRefused()
    {
        Assert.Throws<ArgumentException>(() => new Sampler(new SamplingOptions { FrequencyPenalty = 2.5f }));
        Assert.Throws<ArgumentException>(() => new Sampler(new SamplingOptions { PresencePenalty = float.NaN }));
    }
}
