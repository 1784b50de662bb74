using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>
/// The fused distillation loss <see cref="Graph.DistillationKL"/>: finite-difference gradients,
/// the forward value against a double-precision evaluation of the definition, and its edge cases.
/// </summary>
public class DistillOpsTests
{
    const double U = 1.0 / (1 << 24);

    /// <summary>Distinct random ids per row (a partial Fisher–Yates) and random teacher logits.</summary>
    static (int[] ids, float[] values) Teacher(Rng rng, int n, int v, int k, float spread = 3f)
    {
        var ids = new int[n * k];
        var values = new float[n * k];
        var perm = new int[v];
        for (int r = 0; r < n; r++)
        {
            for (int i = 0; i < v; i++) perm[i] = i;
            for (int j = 0; j < k; j++)
            {
                int s = j + rng.NextInt(v - j);
                (perm[j], perm[s]) = (perm[s], perm[j]);
                ids[r * k + j] = perm[j];
            }
        }
        rng.FillUniform(values, -spread, spread);
        return (ids, values);
    }

    /// <summary>T²·mean KL(p ‖ q) straight from the definition, in double.</summary>
    static double Reference(float[] z, int n, int v, int[] ids, float[] values, int k, double t, float[]? tail, out double magnitude)
    {
        double total = 0; magnitude = 0;
        for (int r = 0; r < n; r++)
        {
            double zmax = double.NegativeInfinity, vmax = double.NegativeInfinity;
            for (int c = 0; c < v; c++) zmax = Math.Max(zmax, z[r * v + c]);
            for (int j = 0; j < k; j++) vmax = Math.Max(vmax, values[r * k + j]);
            double zs = 0, vs = 0;
            for (int c = 0; c < v; c++) zs += Math.Exp((z[r * v + c] - zmax) / t);
            for (int j = 0; j < k; j++) vs += Math.Exp((values[r * k + j] - vmax) / t);
            double rest = tail?[r] ?? 0, qRest = 1;
            for (int j = 0; j < k; j++)
            {
                double logP = Math.Log(1 - rest) + (values[r * k + j] - vmax) / t - Math.Log(vs);
                double logQ = (z[r * v + ids[r * k + j]] - zmax) / t - Math.Log(zs);
                total += Math.Exp(logP) * (logP - logQ);
                magnitude += Math.Exp(logP) * (Math.Abs(logP) + Math.Abs(logQ) + Math.Abs(zmax / t));
                qRest -= Math.Exp(logQ);
            }
            if (rest > 0)
            {
                total += rest * (Math.Log(rest) - Math.Log(qRest));
                magnitude += rest * (Math.Abs(Math.Log(rest)) + Math.Abs(Math.Log(qRest)) + 1);   // Q is a sum of positive terms: relative error ≲ V·u
            }
        }
        return t * t * total / n;
    }

    static float[]? Tails(Rng rng, int n, bool withTail)
    {
        if (!withTail) return null;
        var t = new float[n];
        rng.FillUniform(t, 0.05f, 0.6f);
        t[0] = 0f;                                   // a row whose teacher puts nothing outside its top-k
        return t;
    }

    [Theory]
    [InlineData(5, 7, 3, 2.0f, false)]
    [InlineData(5, 7, 3, 2.0f, true)]
    [InlineData(4, 6, 6, 1.0f, false)]   // full support: plain KL between two softmaxes
    [InlineData(3, 9, 1, 0.5f, false)]   // one teacher token: p is one-hot, the loss is T²·CE at temperature T
    [InlineData(3, 9, 1, 0.5f, true)]    // one token plus the lumped rest: a two-bin KL
    [InlineData(6, 12, 4, 1.0f, true)]
    public void Gradient_matches_finite_differences(int n, int v, int k, float t, bool withTail)
    {
        var rng = new Rng((ulong)(n * 100 + v * 10 + k));
        var (ids, values) = Teacher(rng, n, v, k);
        var tail = Tails(rng, n, withTail);
        var logits = GradCheck.Random(rng, [n, v], "logits", -2f, 2f);
        try { GradCheck.Check($"DistillationKL k={k} T={t} tail={withTail}", [logits], (g, a) => g.DistillationKL(a[0], ids, values, k, t, tail), reduction: v); }
        finally { logits.Dispose(); }
    }

    [Theory]
    [InlineData(1, 1, 1, 1.0f, false)]
    [InlineData(17, 33, 8, 2.0f, false)]
    [InlineData(17, 33, 8, 2.0f, true)]
    [InlineData(64, 300, 32, 1.5f, false)]   // enough rows to run on the worker pool
    [InlineData(64, 300, 32, 1.5f, true)]
    [InlineData(8, 257, 257, 4.0f, false)]
    public void Forward_matches_the_definition_in_double(int n, int v, int k, float t, bool withTail)
    {
        var rng = new Rng((ulong)(n * 7 + v * 3 + k));
        var (ids, values) = Teacher(rng, n, v, k);
        var tail = Tails(rng, n, withTail);
        var z = new float[n * v];
        rng.FillUniform(z, -4f, 4f);
        using var logits = Tensor.FromArray(z, [n, v]);
        using var g = new Graph(recordGradients: false);
        double actual = g.DistillationKL(logits, ids, values, k, t, tail).Item();
        double expected = Reference(z, n, v, ids, values, k, t, tail, out double magnitude);
        // Each log term carries fp32 rounding from a length-V sum and a few operations on values of
        // size |log p| + |log q| + |max z|/T; the T²/N scaling applies to that bound too.
        double tol = (8 + v + k) * U * t * t * magnitude / n + U * Math.Abs(expected);
        Assert.True(Math.Abs(actual - expected) <= tol, $"loss {actual:G9} vs {expected:G9}, tol {tol:E3}");
        Assert.True(expected >= 0);
    }

    [Fact]
    public void Loss_is_zero_when_the_student_equals_the_teacher_on_full_support_and_positive_otherwise()
    {
        int n = 6, v = 40;
        var rng = new Rng(3);
        var z = new float[n * v];
        rng.FillUniform(z, -3f, 3f);
        var ids = new int[n * v];
        for (int i = 0; i < ids.Length; i++) ids[i] = i % v;
        using var logits = Tensor.FromArray(z, [n, v]);
        using var g = new Graph(recordGradients: false);
        double same = g.DistillationKL(logits, ids, z, v, 2f).Item();
        // KL = 0 up to the rounding of two length-V normalisers.
        Assert.InRange(same, -(4 + v) * U * 40, (4 + v) * U * 40);
        var shifted = (float[])z.Clone();
        for (int i = 0; i < shifted.Length; i += 3) shifted[i] += 1f;
        Assert.True(g.DistillationKL(logits, ids, shifted, v, 2f).Item() > 1e-3);
    }

    [Fact]
    public void Gradient_is_temperature_times_q_minus_p()
    {
        // One row, V = 4, teacher support {2, 0}: dz = T·(softmax(z/T) − p)/N with dLoss = 1.
        float[] z = [0.5f, -1f, 2f, 0.25f];
        int[] ids = [2, 0];
        float[] tv = [1f, 0f];
        const float t = 2f;
        using var logits = Tensor.FromArray(z, [1, 4]);
        logits.RequiresGrad = true;
        using (var g = new Graph())
        {
            var y = g.DistillationKL(logits, ids, tv, 2, t);
            g.Backward(y);
        }
        double[] q = new double[4];
        double zs = 0;
        for (int i = 0; i < 4; i++) zs += Math.Exp(z[i] / t);
        for (int i = 0; i < 4; i++) q[i] = Math.Exp(z[i] / t) / zs;
        double p2 = Math.Exp(1 / t) / (Math.Exp(1 / t) + 1), p0 = 1 - p2;
        double[] expected = [t * (q[0] - p0), t * q[1], t * (q[2] - p2), t * q[3]];
        var grad = logits.Grad!.ToArray();
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], grad[i], 5);
    }

    [Fact]
    public void Bad_inputs_fail_with_a_clear_message()
    {
        using var logits = Tensor.Zeros([2, 5], "logits");
        using var g = new Graph();
        Assert.Contains("outside the student's vocabulary", Assert.Throws<ArgumentException>(() => g.DistillationKL(logits, [0, 5], [1f, 2f], 1, 1f)).Message);
        Assert.Contains("top-k", Assert.Throws<ArgumentException>(() => g.DistillationKL(logits, new int[12], new float[12], 6, 1f)).Message);
        Assert.Contains("temperature", Assert.Throws<ArgumentException>(() => g.DistillationKL(logits, [0, 1], [1f, 2f], 1, 0f)).Message);
        Assert.Contains("N·k", Assert.Throws<ArgumentException>(() => g.DistillationKL(logits, [0, 1, 2], [1f, 2f, 3f], 1, 1f)).Message);
        Assert.Contains("tail mass", Assert.Throws<ArgumentException>(() => g.DistillationKL(logits, [0, 1], [1f, 2f], 1, 1f, [0.5f])).Message);
        Assert.Contains("tail mass", Assert.Throws<ArgumentException>(() => g.DistillationKL(logits, [0, 1], [1f, 2f], 1, 1f, [0.5f, 1f])).Message);
    }
}
