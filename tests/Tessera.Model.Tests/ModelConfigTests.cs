namespace Tessera.Model.Tests;

public class ModelConfigTests
{
    [Fact]
    public void PresetsAreValidAndSizedAsNamed()
    {
        foreach (var (name, c) in ModelConfig.Presets) c.Validate();
        Assert.InRange(ModelConfig.Preset("tiny").ParameterCount, 700_000, 1_500_000);
        Assert.InRange(ModelConfig.Preset("small").ParameterCount, 7_000_000, 13_000_000);
        var moe = ModelConfig.Preset("small-moe");
        Assert.True(moe.ParameterCount > moe.ActiveParameterCount);
    }

    [Fact]
    public void ParameterCountMatchesAHandCount()
    {
        // vocab 10, dim 8, 1 layer, 2 heads, 1 kv head (head dim 4), hidden 6, untied, dense:
        // q 64 + o 64 + k 32 + v 32 = 192; mlp 3·8·6 = 144; norms 2·8 = 16; embed+head 2·80 = 160; final norm 8.
        var c = new ModelConfig { VocabSize = 10, Dim = 8, Layers = 1, Heads = 2, KvHeads = 1, HiddenDim = 6, TiedEmbeddings = false }.Validate();
        Assert.Equal(192 + 144 + 16 + 160 + 8, c.ParameterCount);
        // Same with 3 experts top-2 (router 8·3 = 24): all = 3·144 + 24; active = 2·144 + 24.
        var m = c with { Experts = 3, TopK = 2 };
        Assert.Equal(192 + 3 * 144 + 24 + 16 + 160 + 8, m.ParameterCount);
        Assert.Equal(192 + 2 * 144 + 24 + 16 + 160 + 8, m.ActiveParameterCount);
    }

    /// <summary>
    /// Training FLOPs per token counted independently of <see cref="ModelConfig"/>'s arithmetic: from the
    /// shapes of the matrices a built <see cref="Transformer"/> actually multiplies by (each (out, in)
    /// weight costs 2·in·out forward and twice that backward; a token meets top-k of the experts; the
    /// embedding is a gather unless tied to lm_head), plus causal attention summed exactly over the
    /// T positions (position t scores and mixes t + 1 keys). The formula's T/2 average leaves out
    /// exactly the diagonal, 6·layers·heads·head_dim, so it may never exceed this count: an MFU
    /// above 100% against a measured peak could only come from an over-count here.
    /// </summary>
    [Theory]
    [InlineData(1, 1, false, 16)]
    [InlineData(1, 1, true, 32)]
    [InlineData(4, 2, false, 24)]
    [InlineData(3, 1, true, 7)]
    public void TrainingFlopsPerToken_MatchesAnIndependentCountFromTheModelsTensors(int experts, int topK, bool tied, int seq)
    {
        var c = new ModelConfig
        {
            VocabSize = 40, Dim = 24, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = experts > 1 ? 20 : 36,
            Experts = experts, TopK = topK, TiedEmbeddings = tied, ContextLength = 64,
        }.Validate();
        using var model = new Transformer(c);
        double forward = 0;
        int heads = 0, headDim = 0;
        foreach (var p in model.Parameters.All)
        {
            if (p.Rank != 2) continue;                                                 // norm gains: elementwise
            double product = 2.0 * p.Shape[0] * p.Shape[1];
            if (p.Name == "model.embed_tokens.weight") { if (tied) forward += product; continue; }   // gather, or lm_head when tied
            if (p.Name.Contains(".experts.", StringComparison.Ordinal)) product *= (double)topK / experts;
            forward += product;
            if (p.Name == "model.layers.0.self_attn.q_proj.weight") { heads = c.Heads; headDim = p.Shape[0] / c.Heads; }
        }
        Assert.True(heads > 0);
        double keys = 0;
        for (int t = 0; t < seq; t++) keys += t + 1;
        double attentionForward = c.Layers * 2 * (2.0 * heads * headDim) * (keys / seq);   // scores + mix, per token
        double exact = 3 * (forward + attentionForward);                                  // forward + backward (2×)
        double formula = c.TrainingFlopsPerToken(seq);
        Assert.Equal(exact - 6.0 * c.Layers * heads * headDim, formula, 6);
        Assert.True(formula < exact);
    }

    [Theory]
    [InlineData(100, 3, 3, 1, 1, "heads (3) must divide dim (100)")]
    [InlineData(96, 4, 3, 1, 1, "kv-heads (3) must divide heads (4)")]
    [InlineData(96, 4, 4, 4, 5, "top-k (5) must be between 1 and the number of experts (4)")]
    [InlineData(96, 32, 32, 1, 1, "head dim 3")]
    public void ImpossibleConfigsFailWithOneClearLine(int dim, int heads, int kvHeads, int experts, int topK, string message)
    {
        var c = new ModelConfig { Dim = dim, Heads = heads, KvHeads = kvHeads, Experts = experts, TopK = topK };
        var e = Assert.Throws<ArgumentException>(() => c.Validate());
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void HuggingFaceJsonRoundTrips()
    {
        foreach (var (_, c) in ModelConfig.Presets)
        {
            var back = ModelConfig.FromHuggingFaceJson(c.ToHuggingFaceJson());
            Assert.Equal(c, back);
        }
        var odd = ModelConfig.Preset("tiny-moe") with { SlidingWindow = 64, CapacityFactor = 1.25f, Dropout = 0.1f, TiedEmbeddings = false };
        Assert.Equal(odd, ModelConfig.FromHuggingFaceJson(odd.ToHuggingFaceJson()));
    }

    [Fact]
    public void ReadsAMixtralStyleConfigWrittenElsewhere()
    {
        const string json = """
        {"architectures":["MixtralForCausalLM"],"hidden_size":64,"intermediate_size":112,"max_position_embeddings":128,
         "num_attention_heads":4,"num_hidden_layers":2,"num_key_value_heads":2,"num_local_experts":8,
         "num_experts_per_tok":2,"rms_norm_eps":1e-05,"rope_theta":1000000.0,"vocab_size":32000,"tie_word_embeddings":false}
        """;
        var c = ModelConfig.FromHuggingFaceJson(json);
        Assert.Equal((64, 8, 2, 2, 1_000_000f), (c.Dim, c.Experts, c.TopK, c.KvHeads, c.RopeTheta));
        Assert.Contains("missing integer 'num_attention_heads'", Assert.Throws<InvalidDataException>(() => ModelConfig.FromHuggingFaceJson("{}")).Message);
        Assert.Contains("not valid JSON", Assert.Throws<InvalidDataException>(() => ModelConfig.FromHuggingFaceJson("{")).Message);
    }

    [Fact]
    public void DepthDialDerivesAValidModel()
    {
        for (int depth = 1; depth <= 12; depth++)
        {
            var c = ModelConfig.FromDepth(depth, 4096, experts: 4, topK: 2);
            Assert.Equal(depth * 64, c.Dim);
            Assert.True(ModelConfig.FromDepth(depth + 1, 4096).ParameterCount > ModelConfig.FromDepth(depth, 4096).ParameterCount);
        }
    }
}
