using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Kernels;

/// <summary>
/// fp16 bit patterns to fp32, exactly (<see cref="QuantFormat.FromHalf"/> is the scalar twin, equal for every input), many
/// at a time. A normal half is its bits moved up with the exponent rebased (integer only); a subnormal one is its 10-bit
/// mantissa times 2⁻²⁴; neither path touches an fp32 subnormal, which would cost a microcode assist per operand. A vector
/// holding an infinity or NaN takes the scalar conversion.
/// </summary>
public static unsafe class Halves
{
    /// <summary>Writes <paramref name="count"/> fp32 values of the fp16 bit patterns at <paramref name="h"/> to <paramref name="f"/>.</summary>
    public static void ToSingle(ushort* h, float* f, int count)
    {
        int i = 0;
        if (Avx512F.IsSupported)
            for (; i + 16 <= count; i += 16)
            {
                var v = Avx512F.ConvertToVector512Int32(Vector256.Load(h + i));
                if (Vector512.EqualsAny(v & Vector512.Create(0x7C00), Vector512.Create(0x7C00))) Scalar(h + i, f + i, 16);
                else Finite(v).Store(f + i);
            }
        if (Avx2.IsSupported)
            for (; i + 8 <= count; i += 8)
            {
                var v = Avx2.ConvertToVector256Int32(Vector128.Load(h + i));
                if (Vector256.EqualsAny(v & Vector256.Create(0x7C00), Vector256.Create(0x7C00))) Scalar(h + i, f + i, 8);
                else Finite(v).Store(f + i);
            }
        Scalar(h + i, f + i, count - i);
    }

    static void Scalar(ushort* h, float* f, int count)
    {
        for (int i = 0; i < count; i++) f[i] = QuantFormat.FromHalf(h[i]);
    }

    /// <summary>Finite fp16 bit patterns (one per int32 lane, upper 16 bits zero) to fp32, exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Finite(Vector512<int> h)
    {
        var normal = Vector512.ShiftLeft(h & Vector512.Create(0x7FFF), 13) + Vector512.Create((127 - 15) << 23);
        var subnormal = Avx512F.ConvertToVector512Single(h & Vector512.Create(0x3FF)) * Vector512.Create(1f / (1 << 24));
        var magnitude = Vector512.ConditionalSelect(Vector512.Equals(h & Vector512.Create(0x7C00), Vector512<int>.Zero), subnormal.AsInt32(), normal);
        return (magnitude | Vector512.ShiftLeft(h & Vector512.Create(0x8000), 16)).AsSingle();
    }

    /// <summary>As <see cref="Finite(Vector512{int})"/>, 8 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Finite(Vector256<int> h)
    {
        var normal = Vector256.ShiftLeft(h & Vector256.Create(0x7FFF), 13) + Vector256.Create((127 - 15) << 23);
        var subnormal = Avx.ConvertToVector256Single(h & Vector256.Create(0x3FF)) * Vector256.Create(1f / (1 << 24));
        var magnitude = Vector256.ConditionalSelect(Vector256.Equals(h & Vector256.Create(0x7C00), Vector256<int>.Zero), subnormal.AsInt32(), normal);
        return (magnitude | Vector256.ShiftLeft(h & Vector256.Create(0x8000), 16)).AsSingle();
    }
}
