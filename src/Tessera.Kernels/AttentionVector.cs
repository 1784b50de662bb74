using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tessera.Kernels;

/// <summary>
/// The handful of float-vector operations the attention tiles need, as static members so one
/// generic kernel body serves both widths (the operator-struct pattern of TensorPrimitives).
/// The JIT specialises generic methods per struct type argument, so a call through
/// <c>V.Fma</c> compiles to the bare instruction; the wrappers hold one SIMD field and are
/// enregistered (measured: same GFLOP/s as hand-written Vector512 code).
/// </summary>
internal interface IAttentionVector<TSelf> where TSelf : struct, IAttentionVector<TSelf>
{
    /// <summary>Lanes per vector.</summary>
    static abstract int Count { get; }
    static abstract unsafe TSelf Load(float* p);
    static abstract unsafe void Store(TSelf v, float* p);
    static abstract TSelf Splat(float x);
    /// <summary>a·b + c with one rounding.</summary>
    static abstract TSelf Fma(TSelf a, TSelf b, TSelf c);
    static abstract TSelf Add(TSelf a, TSelf b);
    static abstract TSelf Sub(TSelf a, TSelf b);
    static abstract TSelf Mul(TSelf a, TSelf b);
    static abstract TSelf Div(TSelf a, TSelf b);
    static abstract TSelf Max(TSelf a, TSelf b);
    static abstract TSelf Min(TSelf a, TSelf b);
    static abstract TSelf Abs(TSelf x);
    /// <summary>|<paramref name="magnitude"/>| with the sign bit of <paramref name="sign"/>.</summary>
    static abstract TSelf CopySign(TSelf magnitude, TSelf sign);
    /// <summary>Lanes of <paramref name="x"/> below <paramref name="limit"/> become 0, others keep <paramref name="value"/>.</summary>
    static abstract TSelf ZeroWhereBelow(TSelf value, TSelf x, TSelf limit);
    /// <summary>Lanes equal to −∞ become 0 (the "no key seen yet" running max).</summary>
    static abstract TSelf NegativeInfinityToZero(TSelf x);
    /// <summary>Lanes where <paramref name="index"/> &lt; <paramref name="lo"/> or ≥ <paramref name="hi"/> become −∞, others keep <paramref name="value"/> (the causal/window mask).</summary>
    static abstract TSelf NegativeInfinityOutside(TSelf value, TSelf index, TSelf lo, TSelf hi);
    /// <summary>2^n as float, where n is encoded in the low mantissa bits of <c>t = n + 1.5·2²³</c>.</summary>
    static abstract TSelf Pow2FromShifted(TSelf t);
}

/// <summary>512-bit lanes (AVX-512 on Zen 4: the fast path).</summary>
internal readonly struct AttentionVector512 : IAttentionVector<AttentionVector512>
{
    readonly Vector512<float> v;
    AttentionVector512(Vector512<float> v) => this.v = v;

    public static int Count => Vector512<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe AttentionVector512 Load(float* p) => new(Vector512.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe void Store(AttentionVector512 x, float* p) => x.v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector512 Splat(float x) => new(Vector512.Create(x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector512 Fma(AttentionVector512 a, AttentionVector512 b, AttentionVector512 c) => new(Vector512.FusedMultiplyAdd(a.v, b.v, c.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector512 Add(AttentionVector512 a, AttentionVector512 b) => new(a.v + b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector512 Sub(AttentionVector512 a, AttentionVector512 b) => new(a.v - b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector512 Mul(AttentionVector512 a, AttentionVector512 b) => new(a.v * b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector512 Div(AttentionVector512 a, AttentionVector512 b) => new(a.v / b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector512 Max(AttentionVector512 a, AttentionVector512 b) => new(Vector512.Max(a.v, b.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector512 Min(AttentionVector512 a, AttentionVector512 b) => new(Vector512.Min(a.v, b.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector512 Abs(AttentionVector512 x) => new(Vector512.Abs(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AttentionVector512 CopySign(AttentionVector512 magnitude, AttentionVector512 sign)
        => new(Vector512.ConditionalSelect(Vector512.Create(-0f), sign.v, Vector512.Abs(magnitude.v)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AttentionVector512 ZeroWhereBelow(AttentionVector512 value, AttentionVector512 x, AttentionVector512 limit)
        => new(Vector512.ConditionalSelect(Vector512.LessThan(x.v, limit.v), Vector512<float>.Zero, value.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AttentionVector512 NegativeInfinityToZero(AttentionVector512 x)
        => new(Vector512.ConditionalSelect(Vector512.Equals(x.v, Vector512.Create(float.NegativeInfinity)), Vector512<float>.Zero, x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AttentionVector512 NegativeInfinityOutside(AttentionVector512 value, AttentionVector512 index, AttentionVector512 lo, AttentionVector512 hi)
        => new(Vector512.ConditionalSelect(Vector512.LessThan(index.v, lo.v) | Vector512.GreaterThanOrEqual(index.v, hi.v),
            Vector512.Create(float.NegativeInfinity), value.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AttentionVector512 Pow2FromShifted(AttentionVector512 t)
        => new(((t.v.AsInt32() - Vector512.Create(AttentionExp.ShiftBits - 127)) << 23).AsSingle());
}

/// <summary>256-bit lanes: the fallback where AVX-512 is absent (software-emulated where AVX2 is absent too).</summary>
internal readonly struct AttentionVector256 : IAttentionVector<AttentionVector256>
{
    readonly Vector256<float> v;
    AttentionVector256(Vector256<float> v) => this.v = v;

    public static int Count => Vector256<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe AttentionVector256 Load(float* p) => new(Vector256.Load(p));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static unsafe void Store(AttentionVector256 x, float* p) => x.v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector256 Splat(float x) => new(Vector256.Create(x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector256 Fma(AttentionVector256 a, AttentionVector256 b, AttentionVector256 c) => new(Vector256.FusedMultiplyAdd(a.v, b.v, c.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector256 Add(AttentionVector256 a, AttentionVector256 b) => new(a.v + b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector256 Sub(AttentionVector256 a, AttentionVector256 b) => new(a.v - b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector256 Mul(AttentionVector256 a, AttentionVector256 b) => new(a.v * b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector256 Div(AttentionVector256 a, AttentionVector256 b) => new(a.v / b.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector256 Max(AttentionVector256 a, AttentionVector256 b) => new(Vector256.Max(a.v, b.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector256 Min(AttentionVector256 a, AttentionVector256 b) => new(Vector256.Min(a.v, b.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static AttentionVector256 Abs(AttentionVector256 x) => new(Vector256.Abs(x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AttentionVector256 CopySign(AttentionVector256 magnitude, AttentionVector256 sign)
        => new(Vector256.ConditionalSelect(Vector256.Create(-0f), sign.v, Vector256.Abs(magnitude.v)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AttentionVector256 ZeroWhereBelow(AttentionVector256 value, AttentionVector256 x, AttentionVector256 limit)
        => new(Vector256.ConditionalSelect(Vector256.LessThan(x.v, limit.v), Vector256<float>.Zero, value.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AttentionVector256 NegativeInfinityToZero(AttentionVector256 x)
        => new(Vector256.ConditionalSelect(Vector256.Equals(x.v, Vector256.Create(float.NegativeInfinity)), Vector256<float>.Zero, x.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AttentionVector256 NegativeInfinityOutside(AttentionVector256 value, AttentionVector256 index, AttentionVector256 lo, AttentionVector256 hi)
        => new(Vector256.ConditionalSelect(Vector256.LessThan(index.v, lo.v) | Vector256.GreaterThanOrEqual(index.v, hi.v),
            Vector256.Create(float.NegativeInfinity), value.v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AttentionVector256 Pow2FromShifted(AttentionVector256 t)
        => new(((t.v.AsInt32() - Vector256.Create(AttentionExp.ShiftBits - 127)) << 23).AsSingle());
}

/// <summary>
/// Vector e^x for the softmax tiles. The built-in <c>Vector512.Exp</c> measured ~14× slower
/// here (it is not a single-precision polynomial), and exp runs once per score, so it matters.
/// Cody–Waite range reduction x = n·ln2 + r (ln2 split in two so n·ln2 is exact) and the
/// Cephes degree-6 polynomial for e^r on |r| ≤ ln2/2; measured max error 1.41 ulp on
/// [−87.3, 10] (tests assert ≤ <see cref="MaxUlps"/>). Inputs below −87.33 (where e^x leaves
/// the normal range), −∞ included, give exactly 0, which is what masked scores need.
/// </summary>
internal static class AttentionExp
{
    /// <summary>Error bound in units of fp32 roundoff that the tests check and the tolerances use.</summary>
    public const double MaxUlps = 2;

    /// <summary>1.5·2²³: adding it rounds to an integer held in the low mantissa bits.</summary>
    internal const float Shift = 12582912f;
    internal const int ShiftBits = 0x4B400000;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Exp<V>(V x) where V : struct, IAttentionVector<V>
    {
        var lower = V.Splat(-87.33654f);
        var xc = V.Min(V.Max(x, lower), V.Splat(88.37626f));
        var shift = V.Splat(Shift);
        var t = V.Fma(xc, V.Splat(1.44269504088896341f), shift);  // n + shift, n = round(x·log2 e)
        var n = V.Sub(t, shift);
        var r = V.Fma(n, V.Splat(-0.693359375f), xc);
        r = V.Fma(n, V.Splat(2.12194440e-4f), r);
        var p = V.Splat(1.9875691500e-4f);
        p = V.Fma(p, r, V.Splat(1.3981999507e-3f));
        p = V.Fma(p, r, V.Splat(8.3334519073e-3f));
        p = V.Fma(p, r, V.Splat(4.1665795894e-2f));
        p = V.Fma(p, r, V.Splat(1.6666665459e-1f));
        p = V.Fma(p, r, V.Splat(5.0000001201e-1f));
        var y = V.Add(V.Fma(p, V.Mul(r, r), r), V.Splat(1f));
        return V.ZeroWhereBelow(V.Mul(y, V.Pow2FromShifted(t)), x, lower);
    }

    /// <summary>
    /// tanh(x) = sign(x)·(1 − e)/(1 + e), e = e^(−2|x|), for the attention logit soft-cap: exact
    /// saturation to ±1, and an error of a few ulps of 1 (the subtraction cancels near 0), which is
    /// what a logit about to enter a softmax needs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Tanh<V>(V x) where V : struct, IAttentionVector<V>
    {
        var one = V.Splat(1f);
        var e = Exp(V.Mul(V.Splat(-2f), V.Abs(x)));
        return V.CopySign(V.Div(V.Sub(one, e), V.Add(one, e)), x);
    }
}
