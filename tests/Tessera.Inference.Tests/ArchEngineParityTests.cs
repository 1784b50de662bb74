using Tessera.Model.Checkpoints;
using Tessera.Model.Tests;
using Xunit.Abstractions;

namespace Tessera.Inference.Tests;

/// <summary>
/// The inference engine of every architecture against reference/arch_reference.py's golden logits
/// (torch, float64): the whole prompt in one prefill pass, the same prompt one token at a time
/// through the KV cache, and both fixture rows at once in one batched pass over two cache slots.
/// Tolerance as in the training-graph parity test (Tessera.Model.Tests.ArchParityTests):
/// (5 + 20·layers) ops of at most 66·u relative error each.
/// </summary>
public class ArchEngineParityTests(ITestOutputHelper output)
{
    public static readonly TheoryData<string> Families = new()
    {
        "llama", "llama3", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3",
    };

    static string Dir(string family) => Path.Combine(AppContext.BaseDirectory, "fixtures", "arch", family);

    static double Tol(int layers) => (5 + 20 * layers) * 66.0 / (1 << 24);

    [Theory]
    [MemberData(nameof(Families))]
    public void PrefillStepwiseAndBatchedLogitsMatchTheReference(string family)
    {
        var fx = GoldenFixture.Load($"arch/{family}/golden");
        using var model = HfFolder.Load(Dir(family));
        var weights = InferenceWeights.FromTransformer(model);
        var c = weights.Config;
        int b = fx.ConfigInt("batch"), t = fx.ConfigInt("seq"), V = c.VocabSize;
        var ids = fx.Ints("input_ids");
        var expected = fx.Floats("logits");
        double tol = Tol(c.Layers);

        using var decoder = new SequenceDecoder(weights);
        for (int row = 0; row < b; row++)
        {
            var prompt = ids.AsSpan(row * t, t);
            var want = expected.AsSpan(row * t * V, t * V).ToArray();
            decoder.Reset();
            decoder.Feed(prompt, allLogits: true);
            var got = new float[t * V];
            for (int i = 0; i < t; i++) decoder.Logits(i).CopyTo(got.AsSpan(i * V, V));
            Check($"{family} row {row} prefill", want, got, tol);

            decoder.Reset();
            for (int i = 0; i < t; i++) { decoder.Feed(prompt.Slice(i, 1)); decoder.Logits(0).CopyTo(got.AsSpan(i * V, V)); }
            Check($"{family} row {row} step by step", want, got, tol);
        }

        // Both rows in one pass, interleaved, each in its own cache slot.
        using var cache = new KvCache(c, 2);
        cache.Ensure(0); cache.Ensure(1);
        var pass = new ForwardPass(weights, cache, rows: 2 * t);
        var rows = new TokenRow[2 * t];
        var outputs = new int[2 * t];
        for (int i = 0; i < t; i++)
            for (int row = 0; row < 2; row++) { rows[2 * i + row] = new TokenRow(row, i, ids[row * t + i]); outputs[2 * i + row] = 2 * i + row; }
        pass.Run(rows, outputs);
        var batched = new float[2 * t * V];
        for (int i = 0; i < t; i++)
            for (int row = 0; row < 2; row++) pass.Logits(2 * i + row).CopyTo(batched.AsSpan((row * t + i) * V, V));
        Check($"{family} batched", expected, batched, tol);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void VectorRowsEqualToEmbeddingRowsAreBitIdentical(string family)
    {
        var fx = GoldenFixture.Load($"arch/{family}/golden");
        using var model = HfFolder.Load(Dir(family));
        var weights = InferenceWeights.FromTransformer(model);
        int t = fx.ConfigInt("seq"), D = weights.Config.Dim, V = weights.Config.VocabSize;
        var ids = fx.Ints("input_ids").AsSpan(0, t).ToArray();
        using var cache = new KvCache(weights.Config, 1);
        cache.Ensure(0);
        var pass = new ForwardPass(weights, cache, rows: t);
        var outputs = Enumerable.Range(0, t).ToArray();
        pass.Run(Enumerable.Range(0, t).Select(i => new TokenRow(0, i, ids[i])).ToArray(), outputs);
        var plain = Enumerable.Range(0, t).SelectMany(i => pass.Logits(i).ToArray()).ToArray();
        var vectors = new List<float>();
        var rows = new TokenRow[t];
        for (int i = 0; i < t; i++)
        {
            bool asVector = i % 2 == 1;
            if (asVector) vectors.AddRange(weights.Embedding.Row(ids[i]).ToArray());
            rows[i] = new TokenRow(0, i, asVector ? -1 : ids[i]);
        }
        pass.Run(rows, outputs, vectors: vectors.ToArray());
        var mixed = Enumerable.Range(0, t).SelectMany(i => pass.Logits(i).ToArray()).ToArray();
        Assert.Equal(plain, mixed);
        Assert.Equal(t * V, mixed.Length);
        Assert.Throws<ArgumentException>(() => pass.Run(rows, outputs, vectors: vectors.Take(D).ToArray()));
    }

    void Check(string what, float[] expected, float[] actual, double relTol)
    {
        double scale = 0, err = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            err = Math.Max(err, Math.Abs((double)expected[i] - actual[i]));
        }
        output.WriteLine($"{what}: max err {err:E2} / scale {scale:E2} (tol {relTol:E2})");
        Assert.True(err <= relTol * scale, $"{what}: max |err| {err:E3} > {relTol:E2}·{scale:E3}");
    }
}
