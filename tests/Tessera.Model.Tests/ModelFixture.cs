using Tessera.Tensors;

namespace Tessera.Model.Tests;

/// <summary>
/// Builds the Tessera model described by a reference/model_reference.py fixture (its config, its
/// float32 initial weights) and holds the tolerance helpers the parity tests share.
/// </summary>
public static class ModelFixture
{
    const double U = 1.0 / (1 << 24);

    /// <summary>
    /// Forward values, relative to each tensor's max magnitude. The reference computes in float64
    /// from the same float32 weights, so the difference is our fp32 rounding: each op adds at most
    /// γₙ ≈ (n + 2)·u of its output scale, n ≤ 64 the longest reduction (lm_head over V = 64,
    /// CE over V, Linear over D = 32). Two layers make a forward chain of ~35 ops (embedding, per
    /// layer 2 norms, 4 projections, RoPE, attention, o_proj, router, softmax, gather, normalise,
    /// 3 expert matmuls, SwiGLU, scatter, adds; then norm, lm_head, CE), none amplifying beyond O(1)
    /// (RMSNorm and softmax are well conditioned), so 35·66·u ≈ 1.4e-4. A wrong op is off by O(1).
    /// </summary>
    public static readonly double ForwardTol = 35 * 66 * U;

    /// <summary>
    /// Gradients: backward runs the chain in reverse with about twice the work per op (each op's
    /// backward reads its forward output and adds its own reductions), so twice the forward bound,
    /// 70·66·u ≈ 2.8e-4 of each gradient's max magnitude.
    /// </summary>
    public static readonly double GradTol = 70 * 66 * U;

    public static ModelConfig Config(GoldenFixture fx) => new ModelConfig
    {
        VocabSize = fx.ConfigInt("vocab"), Dim = fx.ConfigInt("dim"), Layers = fx.ConfigInt("layers"),
        Heads = fx.ConfigInt("heads"), KvHeads = fx.ConfigInt("kv_heads"), HiddenDim = fx.ConfigInt("hidden"),
        Experts = fx.ConfigInt("experts"), TopK = fx.ConfigInt("top_k"), TiedEmbeddings = fx.Root.GetProperty("config").GetProperty("tied").GetBoolean(),
        ContextLength = fx.ConfigInt("seq"), NormEps = (float)fx.ConfigDouble("rms_eps"), RopeTheta = (float)fx.ConfigDouble("rope_theta"),
        LoadBalanceCoef = (float)fx.ConfigDouble("aux_coef"), RouterZLossCoef = (float)fx.ConfigDouble("z_coef"),
    }.Validate();

    /// <summary>The fixture's model with its initial weights; the parameter lists must agree name for name.</summary>
    public static Transformer Build(GoldenFixture fx, ModelConfig? config = null)
    {
        var model = new Transformer(config ?? Config(fx), seed: 1);
        var names = fx.ParameterNames;
        Assert.Equal(names, model.Parameters.All.Select(p => p.Name));
        foreach (var n in names)
        {
            Assert.Equal(fx.Shape("init/" + n), model.Parameters[n].Shape.ToArray());
            model.Parameters.Load(n, fx.Floats("init/" + n));
        }
        return model;
    }

    /// <summary>Max |expected − actual| must be within relTol of max |expected|; returns the relative error.</summary>
    public static double Compare(string what, float[] expected, float[] actual, double relTol, Action<string>? log = null)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 0, err = 0; int at = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            double d = Math.Abs((double)expected[i] - actual[i]);
            if (!(d <= err)) { err = d; at = i; }
        }
        log?.Invoke($"{what}: max err {err:E2} / scale {scale:E2} = {err / scale:E2} (tol {relTol:E2})");
        Assert.True(err <= relTol * scale, $"{what}[{at}]: expected {expected[at]:R}, got {actual[at]:R}; |err| {err:E3} > {relTol:E2}·{scale:E3}");
        return err / scale;
    }

    /// <summary>A scalar within <paramref name="relTol"/>·max(1, |expected|).</summary>
    public static void CompareScalar(string what, double expected, double actual, double relTol, Action<string>? log = null)
    {
        double err = Math.Abs(expected - actual);
        log?.Invoke($"{what}: {actual:R} vs {expected:R}, rel err {err / Math.Abs(expected):E2}");
        Assert.True(err <= relTol * Math.Max(1, Math.Abs(expected)), $"{what}: expected {expected:R}, got {actual:R}");
    }
}
