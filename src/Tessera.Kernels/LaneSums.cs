using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tessera.Kernels;

/// <summary>Horizontal sums of several vector accumulators at once (the tail of a register-blocked dot product).</summary>
public static class LaneSums
{
    /// <summary>The four lane sums [Σa, Σb, Σc, Σd]: halve each to 128 bits, then two rounds of pairwise adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        static Vector128<float> Quarter(Vector512<float> v)
        {
            var h = v.GetLower() + v.GetUpper();
            return h.GetLower() + h.GetUpper();
        }
        Vector128<float> qa = Quarter(a), qb = Quarter(b), qc = Quarter(c), qd = Quarter(d);
        // [a0+a2, b0+b2, a1+a3, b1+b3] style interleaves, then the final pairs.
        var ab = Vector128.Shuffle(qa, Vector128.Create(0, 2, 1, 3)) + Vector128.Shuffle(qa, Vector128.Create(1, 3, 0, 2));   // [a01, a23, a01', a23']
        var cd = Vector128.Shuffle(qb, Vector128.Create(0, 2, 1, 3)) + Vector128.Shuffle(qb, Vector128.Create(1, 3, 0, 2));
        var ef = Vector128.Shuffle(qc, Vector128.Create(0, 2, 1, 3)) + Vector128.Shuffle(qc, Vector128.Create(1, 3, 0, 2));
        var gh = Vector128.Shuffle(qd, Vector128.Create(0, 2, 1, 3)) + Vector128.Shuffle(qd, Vector128.Create(1, 3, 0, 2));
        return Vector128.Create(ab[0] + ab[1], cd[0] + cd[1], ef[0] + ef[1], gh[0] + gh[1]);
    }
}
