namespace Tessera.Kernels.Reference;

/// <summary>Scalar twin of <see cref="AdamWUpdate"/>: the same operations per element, bit for bit.</summary>
public static class ScalarAdamWUpdate
{
    /// <summary>One AdamW step over equal-length runs, element by element (see <see cref="AdamWUpdate.Update"/>).</summary>
    public static void Update(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, bool decay, in AdamWConstants k)
    {
        if (g.Length != p.Length || m.Length != p.Length || v.Length != p.Length)
            throw new ArgumentException($"ScalarAdamWUpdate: lengths p {p.Length}, g {g.Length}, m {m.Length}, v {v.Length} differ.");
        for (int j = 0; j < p.Length; j++)
        {
            float gj = g[j];
            if (decay) p[j] *= k.Shrink;
            m[j] = m[j] * k.B1 + gj * k.OneMinusB1;
            v[j] = v[j] * k.B2 + gj * gj * k.OneMinusB2;
            float denom = MathF.Sqrt(v[j]) / k.Bc2Sqrt + k.Eps;
            p[j] -= k.StepSize * (m[j] / denom);
        }
    }
}
