namespace Tessera.Kernels.Reference;

/// <summary>Scalar twin of <see cref="DoubleSums"/>: one double accumulator in index order.</summary>
public static class ScalarDoubleSums
{
    /// <summary>Σ aᵢ·bᵢ in double, i = 0, 1, …</summary>
    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"ScalarDoubleSums.Dot: lengths {a.Length} and {b.Length} differ.");
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += (double)a[i] * b[i];
        return sum;
    }
}
