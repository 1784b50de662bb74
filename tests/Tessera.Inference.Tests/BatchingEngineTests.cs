using Tessera.Model;

namespace Tessera.Inference.Tests;

/// <summary>Continuous batching: same tokens as one at a time, requests checked up front, cancellation frees slots.</summary>
public class BatchingEngineTests
{
    [Theory]
    [InlineData("dense")]
    [InlineData("moe2")]
    public async Task SequencesJoiningAtDifferentTimesGetTheSameTokensAsOneAtATime(string name)
    {
        var config = EngineModels.ByName(name);
        using var model = EngineModels.Build(config, seed: 21);
        // Fewer slots than requests (late ones wait for a slot) and a small prefill chunk (prompts are fed over several steps).
        using var engine = new BatchingEngine(model, new BatchingOptions { MaxSequences = 3, PrefillChunk = 5 });
        int count = 6;
        var requests = Enumerable.Range(0, count).Select(i =>
            new GenerationRequest(EngineModels.Prompt(1 + 3 * i, config.VocabSize, i), 6 + 3 * (i % 3), SamplingOptions.Greedy)).ToArray();

        // Request i starts once request i − 1 has produced its second token: joins happen mid-generation.
        var started = Enumerable.Range(0, count).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        started[0].SetResult();
        var runs = Enumerable.Range(0, count).Select(i => Task.Run(async () =>
        {
            await started[i].Task;
            var ids = new List<int>();
            await foreach (var ev in engine.GenerateAsync(requests[i]))
            {
                ids.Add(ev.Id);
                if (ids.Count == 2 && i + 1 < count) started[i + 1].TrySetResult();
            }
            if (i + 1 < count) started[i + 1].TrySetResult();
            return ids;
        })).ToArray();
        var results = await Task.WhenAll(runs);

        for (int i = 0; i < count; i++)
        {
            var expected = new ReferenceEngine(model).Generate(requests[i].Prompt, requests[i].MaxNewTokens, SamplingOptions.Greedy);
            Assert.Equal(expected.Skip(requests[i].Prompt.Count), results[i]);
        }
        // Batching really happened: more rows than passes.
        Assert.True(engine.Rows > engine.Steps, $"{engine.Rows} rows in {engine.Steps} steps");
        Assert.Equal(0, engine.ActiveSequences);
    }

    [Fact]
    public async Task StopIdsAndLengthEndSequencesLikeTheReferenceEngine()
    {
        using var model = EngineModels.Build(EngineModels.Dense, seed: 22);
        using var engine = new BatchingEngine(model);
        var reference = new ReferenceEngine(model);
        var free = await EngineModels.Collect(engine.GenerateAsync(new GenerationRequest([1, 2], 8, SamplingOptions.Greedy)));
        var stopAt = new HashSet<int> { free[3].Id };
        var request = new GenerationRequest([1, 2], 8, SamplingOptions.Greedy, stopAt);
        var got = await EngineModels.Collect(engine.GenerateAsync(request));
        var want = await EngineModels.Collect(reference.GenerateAsync(request));
        Assert.Equal(want.Select(e => (e.Id, e.Finish)), got.Select(e => (e.Id, e.Finish)));
        Assert.Equal(FinishReason.Stop, got[^1].Finish);

        // Near the end of the context the sequence stops with Length even with budget left.
        var prompt = EngineModels.Prompt(EngineModels.Dense.ContextLength - 3, EngineModels.Dense.VocabSize, 1);
        var tail = await EngineModels.Collect(engine.GenerateAsync(new GenerationRequest(prompt, 50, SamplingOptions.Greedy)));
        Assert.Equal(3, tail.Count);
        Assert.Equal(FinishReason.Length, tail[^1].Finish);
        Assert.Empty(await EngineModels.Collect(engine.GenerateAsync(new GenerationRequest([1], 0, SamplingOptions.Greedy))));
        var single = Assert.Single(engine.Score([5], 2));
        Assert.True(float.IsNaN(single.Logprob));
    }

    [Fact]
    public void BadRequestsThrowArgumentExceptionBeforeAnyWork()
    {
        using var model = EngineModels.Build(EngineModels.Dense, seed: 23);
        using var engine = new BatchingEngine(model);
        int V = model.Config.VocabSize, ctx = model.Config.ContextLength;
        var g = SamplingOptions.Greedy;
        Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest([], 4, g)));
        Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest([1, V], 4, g)));
        Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest([-1], 4, g)));
        Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest(new int[ctx + 1], 4, g)));
        Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest(new int[ctx], 1, g)));
        Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest([1], -1, g)));
        Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest([1], 4, new SamplingOptions { TopP = 0 })));
        Assert.Throws<ArgumentException>(() => engine.Score([], 0));
        Assert.Throws<ArgumentException>(() => engine.Embed([V + 3]));
        Assert.Equal(0, engine.Steps);
    }

    [Fact]
    public async Task CancellingMidGenerationFreesTheSlot()
    {
        using var model = EngineModels.Build(EngineModels.Dense with { ContextLength = 400 }, seed: 24);
        // One slot; a reader may fall at most 8 tokens behind, so a cancelled stream cannot have run to its end.
        using var engine = new BatchingEngine(model, new BatchingOptions { MaxSequences = 1, MaxBufferedTokens = 8 });
        var long_ = new GenerationRequest([3], 300, SamplingOptions.Greedy);

        // Cancel through the token after two tokens.
        using (var cts = new CancellationTokenSource())
        {
            var got = await EngineModels.Collect(engine.GenerateAsync(long_, cts.Token), cancelAfter: 2, cts);
            Assert.Equal(2, got.Count);
        }
        await WaitUntilIdle(engine);
        Assert.InRange(engine.Rows, 1, 1 + 2 + 8 + 1);

        // Abandon the enumeration (a client that disconnects) after three tokens.
        long before = engine.Rows;
        int n = 0;
        await foreach (var _ in engine.GenerateAsync(long_)) if (++n == 3) break;
        await WaitUntilIdle(engine);
        Assert.InRange(engine.Rows - before, 1, 1 + 3 + 8 + 1);

        // The only slot is free again: a new request runs to completion.
        var after = await EngineModels.Collect(engine.GenerateAsync(new GenerationRequest([3], 5, SamplingOptions.Greedy)));
        Assert.Equal(5, after.Count);
        Assert.Equal(FinishReason.Length, after[^1].Finish);
    }

    [Fact]
    public async Task ScoreAndEmbedInterleaveWithGeneration()
    {
        using var model = EngineModels.Build(EngineModels.MoeTop1, seed: 25);
        using var engine = new BatchingEngine(model, new BatchingOptions { MaxSequences = 2 });
        var ids = EngineModels.Prompt(10, model.Config.VocabSize, 3);
        var alone = engine.Score(ids, 2);
        var embedAlone = engine.Embed(ids);
        var gen = Task.Run(() => EngineModels.Collect(engine.GenerateAsync(new GenerationRequest([5], 30, SamplingOptions.Greedy))));
        var scores = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => engine.Score(ids, 2))));
        var embeds = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(() => engine.Embed(ids))));
        // A one-shot job runs as its own pass over the same rows, so concurrency cannot change a bit.
        foreach (var s in scores)
            for (int i = 0; i < ids.Length; i++) Assert.Equal(alone[i], s[i] with { Top = alone[i].Top }, new TokenEventComparer());
        foreach (var e in embeds) Assert.Equal(embedAlone, e);
        var expected = new ReferenceEngine(model).Generate([5], 30, SamplingOptions.Greedy);
        Assert.Equal(expected.Skip(1), (await gen).Select(e => e.Id));
    }

    sealed class TokenEventComparer : IEqualityComparer<TokenEvent>
    {
        public bool Equals(TokenEvent? a, TokenEvent? b) => a!.Id == b!.Id && a.Logprob.Equals(b.Logprob) && a.Top.SequenceEqual(b.Top);
        public int GetHashCode(TokenEvent e) => e.Id;
    }

    static async Task WaitUntilIdle(BatchingEngine engine)
    {
        for (int i = 0; i < 500 && (engine.ActiveSequences > 0 || engine.Waiting > 0); i++) await Task.Delay(10);
        Assert.Equal(0, engine.ActiveSequences);
        Assert.Equal(0, engine.Waiting);
    }
}
