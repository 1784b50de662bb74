using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tessera.Kernels;

/// <summary>
/// fp32 exp for the fused kernels (softmax, cross-entropy, activations), in Vector512, Vector256
/// and scalar form. All three run the same operations in the same order, so a scalar tail gives
/// bit-identical results to a vector lane and a kernel's output does not depend on where a row
/// starts relative to the vector width.
/// </summary>
/// <remarks>
/// Algorithm: Cody–Waite reduction x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split so n·ln2hi is exact),
/// degree-7 Taylor polynomial for eʳ (truncation |r|⁸/8! &lt; 5.3e-9 ≈ 0.09u), then scaling by 2ⁿ
/// as two exact power-of-two factors so results in the subnormal range are rounded once and
/// overflow / underflow saturate to ∞ / 0 without special cases. NaN propagates through the
/// clamp. <see cref="MaxRelativeError"/> is the bound the tests check and the kernel tolerances use.
/// TensorPrimitives.Exp / Vector512.Exp compute through double and are ~4× slower, which is why
/// this exists.
/// </remarks>
public static class VectorMath
{
    /// <summary>
    /// Bound on |Exp(x) − eˣ| / eˣ for results in the normal range, in units of u = 2⁻²⁴
    /// (measured maximum 1.30u over every 8th float in [−104, 88.7]; the kernel tests re-check a
    /// dense sweep). Results below
    /// the smallest normal float have absolute error ≤ 2⁻¹⁴⁹.
    /// </summary>
    public const double MaxRelativeErrorInU = 2.0;

    /// <summary><see cref="MaxRelativeErrorInU"/> as a plain relative error.</summary>
    public const double MaxRelativeError = MaxRelativeErrorInU / (1 << 24);

    const float Log2E = 1.44269504088896341f;
    const float Ln2Hi = 0.693359375f;            // 9 significant bits: n·Ln2Hi is exact for |n| ≤ 2¹⁵
    const float Ln2Lo = -2.12194440054690583e-4f; // ln2 − Ln2Hi
    // Below −105 the result rounds to 0 and above 89 it overflows, so clamping there changes nothing
    // and keeps n in [−152, 129], where both halves of 2ⁿ are normal floats.
    const float ClampLo = -105f;
    const float ClampHi = 89f;
    const float C2 = 1f / 2, C3 = 1f / 6, C4 = 1f / 24, C5 = 1f / 120, C6 = 1f / 720, C7 = 1f / 5040;

    /// <summary>eˣ per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        // Min/Max (not MinNative/MaxNative) so a NaN lane stays NaN.
        var xc = Vector512.Min(Vector512.Max(x, Vector512.Create(ClampLo)), Vector512.Create(ClampHi));
        var n = Vector512.Round(xc * Vector512.Create(Log2E));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), xc);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(C7), r, Vector512.Create(C6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f));
        var ni = Vector512.ConvertToInt32(n);
        var half = Vector512.ShiftRightArithmetic(ni, 1);
        var s1 = Vector512.ShiftLeft(half + Vector512.Create(127), 23).AsSingle();
        var s2 = Vector512.ShiftLeft(ni - half + Vector512.Create(127), 23).AsSingle();
        return p * s1 * s2;
    }

    /// <summary>eˣ per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var xc = Vector256.Min(Vector256.Max(x, Vector256.Create(ClampLo)), Vector256.Create(ClampHi));
        var n = Vector256.Round(xc * Vector256.Create(Log2E));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), xc);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(C7), r, Vector256.Create(C6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C5));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f));
        var ni = Vector256.ConvertToInt32(n);
        var half = Vector256.ShiftRightArithmetic(ni, 1);
        var s1 = Vector256.ShiftLeft(half + Vector256.Create(127), 23).AsSingle();
        var s2 = Vector256.ShiftLeft(ni - half + Vector256.Create(127), 23).AsSingle();
        return p * s1 * s2;
    }

    /// <summary>eˣ, bit-identical to one lane of the vector overloads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x)
    {
        float xc = MathF.Min(MathF.Max(x, ClampLo), ClampHi);
        float n = MathF.Round(xc * Log2E, MidpointRounding.ToEven);
        float r = MathF.FusedMultiplyAdd(n, -Ln2Hi, xc);
        r = MathF.FusedMultiplyAdd(n, -Ln2Lo, r);
        float p = MathF.FusedMultiplyAdd(C7, r, C6);
        p = MathF.FusedMultiplyAdd(p, r, C5);
        p = MathF.FusedMultiplyAdd(p, r, C4);
        p = MathF.FusedMultiplyAdd(p, r, C3);
        p = MathF.FusedMultiplyAdd(p, r, C2);
        p = MathF.FusedMultiplyAdd(p, r, 1f);
        p = MathF.FusedMultiplyAdd(p, r, 1f);
        if (float.IsNaN(n)) return x;   // (int)NaN is unspecified; the vector path yields NaN via p
        int ni = (int)n;
        int half = ni >> 1;
        float s1 = BitConverter.Int32BitsToSingle((half + 127) << 23);
        float s2 = BitConverter.Int32BitsToSingle((ni - half + 127) << 23);
        return p * s1 * s2;
    }

    /// <summary>destination[i] = Exp(x[i]). Exact overlap of the two spans is allowed.</summary>
    public static void Exp(ReadOnlySpan<float> x, Span<float> destination)
    {
        if (destination.Length < x.Length)
            throw new ArgumentException($"VectorMath.Exp: destination has {destination.Length} elements, needs {x.Length}.", nameof(destination));
        ref float xs = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float ds = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(destination);
        int i = 0, n = x.Length;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16) Exp(Vector512.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8) Exp(Vector256.LoadUnsafe(ref xs, (nuint)i)).StoreUnsafe(ref ds, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref ds, i) = Exp(Unsafe.Add(ref xs, i));
    }
}
