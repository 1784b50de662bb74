using System.Runtime.InteropServices;
using Tessera.Model;
using Tessera.Model.Modules;
using Tessera.Tensors;

namespace Tessera.Inference.Tests;

/// <summary>
/// Modules in the KV-cache engine (<see cref="InferenceModules"/> in <see cref="ForwardPass"/>, turned
/// on per request in <see cref="BatchingEngine"/>): the logits match the training forward with the
/// same modules routed on; a pass mixing sequences with different modules gives each the bits it gets
/// alone; a base-only request is bit-identical to an engine without modules; unknown ids are refused.
/// </summary>
public class ModuleEngineTests
{
    public static TheoryData<string, ModuleKind> Cases => new()
    {
        { "dense", ModuleKind.Experts }, { "dense", ModuleKind.Lora }, { "moe2", ModuleKind.Experts }, { "moe2", ModuleKind.Lora },
        { "qwen2", ModuleKind.Lora }, { "gemma2", ModuleKind.Experts },
    };

    /// <summary>A base with modules "a" and "b" of <paramref name="kind"/> on layers 0 and 1, with weights large enough to change predictions.</summary>
    static Transformer Build(string name, ModuleKind kind, ulong seed = 21)
    {
        var c = EngineModels.ByName(name);
        var model = EngineModels.Build(c, seed);
        string[] projections = c.IsMoe ? ["q_proj", "k_proj", "v_proj", "o_proj"] : ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
        foreach (var (id, s) in new[] { ("a", seed + 1), ("b", seed + 2) })
        {
            var m = new ModelModule(new ModuleSpec(id, kind, [0, 1], Experts: 2, HiddenDim: kind == ModuleKind.Experts ? 20 : 0, Rank: 4, Projections: projections), c, s);
            var rng = new Rng(s + 77);
            foreach (var t in m.Parameters.All)
                if (t.Name.EndsWith(".b.weight", StringComparison.Ordinal)) rng.FillNormal(t.AsSpan(), 0f, 0.5f);   // a fresh B is zero
                else if (kind == ModuleKind.Experts) foreach (ref float v in t.AsSpan()) v *= 20f;
            model.Modules.Attach(m);
        }
        return model;
    }

    static float[] EngineLogits(InferenceWeights w, InferenceModules modules, ulong mask, int[] prompt)
    {
        using var cache = new KvCache(w.Config, 1);
        cache.Ensure(0);
        var pass = new ForwardPass(w, cache, prompt.Length) { Modules = modules };
        pass.SetModules(0, mask);
        var rows = new TokenRow[prompt.Length];
        for (int i = 0; i < rows.Length; i++) rows[i] = new TokenRow(0, i, prompt[i]);
        pass.Run(rows, [prompt.Length - 1]);
        return pass.Logits(0).ToArray();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EngineLogitsWithModulesOnMatchTheTrainingForward(string name, ModuleKind kind)
    {
        using var model = Build(name, kind);
        var w = InferenceWeights.FromTransformer(model);
        var modules = new InferenceModules(model);
        var prompt = EngineModels.Prompt(12, model.Config.VocabSize, 3);
        foreach (var ids in new[] { Array.Empty<string>(), ["a"], ["b"], new[] { "a", "b" } })
        {
            model.Modules.Route(ids);
            var want = EngineModels.ReferenceLogits(model, prompt);
            var got = EngineLogits(w, modules, modules.Mask(ids), prompt);
            // Only summation orders differ (packed panels vs the graph's GEMM): 1e-4 of the logit scale is
            // ~1000 ulps of headroom, far below what a missing or doubled module term moves (checked below).
            float scale = 1;
            foreach (float v in want) scale = Math.Max(scale, Math.Abs(v));
            for (int v = 0; v < want.Length; v++)
                Assert.True(Math.Abs(want[v] - got[v]) <= 1e-4f * scale, $"{name} {kind} modules [{string.Join(",", ids)}] token {v}: {got[v]} vs the graph's {want[v]}");
        }
        model.Modules.Route(null);
        var off = EngineLogits(w, modules, 0, prompt);
        var on = EngineLogits(w, modules, modules.Mask(["a"]), prompt);
        float diff = 0;
        for (int v = 0; v < on.Length; v++) diff = Math.Max(diff, Math.Abs(on[v] - off[v]));
        Assert.True(diff > 1e-2f, $"module 'a' changes the logits by only {diff}: the test would not see a missing module");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void APassMixingModulesGivesEachSequenceItsLogitsAloneBitForBit(string name, ModuleKind kind)
    {
        using var model = Build(name, kind);
        var w = InferenceWeights.FromTransformer(model);
        var modules = new InferenceModules(model);
        ulong[] masks = [0, modules.Mask(["a"]), modules.Mask(["b"]), modules.Mask(["a", "b"])];
        const int length = 20;   // 80 rows in one pass: past the small-row kernels' limit
        var prompts = Enumerable.Range(0, masks.Length).Select(s => EngineModels.Prompt(length, model.Config.VocabSize, 5 + s)).ToArray();
        using var cache = new KvCache(model.Config, masks.Length);
        var pass = new ForwardPass(w, cache, masks.Length * length) { Modules = modules };
        for (int s = 0; s < masks.Length; s++) { cache.Ensure(s); pass.SetModules(s, masks[s]); }
        var rows = new List<TokenRow>();
        for (int t = 0; t < length; t++)   // interleaved, as a continuous batch mixes sequences
            for (int s = 0; s < masks.Length; s++) rows.Add(new TokenRow(s, t, prompts[s][t]));
        pass.Run(rows.ToArray(), Enumerable.Range(0, masks.Length).Select(s => (length - 1) * masks.Length + s).ToArray());
        for (int s = 0; s < masks.Length; s++)
        {
            var alone = EngineLogits(w, modules, masks[s], prompts[s]);
            Assert.True(MemoryMarshal.AsBytes(alone.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(pass.Logits(s))), $"sequence {s} (mask {masks[s]}) differs alone and in the mixed pass");
        }
    }

    [Fact]
    public async Task ConcurrentRequestsWithDifferentModulesMatchEachAloneAndTheReferenceEngine()
    {
        using var model = Build("moe2", ModuleKind.Experts);
        var greedy = SamplingOptions.Greedy;
        string[][] selections = [[], ["a"], ["b"], ["a", "b"], ["a"]];
        var requests = selections.Select((ids, i) => new GenerationRequest(EngineModels.Prompt(6 + i, model.Config.VocabSize, i), 10, greedy, TopLogprobs: 2) { Modules = ids }).ToArray();

        List<TokenEvent>[] together;
        using (var engine = new BatchingEngine(model))
            together = await Task.WhenAll(requests.Select(r => EngineModels.Collect(engine.GenerateAsync(r))));
        var reference = new ReferenceEngine(model);
        using var noModules = new BatchingEngine(InferenceWeights.FromTransformer(model));
        for (int i = 0; i < requests.Length; i++)
        {
            List<TokenEvent> alone;
            using (var engine = new BatchingEngine(model, new BatchingOptions { MaxSequences = 1 }))
                alone = await EngineModels.Collect(engine.GenerateAsync(requests[i]));
            Assert.Equal(Describe(alone), Describe(together[i]));   // ids and log-probabilities, bit for bit
            var slow = await EngineModels.Collect(reference.GenerateAsync(requests[i]));
            Assert.Equal(slow.Select(e => e.Id), alone.Select(e => e.Id));
            if (selections[i].Length == 0)
                Assert.Equal(Describe(await EngineModels.Collect(noModules.GenerateAsync(requests[i] with { Modules = null }))), Describe(alone));
        }
        Assert.NotEqual(together[0].Select(e => e.Id), together[1].Select(e => e.Id));   // the module changes the reply
    }

    static string Describe(List<TokenEvent> events)
        => string.Join(" ", events.Select(e => $"{e.Id}:{BitConverter.SingleToInt32Bits(e.Logprob):x8}[{string.Join(",", e.Top.Select(t => $"{t.Id}:{BitConverter.SingleToInt32Bits(t.Logprob):x8}"))}]{e.Finish}"));

    [Fact]
    public async Task UnknownModuleIdsAreRefusedBeforeAnyWorkAndTheEngineKeepsServing()
    {
        using var model = Build("dense", ModuleKind.Lora);
        using var engine = new BatchingEngine(model);
        var prompt = EngineModels.Prompt(5, model.Config.VocabSize, 1);
        var greedy = SamplingOptions.Greedy;
        var e = Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest(prompt, 3, greedy) { Modules = ["nope"] }));
        Assert.Contains("Module 'nope' is not attached", e.Message);
        Assert.Contains("a, b", e.Message);
        Assert.Throws<ArgumentException>(() => engine.Score(prompt, 0, ["nope"]));
        Assert.Throws<ArgumentException>(() => new ReferenceEngine(model).GenerateAsync(new GenerationRequest(prompt, 3, greedy) { Modules = ["nope"] }));
        Assert.Equal(3, (await EngineModels.Collect(engine.GenerateAsync(new GenerationRequest(prompt, 3, greedy) { Modules = ["b"] }))).Count);
        using var bare = new BatchingEngine(InferenceWeights.FromTransformer(model));
        Assert.Contains("attached: none", Assert.Throws<ArgumentException>(() => bare.GenerateAsync(new GenerationRequest(prompt, 3, greedy) { Modules = ["a"] })).Message);
    }

    [Fact]
    public void ScoringWithAModuleEqualsTheGraphsLogProbabilities()
    {
        using var model = Build("dense", ModuleKind.Experts);
        using var engine = new BatchingEngine(model);
        var prompt = EngineModels.Prompt(9, model.Config.VocabSize, 2);
        var scored = engine.Score(prompt, 0, ["b"]);
        model.Modules.Route(["b"]);
        using var g = new Graph(recordGradients: false);
        var logits = model.Forward(g, prompt, 1, prompt.Length).Logits.AsSpan().ToArray();
        int V = model.Config.VocabSize;
        float scale = 1;
        foreach (float v in logits) scale = Math.Max(scale, Math.Abs(v));
        for (int i = 1; i < prompt.Length; i++)
        {
            float want = ReferenceEngine.Describe(logits.AsSpan((i - 1) * V, V), prompt[i], 0).Logprob;
            Assert.True(Math.Abs(want - scored[i].Logprob) <= 2e-4f * scale, $"position {i}: {scored[i].Logprob} vs the graph's {want}");
        }
        var baseScores = engine.Score(prompt, 0);
        Assert.Contains(Enumerable.Range(1, prompt.Length - 1), i => Math.Abs(baseScores[i].Logprob - scored[i].Logprob) > 1e-2f);
    }
}
