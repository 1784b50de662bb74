using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>
/// Finite-difference gradient check. The op's output y is projected onto a random direction R
/// (L = Σ R⊙y, accumulated in double), the analytic gradient comes from Backward(y, seed: R), and
/// each input element is compared with the central difference D(h) = (L(x+h) − L(x−h)) / (x₊ − x₋),
/// where x₊, x₋ are the fp32 values actually stored (so input rounding does not count as error).
///
/// Tolerance, per element, from the two error sources of D(h):
///  • roundoff: each fp32 output carries an error ≲ (4 + n)·u·max|y| (n = the op's longest
///    reduction, u = 2⁻²⁴), so |δL| ≤ (4 + n)·u·Σ|R|·max|y| and D(h) is off by ≤ 2|δL|/(x₊ − x₋);
///  • truncation: D(h) = f′ + c·h² + O(h⁴) and D(2h) = f′ + 4c·h² + …, so |D(2h) − D(h)| ≈ 3|c|h²
///    bounds D(h)'s truncation error with a 3× margin — measured, not assumed.
/// plus the analytic gradient's own fp32 rounding, (4 + n)·u·max|analytic|. h = 2⁻⁶ balances the
/// two terms for O(1) inputs. The check also asserts the tolerance stays under 5 % of the gradient
/// scale, so it can never pass vacuously.
/// </summary>
public static class GradCheck
{
    const double U = 1.0 / (1 << 24);

    /// <summary>Checks every input of <paramref name="f"/>; inputs become leaves with RequiresGrad.</summary>
    public static void Check(string what, Tensor[] inputs, Func<Graph, Tensor[], Tensor> f, int reduction = 1, double h = 1.0 / 64, ulong seed = 7)
    {
        foreach (var x in inputs) { x.RequiresGrad = true; x.ZeroGrad(); }
        float[] r; float[] y0;
        using (var g = new Graph())
        {
            var y = f(g, inputs);
            y0 = y.ToArray();
            r = new float[y.Length];
            new Rng(seed).FillUniform(r, -1f, 1f);
            using var seedT = Tensor.FromArray(r, y.Shape);
            g.Backward(y, seedT);
        }
        double maxY = 0, sumR = 0;
        for (int i = 0; i < y0.Length; i++) { maxY = Math.Max(maxY, Math.Abs(y0[i])); sumR += Math.Abs(r[i]); }
        double deltaL = (4 + reduction) * U * sumR * maxY;

        double Loss()
        {
            using var g = new Graph(recordGradients: false);
            var y = f(g, inputs).ToArray();
            double l = 0;
            for (int i = 0; i < y.Length; i++) l += (double)r[i] * y[i];
            return l;
        }

        double Central(Span<float> xs, int j, double step)
        {
            float x0 = xs[j], xp = (float)(x0 + step), xm = (float)(x0 - step);
            xs[j] = xp; double lp = Loss();
            xs[j] = xm; double lm = Loss();
            xs[j] = x0;
            return (lp - lm) / ((double)xp - xm);
        }

        for (int i = 0; i < inputs.Length; i++)
        {
            var x = inputs[i];
            var analytic = x.Grad?.ToArray() ?? new float[x.Length];
            double maxA = 0;
            foreach (var a in analytic) maxA = Math.Max(maxA, Math.Abs(a));
            double worstTol = 0;
            for (int j = 0; j < x.Length; j++)
            {
                var xs = x.AsSpan("GradCheck");
                float x0 = xs[j];
                double d1 = Central(xs, j, h), d2 = Central(xs, j, 2 * h);
                double width = (double)(float)(x0 + h) - (float)(x0 - h);
                double tol = 2 * deltaL / width + Math.Abs(d2 - d1) + (4 + reduction) * U * maxA + 1e-12;
                worstTol = Math.Max(worstTol, tol);
                double err = Math.Abs(analytic[j] - d1);
                if (!(err <= tol))
                    throw new Xunit.Sdk.XunitException(
                        $"{what}: input {i} '{x.Name}' {x.ShapeString} element {j}: analytic {analytic[j]:G9}, finite difference {d1:G9} (2h: {d2:G9}), |err| {err:E3} > tol {tol:E3}");
            }
            if (x.Length > 0 && !(worstTol <= 0.05 * Math.Max(maxA, 1e-3)))
                throw new Xunit.Sdk.XunitException($"{what}: input {i} tolerance {worstTol:E3} is not small next to the gradient scale {maxA:E3}; the check would be vacuous.");
        }
    }

    /// <summary>A leaf tensor of uniform values in [lo, hi).</summary>
    public static Tensor Random(Rng rng, int[] shape, string name, float lo = -1f, float hi = 1f)
    {
        var t = Tensor.Zeros(shape, name);
        rng.FillUniform(t, lo, hi);
        return t;
    }
}
