using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tessera.Kernels;

/// <summary>The per-step scalars of an AdamW step (Tessera.Tensors' <c>AdamW</c>), computed once per step in double and rounded to float.</summary>
public struct AdamWConstants
{
    /// <summary>β₁ and β₂, the moment decay rates.</summary>
    public float B1, B2;
    /// <summary>ε, added to the bias-corrected √v.</summary>
    public float Eps;
    /// <summary>lr / (1 − β₁ᵗ): the step size with the first moment's bias correction folded in.</summary>
    public float StepSize;
    /// <summary>√(1 − β₂ᵗ): the second moment's bias correction.</summary>
    public float Bc2Sqrt;
    /// <summary>1 − lr·weight decay, applied to decayed parameters before the update.</summary>
    public float Shrink;
    /// <summary>1 − β₁ and 1 − β₂.</summary>
    public float OneMinusB1, OneMinusB2;
}

/// <summary>
/// The AdamW update of one contiguous run of elements. The vector body performs exactly the
/// scalar tail's operations in the same order (separate multiplies and adds, no fused
/// multiply-add, IEEE division and square root), so every element gets the same bits whichever
/// path handles it; <see cref="Reference.ScalarAdamWUpdate"/> is the bit-exact twin.
/// </summary>
public static class AdamWUpdate
{
    /// <summary>
    /// One AdamW step over equal-length runs: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p·shrink (when
    /// <paramref name="decay"/>) − step·m / (√v / √(1−β₂ᵗ) + ε).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Update(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, bool decay, in AdamWConstants k)
    {
        if (g.Length != p.Length || m.Length != p.Length || v.Length != p.Length)
            throw new ArgumentException($"AdamWUpdate: lengths p {p.Length}, g {g.Length}, m {m.Length}, v {v.Length} differ.");
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var b1 = Vector512.Create(k.B1); var b2 = Vector512.Create(k.B2); var eps = Vector512.Create(k.Eps);
            var c1 = Vector512.Create(k.OneMinusB1); var c2 = Vector512.Create(k.OneMinusB2);
            var step = Vector512.Create(k.StepSize); var bc2 = Vector512.Create(k.Bc2Sqrt); var shrink = Vector512.Create(k.Shrink);
            for (; j <= p.Length - Vector512<float>.Count; j += Vector512<float>.Count)
            {
                var gj = Vector512.Create(g.Slice(j, Vector512<float>.Count));
                var pj = Vector512.Create(p.Slice(j, Vector512<float>.Count));
                if (decay) pj *= shrink;
                var mj = Vector512.Create(m.Slice(j, Vector512<float>.Count)) * b1 + gj * c1;
                var vj = Vector512.Create(v.Slice(j, Vector512<float>.Count)) * b2 + gj * gj * c2;
                var denom = Vector512.Sqrt(vj) / bc2 + eps;
                pj -= step * (mj / denom);
                mj.CopyTo(m.Slice(j));
                vj.CopyTo(v.Slice(j));
                pj.CopyTo(p.Slice(j));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var b1 = Vector256.Create(k.B1); var b2 = Vector256.Create(k.B2); var eps = Vector256.Create(k.Eps);
            var c1 = Vector256.Create(k.OneMinusB1); var c2 = Vector256.Create(k.OneMinusB2);
            var step = Vector256.Create(k.StepSize); var bc2 = Vector256.Create(k.Bc2Sqrt); var shrink = Vector256.Create(k.Shrink);
            for (; j <= p.Length - Vector256<float>.Count; j += Vector256<float>.Count)
            {
                var gj = Vector256.Create(g.Slice(j, Vector256<float>.Count));
                var pj = Vector256.Create(p.Slice(j, Vector256<float>.Count));
                if (decay) pj *= shrink;
                var mj = Vector256.Create(m.Slice(j, Vector256<float>.Count)) * b1 + gj * c1;
                var vj = Vector256.Create(v.Slice(j, Vector256<float>.Count)) * b2 + gj * gj * c2;
                var denom = Vector256.Sqrt(vj) / bc2 + eps;
                pj -= step * (mj / denom);
                mj.CopyTo(m.Slice(j));
                vj.CopyTo(v.Slice(j));
                pj.CopyTo(p.Slice(j));
            }
        }
        // The tail is the twin itself: the vector body above performs its operations lane by lane.
        if (j < p.Length) Reference.ScalarAdamWUpdate.Update(p[j..], g[j..], m[j..], v[j..], decay, k);
    }
}
