using Tessera.Model;

namespace Tessera.Inference.Tests;

/// <summary>Speculative decoding: greedy equals the target's greedy; sampling keeps the target's distribution.</summary>
public class SpeculativeTests
{
    [Theory]
    [InlineData("dense", 1)]
    [InlineData("dense", 4)]
    [InlineData("moe2", 3)]
    [InlineData("window", 5)]
    public void GreedySpeculationEqualsPlainTargetDecoding(string name, int k)
    {
        var config = EngineModels.ByName(name);
        using var target = EngineModels.Build(config, seed: 31);
        // The draft is the target with a perturbed head: it agrees often but not always, so
        // both the accept and the reject/rollback paths run.
        using var draft = EngineModels.Build(config with { Layers = 1 }, seed: 32);
        using var decoder = new SpeculativeDecoder(InferenceWeights.FromTransformer(target), InferenceWeights.FromTransformer(draft), k);
        foreach (int promptLength in new[] { 1, 6 })
        {
            var prompt = EngineModels.Prompt(promptLength, config.VocabSize, k);
            int maxNew = config.ContextLength - promptLength;    // to the very end of the context
            var expected = new ReferenceEngine(target).Generate(prompt, maxNew, SamplingOptions.Greedy);
            var events = decoder.Generate(new GenerationRequest(prompt, maxNew, SamplingOptions.Greedy)).ToList();
            Assert.Equal(expected.Skip(promptLength), events.Select(e => e.Id));
            Assert.Equal(FinishReason.Length, events[^1].Finish);
        }
        Assert.True(decoder.Accepted < decoder.Drafted, "some drafts must be rejected for the test to cover rollback");
    }

    [Fact]
    public void LogitBiasGivesTheSameTokensInEveryEngine()
    {
        var config = EngineModels.ByName("dense");
        using var target = EngineModels.Build(config, seed: 41);
        using var draft = EngineModels.Build(config with { Layers = 1 }, seed: 42);
        var prompt = EngineModels.Prompt(5, config.VocabSize, 3);
        var plain = new ReferenceEngine(target).Generate(prompt, 12, SamplingOptions.Greedy).Skip(prompt.Length).ToList();
        // Ban the two most frequent greedy tokens: the output must change and agree across engines.
        var banned = plain.GroupBy(t => t).OrderByDescending(g => g.Count()).Take(2).Select(g => g.Key).ToList();
        var sampling = SamplingOptions.Greedy with { LogitBias = banned.ToDictionary(t => t, _ => -100f) };
        var request = new GenerationRequest(prompt, 12, sampling);
        var want = new ReferenceEngine(target).Generate(prompt, 12, sampling).Skip(prompt.Length).ToList();
        Assert.NotEqual(plain, want);
        Assert.DoesNotContain(want, banned.Contains);
        using var speculative = new SpeculativeDecoder(InferenceWeights.FromTransformer(target), InferenceWeights.FromTransformer(draft), 3);
        Assert.Equal(want, speculative.Generate(request).Select(e => e.Id));
        using var batching = new BatchingEngine(InferenceWeights.FromTransformer(target), new BatchingOptions { MaxSequences = 2 });
        Assert.Equal(want, batching.GenerateAsync(request).ToBlockingList().Select(e => e.Id));
        Assert.Throws<ArgumentException>(() => batching.GenerateAsync(request with { Sampling = SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [config.VocabSize] = 1 } } }));
    }

    [Fact]
    public void IdenticalDraftAcceptsEverything()
    {
        using var target = EngineModels.Build(EngineModels.Dense, seed: 33);
        var w = InferenceWeights.FromTransformer(target);
        using var decoder = new SpeculativeDecoder(w, w, draftTokens: 3);
        var events = decoder.Generate(new GenerationRequest([1, 2], 21, new SamplingOptions { Seed = 4, Temperature = 0.9f })).ToList();
        Assert.Equal(21, events.Count);
        // p = q everywhere: min(1, p/q) = 1, so every step emits k + 1 tokens (the last step fewer, capped by the budget).
        Assert.Equal(decoder.Drafted, decoder.Accepted);
        Assert.Equal(6, decoder.Steps);
    }

    [Fact]
    public void StopIdsAndLogprobsFollowTheTarget()
    {
        using var target = EngineModels.Build(EngineModels.Dense, seed: 34);
        using var draft = EngineModels.Build(EngineModels.Dense, seed: 35);
        using var engine = new SpeculativeEngine(target, draft, draftTokens: 3);
        var reference = new ReferenceEngine(target);
        var plain = reference.GenerateAsync(new GenerationRequest([7], 10, SamplingOptions.Greedy, TopLogprobs: 2)).ToBlockingList();
        var stop = new HashSet<int> { plain[6].Id };
        var request = new GenerationRequest([7], 10, SamplingOptions.Greedy, stop, TopLogprobs: 2);
        var want = reference.GenerateAsync(request).ToBlockingList();
        var got = engine.GenerateAsync(request).ToBlockingList();
        Assert.Equal(want.Select(e => (e.Id, e.Finish)), got.Select(e => (e.Id, e.Finish)));
        for (int i = 0; i < got.Count; i++) Assert.Equal(want[i].Logprob, got[i].Logprob, 1e-4f);
        Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest([], 3, SamplingOptions.Greedy)));
        Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest([1], -2, SamplingOptions.Greedy)));
        Assert.Throws<ArgumentException>(() => new SpeculativeDecoder(InferenceWeights.FromTransformer(target),
            InferenceWeights.FromTransformer(EngineModels.Build(EngineModels.Dense with { VocabSize = 41 }, 1)), 2));
    }

    /// <summary>χ² critical values at significance 0.001 for 1…7 degrees of freedom.</summary>
    static readonly double[] ChiSquare999 = [10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322];

    [Theory]
    [InlineData(1.0f, 0, 1.0f)]
    [InlineData(0.8f, 5, 0.95f)]
    public void SpeculativeSamplesFollowTheTargetDistribution(float temperature, int topK, float topP)
    {
        // Vocabulary 8, target and draft with unrelated weights: many rejections.
        var config = new ModelConfig { VocabSize = 8, Dim = 16, Layers = 1, Heads = 2, KvHeads = 1, HiddenDim = 16, ContextLength = 12 };
        using var target = EngineModels.Build(config, seed: 41, logitScale: 40f);
        using var draft = EngineModels.Build(config, seed: 42, logitScale: 40f);
        var sampling = new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP };
        int[] prompt = [1, 2];

        // Exact target distributions: first token, and the second marginalised over the first.
        var p1 = Distribution(target, prompt, sampling);
        var p2 = new double[8];
        for (int t1 = 0; t1 < 8; t1++)
        {
            if (p1[t1] == 0) continue;
            var cond = Distribution(target, [.. prompt, t1], sampling);
            for (int t2 = 0; t2 < 8; t2++) p2[t2] += p1[t1] * cond[t2];
        }

        const int trials = 3000;
        var first = new int[8]; var second = new int[8];
        using var decoder = new SpeculativeDecoder(InferenceWeights.FromTransformer(target), InferenceWeights.FromTransformer(draft), draftTokens: 3);
        for (int s = 0; s < trials; s++)
        {
            var ids = decoder.Generate(new GenerationRequest(prompt, 2, sampling with { Seed = (ulong)s + 1000 })).Select(e => e.Id).ToArray();
            first[ids[0]]++; second[ids[1]]++;
        }
        Assert.True(decoder.Accepted > 0 && decoder.Accepted < decoder.Drafted,
            $"accepted {decoder.Accepted} of {decoder.Drafted}: the test needs both outcomes");
        AssertFits(first, p1, trials, "first token");
        AssertFits(second, p2, trials, "second token");
    }

    static double[] Distribution(Transformer model, int[] ids, SamplingOptions sampling)
    {
        var logits = EngineModels.ReferenceLogits(model, ids);
        var p = new float[logits.Length];
        new Sampler(sampling).Distribution(logits, p);
        return p.Select(x => (double)x).ToArray();
    }

    /// <summary>Pearson χ² goodness of fit at significance 0.001; ids with probability 0 must never appear.</summary>
    static void AssertFits(int[] counts, double[] p, int n, string what)
    {
        double chi = 0;
        int cells = 0;
        for (int i = 0; i < p.Length; i++)
        {
            if (p[i] == 0) { Assert.True(counts[i] == 0, $"{what}: id {i} has probability 0 but was drawn {counts[i]} times"); continue; }
            double e = n * p[i];
            chi += (counts[i] - e) * (counts[i] - e) / e;
            cells++;
        }
        Assert.True(cells >= 2, $"{what}: the distribution is degenerate");
        double critical = ChiSquare999[cells - 2];
        Assert.True(chi < critical, $"{what}: χ² = {chi:F2} ≥ {critical} (df {cells - 1}); counts [{string.Join(", ", counts)}], expected [{string.Join(", ", p.Select(x => (x * n).ToString("F0")))}]");
    }
}

static class AsyncListExtensions
{
    public static List<TokenEvent> ToBlockingList(this IAsyncEnumerable<TokenEvent> events) => EngineModels.Collect(events).GetAwaiter().GetResult();
}
