using Tessera.Model;

namespace Tessera.Inference.Tests;

/// <summary>The prefix cache: outputs bit-identical to uncached decoding, hits counted, memory under budget, LRU eviction, overflow refused.</summary>
public sealed class PrefixCacheTests
{
    static readonly ModelConfig Config = EngineModels.Dense with { ContextLength = 160 };

    static List<int[]> Prompts(int count, int systemLength, int seed)
    {
        var rng = new Random(seed);
        var system = Enumerable.Range(0, systemLength).Select(_ => rng.Next(Config.VocabSize)).ToArray();
        // Shared system prompt, then a per-request question of varying length (some share a longer prefix: multi-turn).
        return [.. Enumerable.Range(0, count).Select(i => system.Concat(Enumerable.Range(0, 3 + i % 7).Select(_ => rng.Next(Config.VocabSize))).ToArray())];
    }

    static async Task<List<(int[] Ids, float[] Logprobs)>> Run(BatchingEngine engine, List<int[]> prompts, SamplingOptions sampling, bool concurrent)
    {
        async Task<(int[], float[])> One(int[] p, int i)
        {
            var events = await EngineModels.Collect(engine.GenerateAsync(new GenerationRequest(p, 12, sampling with { Seed = (ulong)i })));
            return ([.. events.Select(e => e.Id)], [.. events.Select(e => e.Logprob)]);
        }
        if (concurrent) return [.. await Task.WhenAll(prompts.Select(One))];
        var list = new List<(int[], float[])>();
        for (int i = 0; i < prompts.Count; i++) list.Add(await One(prompts[i], i));
        return list;
    }

    [Theory]
    [InlineData(false, 1 << 20)]
    [InlineData(true, 1 << 20)]
    [InlineData(false, 40_000)]   // small: blocks are evicted and re-made all along
    public async Task OutputsAreBitIdenticalToUncachedDecoding(bool concurrent, long budget)
    {
        using var model = EngineModels.Build(Config, seed: 31);
        var prompts = Prompts(24, systemLength: 70, seed: 2);
        using var plain = new BatchingEngine(model, new BatchingOptions { MaxSequences = 4 });
        using var cached = new BatchingEngine(model, new BatchingOptions { MaxSequences = 4, PrefixCacheBytes = budget });
        foreach (var sampling in new[] { SamplingOptions.Greedy, new SamplingOptions { Temperature = 0.9f } })
        {
            var expected = await Run(plain, prompts, sampling, concurrent: false);
            var got = await Run(cached, prompts, sampling, concurrent);
            for (int i = 0; i < prompts.Count; i++)
            {
                Assert.Equal(expected[i].Ids, got[i].Ids);
                Assert.Equal(expected[i].Logprobs, got[i].Logprobs);   // bit for bit
            }
        }
        var stats = cached.Prefixes!.Stats;
        Assert.True(stats.RestoredTokens >= 64 * 20, $"restored {stats.RestoredTokens}");
        Assert.True(stats.PeakBytes <= budget && stats.BytesUsed <= budget);
        if (budget < 100_000) Assert.True(stats.Evictions > 0);
        // One pool of budget / block-size blocks; evicted blocks are handed out again (more stored than the pool holds).
        Assert.Equal(budget / cached.Prefixes.BlockBytes, cached.Prefixes.Capacity);
        if (budget < 100_000) Assert.True(stats.StoredBlocks > cached.Prefixes.Capacity, $"stored {stats.StoredBlocks} blocks, pool {cached.Prefixes.Capacity}");
    }

    [Fact]
    public void TheServersDefaultBudgetIsTheKvCachesSizeAtMost256Mb()
    {
        using var kv = new KvCache(Config, 32);
        Assert.Equal(32L * kv.Positions * kv.BytesPerPosition, BatchingOptions.DefaultPrefixCacheBytes(Config));
        Assert.Equal(256L << 20, BatchingOptions.DefaultPrefixCacheBytes(Config with { Layers = 64, ContextLength = 8192 }));
    }

    [Fact]
    public async Task GreedyMatchesTheReferenceEngine()
    {
        using var model = EngineModels.Build(Config, seed: 32);
        var prompts = Prompts(6, systemLength: 40, seed: 3);
        using var cached = new BatchingEngine(model, new BatchingOptions { PrefixCacheBytes = 1 << 20 });
        var reference = new ReferenceEngine(model);
        foreach (var p in prompts)
        {
            var want = (await EngineModels.Collect(reference.GenerateAsync(new GenerationRequest(p, 10, SamplingOptions.Greedy)))).Select(e => e.Id);
            var got = (await EngineModels.Collect(cached.GenerateAsync(new GenerationRequest(p, 10, SamplingOptions.Greedy)))).Select(e => e.Id);
            Assert.Equal(want, got);
        }
        Assert.True(cached.Prefixes!.Stats.RestoredTokens > 0);
    }

    [Fact]
    public void PromptsOverflowingTheBudgetAreRefused()
    {
        using var model = EngineModels.Build(Config, seed: 33);
        using var cached = new BatchingEngine(model, new BatchingOptions { PrefixCacheBytes = 4096 });
        var e = Assert.Throws<ArgumentException>(() => cached.GenerateAsync(new GenerationRequest([.. Enumerable.Range(0, 100).Select(i => i % 40)], 4, SamplingOptions.Greedy)));
        Assert.Contains("prefix cache budget", e.Message);
    }
}
