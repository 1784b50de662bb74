using Tessera.Kernels.Reference;

namespace Tessera.Inference.Tests;

/// <summary>
/// <see cref="PanelWeights"/>/<see cref="PanelMatMul"/>: bit-equal to their scalar twin, within the
/// dot-product error bound of an independent reference (ScalarGemm on the row-major matrix), and
/// batch-invariant — a row's output does not depend on the other rows of the call or on threads.
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

    static readonly int[] RowCounts = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 17, 32, 37, 65];

    [Theory]
    [InlineData(1, 1)]       // a one-element matrix: one panel, 63 padding rows
    [InlineData(5, 3)]
    [InlineData(63, 16)]
    [InlineData(64, 33)]     // exactly one panel
    [InlineData(65, 100)]    // a full panel and a one-row panel
    [InlineData(200, 64)]
    [InlineData(130, 257)]
    public void MatchesTheScalarTwinBitForBitAndTheReferenceWithinTheBound(int rows, int k)
    {
        var w = Random(rows * k, rows * 7 + k);
        var packed = PanelWeights.Pack(w, rows, k);
        Assert.Equal(w, packed.ToArray());
        double gamma = k * U / (1 - k * U);
        foreach (int n in RowCounts)
        {
            var x = Random(n * k, n + 3);
            var got = new float[n * rows];
            var twin = new float[n * rows];
            var want = new float[n * rows];
            packed.MatMul(x, n, got);
            packed.ScalarMatMul(x, n, twin);
            Assert.Equal(twin, got);
            ScalarGemm.Sgemm(false, true, n, rows, k, x, k, w, k, want, rows);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < rows; j++)
                {
                    // Two K-term dot products in different orders: each within γ_K·Σ|x·w| of the exact value.
                    double mag = 0;
                    for (int p = 0; p < k; p++) mag += Math.Abs((double)x[i * k + p] * w[j * k + p]);
                    Assert.True(Math.Abs(got[i * rows + j] - want[i * rows + j]) <= 2 * gamma * mag,
                        $"n={n} ({i},{j}): {got[i * rows + j]} vs {want[i * rows + j]}");
                }
        }
    }

    [Fact]
    public void EachRowIsTheSameWhateverElseSharesTheCall()
    {
        int rows = 300, k = 384;
        var packed = PanelWeights.Pack(Random(rows * k, 5), rows, k);
        var x = Random(40 * k, 6);
        var all = new float[40 * rows];
        packed.MatMul(x, 40, all);
        var one = new float[rows];
        for (int i = 0; i < 40; i++)
        {
            packed.MatMul(x.AsSpan(i * k, k), 1, one);
            Assert.Equal(all.AsSpan(i * rows, rows).ToArray(), one);
        }
        // A block of 7 starting at row 9 (row blocks 4+3 instead of the 6-row blocks of the 40-row call).
        var seven = new float[7 * rows];
        packed.MatMul(x.AsSpan(9 * k, 7 * k), 7, seven);
        Assert.Equal(all.AsSpan(9 * rows, 7 * rows).ToArray(), seven);
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
