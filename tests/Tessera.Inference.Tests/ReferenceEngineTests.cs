using Tessera.Model;

namespace Tessera.Inference.Tests;

public class ReferenceEngineTests
{
    static readonly ModelConfig Tiny = new() { VocabSize = 32, Dim = 16, Layers = 2, Heads = 2, KvHeads = 1, HiddenDim = 24, Experts = 2, TopK = 1, ContextLength = 16 };

    static async Task<List<TokenEvent>> Collect(IAsyncEnumerable<TokenEvent> events)
    {
        var list = new List<TokenEvent>();
        await foreach (var e in events) list.Add(e);
        return list;
    }

    [Fact]
    public async Task GreedyIsTheArgmaxOfOneWholeSequenceForwardAndReportsLength()
    {
        using var model = new Transformer(Tiny, seed: 5);
        var engine = new ReferenceEngine(model);
        var events = await Collect(engine.GenerateAsync(new GenerationRequest([1, 2, 3], 6, SamplingOptions.Greedy, TopLogprobs: 3)));
        var expected = engine.Generate([1, 2, 3], 6, SamplingOptions.Greedy);
        Assert.Equal(expected.Skip(3), events.Select(e => e.Id));
        // Causal: one forward over the finished sequence gives, at every position, the logits the
        // token-by-token re-forwards chose from, so each generated token is that row's argmax.
        using (var g = new Tessera.Tensors.Graph(recordGradients: false))
        {
            int V = Tiny.VocabSize;
            var logits = model.Forward(g, [.. expected], 1, expected.Count).Logits.ToArray();   // (T, V)
            for (int t = 3; t < expected.Count; t++)
            {
                var row = logits.AsSpan((t - 1) * V, V);
                Assert.Equal(expected[t], row.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(row)));
            }
        }
        Assert.Equal(FinishReason.Length, events[^1].Finish);
        Assert.All(events.SkipLast(1), e => Assert.Equal(FinishReason.None, e.Finish));
        // Greedy picks the most likely token, so it is the first alternative and its logprob is the max.
        Assert.All(events, e => { Assert.Equal(e.Id, e.Top[0].Id); Assert.Equal(e.Logprob, e.Top[0].Logprob); Assert.True(e.Logprob <= 0); });
    }

    [Fact]
    public async Task ScoringTheGeneratedSequenceGivesTheSameLogprobs()
    {
        using var model = new Transformer(Tiny, seed: 6);
        var engine = new ReferenceEngine(model);
        var events = await Collect(engine.GenerateAsync(new GenerationRequest([4, 5], 5, new SamplingOptions { Seed = 9 })));
        var all = new List<int> { 4, 5 };
        all.AddRange(events.Select(e => e.Id));
        var scored = engine.Score(all, 2);
        Assert.True(float.IsNaN(scored[0].Logprob));
        for (int i = 0; i < events.Count; i++)
            Assert.Equal(events[i].Logprob, scored[i + 2].Logprob, 1e-5f);   // same logits, different sequence lengths in one forward
    }

    [Fact]
    public async Task StopIdEndsWithStopAndBadRequestsFailUpFront()
    {
        using var model = new Transformer(Tiny, seed: 7);
        var engine = new ReferenceEngine(model);
        var free = await Collect(engine.GenerateAsync(new GenerationRequest([1], 4, SamplingOptions.Greedy)));
        var stopped = await Collect(engine.GenerateAsync(new GenerationRequest([1], 4, SamplingOptions.Greedy, new HashSet<int> { free[1].Id })));
        Assert.Equal(FinishReason.Stop, stopped[^1].Finish);
        Assert.Equal(free[1].Id, stopped[^1].Id);
        await Assert.ThrowsAsync<ArgumentException>(async () => await Collect(engine.GenerateAsync(new GenerationRequest([], 1, SamplingOptions.Greedy))));
        await Assert.ThrowsAsync<ArgumentException>(async () => await Collect(engine.GenerateAsync(new GenerationRequest([99], 1, SamplingOptions.Greedy))));
        await Assert.ThrowsAsync<ArgumentException>(async () => await Collect(engine.GenerateAsync(new GenerationRequest(Enumerable.Repeat(1, 16).ToArray(), 1, SamplingOptions.Greedy))));
    }

    [Fact]
    public void SynchronousGenerateIsDeterministic_StopsAtAStopIdOrAFullContext_AndRejectsBadPrompts()
    {
        var small = Tiny with { ContextLength = 8 };
        using var model = new Transformer(small, seed: 3);
        var engine = new ReferenceEngine(model);
        var a = engine.Generate([1, 2, 3], 12, SamplingOptions.Greedy);
        Assert.Equal(a, engine.Generate([1, 2, 3], 12, SamplingOptions.Greedy));
        Assert.Equal(8, a.Count);                                         // the context is full: it stops, as every engine does
        Assert.Equal(new[] { 1, 2, 3 }, a.Take(3));
        var free = engine.Generate([1], 6, SamplingOptions.Greedy);
        var stopped = engine.Generate([1], 6, SamplingOptions.Greedy, new HashSet<int> { free[2] });
        Assert.Equal(free.Take(stopped.Count), stopped);
        Assert.Equal(free[2], stopped[^1]);
        Assert.True(stopped.Count <= 3);
        Assert.Throws<ArgumentException>(() => engine.Generate([99], 1, SamplingOptions.Greedy));
        Assert.Throws<ArgumentException>(() => engine.Generate([], 1, SamplingOptions.Greedy));
        Assert.Throws<ArgumentException>(() => engine.Generate([1, 2, 3, 4, 5, 6, 7, 8], 1, SamplingOptions.Greedy));
    }

    [Fact]
    public void EmbeddingsAreUnitLengthAndDependOnTheText()
    {
        using var model = new Transformer(Tiny, seed: 8);
        var engine = new ReferenceEngine(model);
        var a = engine.Embed([1, 2, 3]);
        var b = engine.Embed([9, 8, 7]);
        Assert.Equal(1.0, Math.Sqrt(a.Sum(x => (double)x * x)), 1e-5);
        Assert.NotEqual(a, b);
    }
}
