using Tessera.Tensors;

namespace Tessera.Model.Tests;

public class TransformerTests
{
    static readonly ModelConfig TinyMoe = new ModelConfig
    {
        VocabSize = 50, Dim = 16, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 24, Experts = 4, TopK = 2,
        ContextLength = 8, TiedEmbeddings = false,
    }.Validate();

    [Fact]
    public void ParametersUseHuggingFaceNamesAndMatchTheConfigCount()
    {
        using var moe = new Transformer(TinyMoe);
        var names = moe.Parameters.All.Select(p => p.Name).ToArray();
        Assert.Equal("model.embed_tokens.weight", names[0]);
        Assert.Equal("lm_head.weight", names[^1]);
        Assert.Equal("model.norm.weight", names[^2]);
        foreach (var n in new[] { "model.layers.1.input_layernorm.weight", "model.layers.1.self_attn.k_proj.weight",
                     "model.layers.0.post_attention_layernorm.weight", "model.layers.1.block_sparse_moe.gate.weight",
                     "model.layers.1.block_sparse_moe.experts.3.w2.weight" })
            Assert.Contains(n, names);
        Assert.Equal(new[] { 8, 16 }, moe.Parameters["model.layers.0.self_attn.v_proj.weight"].Shape.ToArray()); // 2 kv heads × 4
        Assert.Equal(TinyMoe.ParameterCount, moe.Parameters.ElementCount);

        using var dense = new Transformer(TinyMoe with { Experts = 1, TopK = 1, TiedEmbeddings = true });
        var dn = dense.Parameters.All.Select(p => p.Name).ToArray();
        Assert.DoesNotContain("lm_head.weight", dn);
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", dn);
        Assert.Contains("model.layers.0.mlp.down_proj.weight", dn);
        Assert.Equal(dense.Config.ParameterCount, dense.Parameters.ElementCount);
    }

    [Fact]
    public void InitIsSeededAndScaledByRole()
    {
        var big = TinyMoe with { Dim = 64, HiddenDim = 128, Layers = 4, Heads = 4, KvHeads = 4 };
        using var a = new Transformer(big, seed: 7);
        using var b = new Transformer(big, seed: 7);
        using var c = new Transformer(big, seed: 8);
        foreach (var p in a.Parameters.All)
            Assert.True(p.ToArray().AsSpan().SequenceEqual(b.Parameters[p.Name].ToArray()), $"{p.Name} differs for the same seed");
        Assert.False(a.Parameters["model.layers.0.self_attn.q_proj.weight"].ToArray().AsSpan()
            .SequenceEqual(c.Parameters["model.layers.0.self_attn.q_proj.weight"].ToArray()));

        Assert.All(a.Parameters["model.layers.2.input_layernorm.weight"].ToArray(), v => Assert.Equal(1f, v));
        // Sample std of n normals is within ~4/√(2n) relative of the truth with overwhelming probability.
        AssertStd(a.Parameters["model.layers.0.self_attn.q_proj.weight"].ToArray(), 0.02);
        AssertStd(a.Parameters["model.embed_tokens.weight"].ToArray(), 0.02);
        AssertStd(a.Parameters["model.layers.3.self_attn.o_proj.weight"].ToArray(), 0.02 / Math.Sqrt(8));
        AssertStd(a.Parameters["model.layers.1.block_sparse_moe.experts.2.w2.weight"].ToArray(), 0.02 / Math.Sqrt(8));
        AssertStd(a.Parameters["model.layers.1.block_sparse_moe.experts.2.w1.weight"].ToArray(), 0.02);

        Assert.True(a.Parameters.Decays(a.Parameters["model.layers.0.self_attn.q_proj.weight"]));
        Assert.True(a.Parameters.Decays(a.Parameters["lm_head.weight"]));
        Assert.False(a.Parameters.Decays(a.Parameters["model.embed_tokens.weight"]));
        Assert.False(a.Parameters.Decays(a.Parameters["model.norm.weight"]));
    }

    static void AssertStd(float[] x, double expected)
    {
        double mean = x.Average(v => (double)v);
        double std = Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / x.Length);
        double tol = 4 / Math.Sqrt(2.0 * x.Length);
        Assert.True(Math.Abs(std / expected - 1) < tol, $"std {std:E3}, expected {expected:E3} ± {tol:P1}");
        Assert.True(Math.Abs(mean) < 5 * expected / Math.Sqrt(x.Length), $"mean {mean:E3} is not ≈ 0");
    }

    [Fact]
    public void ExpertLoadIsReportedPerLayerAndEveryParameterGetsAGradient()
    {
        using var model = new Transformer(TinyMoe, seed: 3);
        var ids = Enumerable.Range(0, 16).Select(i => i * 7 % 50).ToArray();
        var tg = Enumerable.Range(0, 16).Select(i => i * 11 % 50).ToArray();
        using var g = new Graph();
        var r = model.Forward(g, ids, 2, 8, tg);
        Assert.Equal(2, r.ExpertLoads.Count);
        Assert.Same(r.ExpertLoads, model.LastExpertLoads);
        foreach (var l in r.ExpertLoads)
        {
            Assert.Equal(16, l.Tokens);
            Assert.Equal(16 * 2, l.Assigned.Sum());       // every token picks k = 2 experts
            Assert.Equal(l.Assigned, l.Kept);             // dropless
            Assert.True(l.Dropless);
        }
        g.Backward(r.Loss!);
        foreach (var p in model.Parameters.All) Assert.True(p.Grad is not null, $"{p.Name} has no gradient");
    }

    [Fact]
    public void CapacityKeepsTheFirstAssignmentsInTokenOrder()
    {
        // Capacity ⌈c·N·k/E⌉ with c = 0.5, N = 16, k = 2, E = 4 → 4 per expert, 16 of 32 kept at most.
        var config = TinyMoe with { CapacityFactor = 0.5f };
        Assert.Equal(4, MoeLayer.Capacity(0.5f, 16, 2, 4));
        Assert.Equal(0, MoeLayer.Capacity(0f, 16, 2, 4));
        using var model = new Transformer(config, seed: 3);
        using var dropless = new Transformer(config with { CapacityFactor = 0 }, seed: 3);
        var ids = Enumerable.Range(0, 16).Select(i => i * 7 % 50).ToArray();
        using var g = new Graph(recordGradients: false);
        var capped = model.Forward(g, ids, 2, 8);
        var free = dropless.Forward(g, ids, 2, 8);
        var l0 = capped.ExpertLoads[0];
        Assert.Equal(free.ExpertLoads[0].Assigned, l0.Assigned);   // same router, same first layer input
        for (int e = 0; e < 4; e++) Assert.Equal(Math.Min(l0.Assigned[e], 4), l0.Kept[e]);
        Assert.True(l0.Dropped > 0);
        // Dropped assignments add nothing, so the capped model computes something different.
        Assert.False(capped.Logits.ToArray().AsSpan().SequenceEqual(free.Logits.ToArray()));
    }

    [Theory]
    [InlineData(30, 4, 2, 4, 2, "heads (4) must divide dim (30)")]
    [InlineData(32, 4, 3, 4, 2, "kv-heads (3) must divide heads (4)")]
    [InlineData(32, 4, 2, 4, 5, "top-k (5) must be between 1 and the number of experts (4)")]
    public void ImpossibleConfigsFailWithOneClearLine(int dim, int heads, int kv, int experts, int topK, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => new Transformer(TinyMoe with { Dim = dim, Heads = heads, KvHeads = kv, Experts = experts, TopK = topK }));
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void BadInputsAreRejectedBeforeAnyWork()
    {
        using var model = new Transformer(TinyMoe);
        using var g = new Graph();
        var e = Assert.Throws<ArgumentException>(() => model.Forward(g, new int[2 * 9], 2, 9));
        Assert.Contains("exceeds the model's context length 8", e.Message);
        Assert.Throws<ArgumentException>(() => model.Forward(g, new int[15], 2, 8));
        Assert.Equal(0, g.NodeCount);
    }
}
