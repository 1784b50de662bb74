using Tessera.Model.Checkpoints;
using Tessera.Tensors;

using Xunit.Abstractions;
using static Tessera.Model.Tests.ModelFixture;

namespace Tessera.Model.Tests;

/// <summary>
/// The training graph of every architecture against reference/arch_reference.py (torch, float64,
/// each family written out from its HF semantics): the HF folder (config.json +
/// model.safetensors) loads through the family's keys and tensor table, and the logits, the mean
/// cross-entropy, every parameter's gradient and a separate prefix pass match. The reference
/// refuses to write a fixture where any family feature (window, soft-caps, QK-norm, 1 + w,
/// √D, RoPE scaling, biases, top-k renormalisation) moves the logits by less than 1%, so a
/// feature Tessera ignored would fail by far more than the tolerance.
/// </summary>
public class ArchParityTests(ITestOutputHelper output)
{
    void Log(string s) => output.WriteLine(s);

    /// <summary>The fixture families.</summary>
    public static readonly TheoryData<string> Families = new()
    {
        "llama", "llama3", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3",
    };

    /// <summary>fixtures/arch/&lt;family&gt;.</summary>
    public static string Dir(string family) => Path.Combine(AppContext.BaseDirectory, "fixtures", "arch", family);

    /// <summary>
    /// Forward tolerance for <paramref name="layers"/> layers: <see cref="ModelFixture.ForwardTol"/>
    /// derives 35 ops for 2 layers (5 outside the layers, 15 per layer) at 66·u each; the families
    /// add at most 5 well-conditioned ops per layer (post-norms, QK-norms, bias, soft-cap), so 20 per layer.
    /// </summary>
    public static double Tol(int layers) => (5 + 20 * layers) * 66.0 / (1 << 24);

    [Theory]
    [MemberData(nameof(Families))]
    public void ForwardLossAndGradientsMatchTheReference(string family)
    {
        var fx = GoldenFixture.Load($"arch/{family}/golden");
        using var model = HfFolder.Load(Dir(family));
        Assert.Equal(fx.ParameterNames.Order(StringComparer.Ordinal), model.Parameters.All.Select(p => p.Name).Order(StringComparer.Ordinal));
        int b = fx.ConfigInt("batch"), t = fx.ConfigInt("seq");
        double tol = Tol(model.Config.Layers);
        using (var g = new Graph())
        {
            var r = model.Forward(g, fx.Ints("input_ids"), b, t, fx.Ints("targets"));
            Compare($"{family} logits", fx.Floats("logits"), r.Logits.ToArray(), tol, Log);
            CompareScalar($"{family} loss", fx.Scalar("loss"), r.CrossEntropy!.Item(), tol, Log);
            if (model.Config.IsMoe) Assert.Equal(fx.Ints("router_assigned"), r.ExpertLoads.SelectMany(l => l.Assigned).ToArray());
            g.Backward(r.CrossEntropy!);
        }
        double worst = 0;
        foreach (var name in fx.ParameterNames)
        {
            var grad = model.Parameters[name].Grad;
            Assert.True(grad is not null, $"{family}: {name} received no gradient");
            worst = Math.Max(worst, Compare($"grad/{name}", fx.Floats("grad/" + name), grad!.ToArray(), 2 * tol, Log));
        }
        Log($"{family}: worst relative gradient error {worst:E2} (tol {2 * tol:E2})");

        using var g2 = new Graph(recordGradients: false);
        var prefix = model.Forward(g2, fx.Ints("prefix/input_ids"), 1, fx.ConfigInt("prefix_len"));
        Compare($"{family} prefix logits", fx.Floats("prefix/logits"), prefix.Logits.ToArray(), tol, Log);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void ConfigRoundTripsThroughHfJsonAndKeepsTheTensorNames(string family)
    {
        var c = HfFolder.ReadConfig(Dir(family));
        var back = ModelConfig.FromHuggingFaceJson(c.ToHuggingFaceJson());
        Assert.Equal(c, back);
        using var a = new Transformer(c);
        using var bm = new Transformer(back);
        Assert.Equal(a.Parameters.All.Select(p => p.Name), bm.Parameters.All.Select(p => p.Name));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void VectorsEqualToEmbeddingRowsGiveBitIdenticalLogits(string family)
    {
        var fx = GoldenFixture.Load($"arch/{family}/golden");
        using var model = HfFolder.Load(Dir(family));
        int b = fx.ConfigInt("batch"), t = fx.ConfigInt("seq"), d = model.Config.Dim;
        var ids = fx.Ints("input_ids");
        using var g = new Graph(recordGradients: false);
        var plain = model.Forward(g, ids, b, t).Logits.ToArray();
        // Every third row becomes a caller-supplied vector equal to its embedding row.
        var mixed = (int[])ids.Clone();
        var table = model.Parameters[model.Recipe.Names.Hf(Architectures.TensorRole.TokenEmbedding)].AsSpan();
        var rows = new List<float>();
        for (int i = 0; i < mixed.Length; i += 3) { rows.AddRange(table.Slice(mixed[i] * d, d).ToArray()); mixed[i] = -1; }
        using var vectors = Tensor.FromArray(rows.ToArray(), [rows.Count / d, d], "vectors");
        var viaVectors = model.Forward(g, mixed, b, t, vectors: vectors).Logits.ToArray();
        Assert.Equal(plain, viaVectors);
    }
}
