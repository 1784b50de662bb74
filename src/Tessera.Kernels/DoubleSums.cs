using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tessera.Kernels;

/// <summary>
/// Float reductions accumulated in double, vectorised with a fixed lane and accumulator order, so
/// a given input always gives the same bits (on any thread count: callers never split one sum).
/// Used where a gradient or a norm sums many products and fp32 accumulation would lose digits.
/// Its twin is <see cref="Reference.ScalarDoubleSums"/> (one double accumulator, index order).
/// </summary>
public static class DoubleSums
{
    /// <summary>Σ aᵢ·bᵢ in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"DoubleSums.Dot: lengths {a.Length} and {b.Length} differ.");
        int j = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && a.Length >= 16)
        {
            Vector256<double> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; j <= a.Length - 16; j += 16)
            {
                var (a0, a1) = Vector256.Widen(Vector256.Create(a.Slice(j, 8)));
                var (a2, a3) = Vector256.Widen(Vector256.Create(a.Slice(j + 8, 8)));
                var (b0, b1) = Vector256.Widen(Vector256.Create(b.Slice(j, 8)));
                var (b2, b3) = Vector256.Widen(Vector256.Create(b.Slice(j + 8, 8)));
                s0 += a0 * b0; s1 += a1 * b1; s2 += a2 * b2; s3 += a3 * b3;
            }
            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; j < a.Length; j++) sum += (double)a[j] * b[j];
        return sum;
    }

    /// <summary>Σ xᵢ² in double.</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x) => Dot(x, x);
}
