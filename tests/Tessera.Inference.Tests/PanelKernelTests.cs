using Tessera.Kernels.Reference;

namespace Tessera.Inference.Tests;

/// <summary>
/// <see cref="PanelWeights"/>, the adapter over Tessera.Kernels' PanelMatMul (whose twin, bound and
/// batch-invariance tests live in Tessera.Kernels.Tests): shapes, and packed vs row-major logits.
/// </summary>
public class PanelKernelTests
{
    const double U = 1.0 / (1 << 24);

    static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    [Fact]
    public void BadShapesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => PanelWeights.Pack(new float[6], 2, 4));
        Assert.Throws<ArgumentException>(() => PanelWeights.Pack([], 0, 4));
        var packed = PanelWeights.Pack(new float[8], 2, 4);
        Assert.Throws<ArgumentException>(() => packed.MatMul(new float[4], 2, new float[4]));
        Assert.Throws<ArgumentException>(() => packed.MatMul(new float[8], 2, new float[3]));
    }

    [Fact]
    public void PackedAndRowMajorWeightsGiveTheSameLogits()
    {
        var config = new Tessera.Model.ModelConfig { VocabSize = 97, Dim = 48, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 80, ContextLength = 64, Experts = 4, TopK = 2 };
        using var model = new Tessera.Model.Transformer(config, seed: 3);
        var packed = InferenceWeights.FromTransformer(model);
        Assert.IsType<PanelWeights>(packed.Layers[0].Experts[0].GateUp);
        Assert.IsType<PanelWeights>(packed.LmHead);
        using var a = new SequenceDecoder(packed);
        using var b = new SequenceDecoder(InferenceWeights.FromTransformer(model, pack: false));
        int[] next = [1, 5, 9, 14, 3];
        for (int step = 0; step < 20; step++)
        {
            a.Feed(next); b.Feed(next);
            var la = a.Logits(0); var lb = b.Logits(0);
            // Only the summation order of each ≤80-term dot product differs (sequential vs 16 lanes + a
            // tree): a few ulps per product, carried through two layers; 1e-4 relative is ~1000 ulps of headroom
            // yet far below any real difference (a wrong weight moves logits by ~1e-1).
            float scale = 1;
            for (int v = 0; v < la.Length; v++) scale = Math.Max(scale, Math.Abs(lb[v]));
            for (int v = 0; v < la.Length; v++) Assert.True(Math.Abs(la[v] - lb[v]) <= 1e-4f * scale, $"step {step} token {v}: {la[v]} vs {lb[v]}");
            next = [Sampler.ArgMax(la)];
        }
    }
}

/// <summary>The whole forward pass is batch-invariant: a sequence's logits do not depend on which other rows share the pass.</summary>
public class BatchInvarianceTests
{
    [Theory]
    [InlineData("dense")]
    [InlineData("moe2")]
    [InlineData("head64odd")]
    public void ASequencesLogitsAreBitIdenticalAloneAndInAMixedPassOfMoreThan64Rows(string name)
    {
        var config = EngineModels.ByName(name);
        using var model = EngineModels.Build(config, seed: 51);
        var weights = InferenceWeights.FromTransformer(model);
        const int sequences = 3, length = 30;   // 90 rows in one pass: more than DecodeMatMul.MaxRows
        var prompts = Enumerable.Range(0, sequences).Select(s => EngineModels.Prompt(length, config.VocabSize, 7 + s)).ToArray();

        using var cache = new KvCache(config, sequences);
        for (int s = 0; s < sequences; s++) cache.Ensure(s);
        var pass = new ForwardPass(weights, cache, sequences * length);
        var rows = new List<TokenRow>();
        for (int t = 0; t < length; t++)   // interleaved, as a continuous batch mixes sequences
            for (int s = 0; s < sequences; s++) rows.Add(new TokenRow(s, t, prompts[s][t]));
        var outputs = Enumerable.Range(0, sequences).Select(s => (length - 1) * sequences + s).ToArray();
        pass.Run(rows.ToArray(), outputs);

        for (int s = 0; s < sequences; s++)
        {
            using var alone = new SequenceDecoder(weights);
            alone.Feed(prompts[s]);
            Assert.Equal(alone.Logits(0).ToArray(), pass.Logits(s).ToArray());
        }
    }
}
