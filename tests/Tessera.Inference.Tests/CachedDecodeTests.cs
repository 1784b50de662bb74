using Tessera.Model;

namespace Tessera.Inference.Tests;

/// <summary>The KV-cache forward path against the full re-forward twin.</summary>
public class CachedDecodeTests
{
    const double U = 1.0 / (1 << 24);

    [Theory]
    [MemberData(nameof(EngineModels.Names), MemberType = typeof(EngineModels))]
    public void GreedyCachedDecodeEqualsFullReforwardTokenForToken(string name)
    {
        var config = EngineModels.ByName(name);
        using var model = EngineModels.Build(config, seed: 11);
        using var decoder = new SequenceDecoder(InferenceWeights.FromTransformer(model));
        foreach (int promptLength in new[] { 1, 3, 9 })
        {
            var prompt = EngineModels.Prompt(promptLength, config.VocabSize, promptLength);
            int maxNew = config.ContextLength - promptLength;   // run to the end of the context (past the sliding window)
            var expected = new ReferenceEngine(model).Generate(prompt, maxNew, SamplingOptions.Greedy);

            decoder.Reset();
            decoder.Feed(prompt);
            var tokens = new List<int>(prompt);
            while (tokens.Count < prompt.Length + maxNew)
            {
                int next = Sampler.ArgMax(decoder.Logits(0));
                tokens.Add(next);
                if (tokens.Count < config.ContextLength) decoder.Feed([next]);
            }
            Assert.Equal(expected, tokens);
        }
    }

    [Theory]
    [MemberData(nameof(EngineModels.Names), MemberType = typeof(EngineModels))]
    public async Task EngineLogprobsMatchTheReferenceEngineWithinADerivedBound(string name)
    {
        var config = EngineModels.ByName(name);
        using var model = EngineModels.Build(config, seed: 12);
        using var fast = new BatchingEngine(model);
        var reference = new ReferenceEngine(model);
        var request = new GenerationRequest(EngineModels.Prompt(4, config.VocabSize, 2), 12, SamplingOptions.Greedy, TopLogprobs: 5);
        var got = await EngineModels.Collect(fast.GenerateAsync(request));
        var want = await EngineModels.Collect(reference.GenerateAsync(request));
        Assert.Equal(want.Select(e => e.Id), got.Select(e => e.Id));
        Assert.Equal(want.Select(e => e.Finish), got.Select(e => e.Finish));

        var tokens = new List<int>(request.Prompt);
        for (int i = 0; i < got.Count; i++)
        {
            double bound = LogprobBound(model, tokens);
            Assert.InRange(got[i].Logprob - want[i].Logprob, -bound, bound);
            Assert.Equal(want[i].Top.Select(t => t.Id), got[i].Top.Select(t => t.Id));
            for (int j = 0; j < got[i].Top.Count; j++) Assert.InRange(got[i].Top[j].Logprob - want[i].Top[j].Logprob, -bound, bound);
            tokens.Add(got[i].Id);
        }
    }

    /// <summary>
    /// First-order rounding bound for a log-probability. A logit is a length-D dot product of the
    /// final hidden state with a head row, so its own rounding is at most γ_D·Σ|h·w|; the hidden
    /// state carries the rounding of every earlier product (per layer q, k, v, o, the attention
    /// scores and weighted sum, and the MLP's three products; softmax/norm roundings are a few
    /// ulps), each at most γₙ relative for its reduction length n ≤ max(D, F, T). Summing those
    /// 9 per layer plus the head gives (9L + 1)·γₙ·Σ|h·w|; a log-probability is a logit minus the
    /// log-sum-exp, whose error is at most the largest logit error, hence the factor 2.
    /// </summary>
    static double LogprobBound(Transformer model, IReadOnlyList<int> tokens)
    {
        var c = model.Config;
        double gamma = Gamma(c);
        var h = EngineModels.ReferenceHidden(model, tokens);
        var head = model.Parameters[c.TiedEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"].AsSpan();
        double worst = 0;
        for (int v = 0; v < c.VocabSize; v++)
        {
            double s = 0;
            for (int d = 0; d < c.Dim; d++) s += Math.Abs(h[d] * head[v * c.Dim + d]);
            worst = Math.Max(worst, s);
        }
        return 2 * (9 * c.Layers + 1) * gamma * worst;
    }

    /// <summary>γₙ = n·u/(1 − n·u) for the longest reduction in the model, n = max(D, F, T) + 2.</summary>
    static double Gamma(ModelConfig c)
    {
        int n = Math.Max(Math.Max(c.Dim, c.HiddenDim), c.ContextLength) + 2;
        return n * U / (1 - n * U);
    }

    [Theory]
    [MemberData(nameof(EngineModels.Names), MemberType = typeof(EngineModels))]
    public void ScoreAndEmbedMatchTheReferenceEngine(string name)
    {
        var config = EngineModels.ByName(name);
        using var model = EngineModels.Build(config, seed: 13);
        using var fast = new BatchingEngine(model);
        var reference = new ReferenceEngine(model);
        var ids = EngineModels.Prompt(20, config.VocabSize, 5);
        var got = fast.Score(ids, 3);
        var want = reference.Score(ids, 3);
        Assert.True(float.IsNaN(got[0].Logprob));
        for (int i = 1; i < ids.Length; i++)
        {
            Assert.Equal(ids[i], got[i].Id);
            Assert.Equal(want[i].Top.Select(t => t.Id), got[i].Top.Select(t => t.Id));
            double bound = LogprobBound(model, ids[..i]);
            Assert.InRange(got[i].Logprob - want[i].Logprob, -bound, bound);
        }
        var e1 = fast.Embed(ids);
        var e2 = reference.Embed(ids);
        // Unit vectors pooled from hidden states that carry the relative rounding (9L + 1)·γₙ of the
        // bound above; normalising can at most double a relative error.
        double rel = 2 * (9 * config.Layers + 1) * Gamma(config);
        for (int d = 0; d < e1.Length; d++) Assert.InRange(e1[d] - e2[d], -rel, rel);
        Assert.Equal(1.0, Math.Sqrt(e1.Sum(x => (double)x * x)), 1e-6);
    }

    [Fact]
    public void ForwardPassRejectsBadRows()
    {
        using var model = EngineModels.Build(EngineModels.Dense, seed: 1);
        using var cache = new KvCache(model.Config, 2);
        cache.Ensure(0);
        var pass = new ForwardPass(InferenceWeights.FromTransformer(model), cache);
        Assert.Throws<ArgumentException>(() => pass.Run(new[] { new TokenRow(0, 0, model.Config.VocabSize) }, [0]));
        Assert.Throws<ArgumentException>(() => pass.Run(new[] { new TokenRow(0, model.Config.ContextLength, 1) }, [0]));
        Assert.Throws<ArgumentException>(() => pass.Run(new[] { new TokenRow(2, 0, 1) }, [0]));
        Assert.Throws<ArgumentException>(() => pass.Run(new[] { new TokenRow(0, 0, 1) }, [1]));
    }

    [Fact]
    public void DecodeBytesCountOnlyTheActiveExperts()
    {
        using var model = EngineModels.Build(EngineModels.MoeTop2, seed: 1);
        var w = InferenceWeights.FromTransformer(model);
        var c = model.Config;
        long attention = 4L * c.Dim * c.Dim - 2L * c.Dim * (c.Dim - c.KvHeads * c.HeadDim);
        long perToken = c.Layers * (attention + c.TopK * 3L * c.Dim * c.HiddenDim + (long)c.Experts * c.Dim) + 1L * c.VocabSize * c.Dim;
        Assert.Equal(perToken * sizeof(float), w.BytesPerToken);
        Assert.True(w.TotalBytes > w.BytesPerToken);
    }
}
