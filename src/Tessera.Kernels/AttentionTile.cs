using System.Runtime.CompilerServices;

namespace Tessera.Kernels;

/// <summary>
/// Small dense products between attention tiles (at most 64×64 by the head dimension), plus the
/// transposes and padded copies that feed them. One register-blocked kernel serves every product
/// in forward and backward because A is addressed by two strides: A(i, p) = a[i·ars + p·acs], so
/// a tile and its transpose are read without copying. A's element is broadcast and multiplied
/// into a row of B, so B must be row-major with <c>n</c> a multiple of the vector width (callers
/// pad to that width).
/// </summary>
internal static unsafe class AttentionTile
{
    /// <summary>C (m×n, row stride ldc) = [C +] A (m×k, strides ars, acs) · B (k×n, row stride ldb).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MatMul<V>(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc,
        int m, int n, int k, bool accumulate) where V : struct, IAttentionVector<V>
    {
        int w = V.Count;
        int i = 0;
        for (; i + 4 <= m; i += 4)
        {
            float* ai = a + (long)i * ars;
            float* ci = c + (long)i * ldc;
            int j = 0;
            for (; j + 4 * w <= n; j += 4 * w) Block4x4<V>(ai, ars, acs, b + j, ldb, ci + j, ldc, k, accumulate);
            for (; j < n; j += w) Block4x1<V>(ai, ars, acs, b + j, ldb, ci + j, ldc, k, accumulate);
        }
        for (; i < m; i++)
            for (int j = 0; j < n; j += w)
                Block1x1<V>(a + (long)i * ars, acs, b + j, ldb, c + (long)i * ldc + j, k, accumulate);
    }

    // Kernels run full-optimised from the first call: a benchmark or a short training step makes
    // too few calls for tiered JIT to promote them in time (measured 10–20× slower at tier 0).
    // 4 rows × 4 vectors: 16 accumulators + 4 B loads + 1 broadcast fit AVX-512's 32 registers;
    // per step 16 FMAs against 4 loads and 4 broadcasts keep the FMA ports the bottleneck.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Block4x4<V>(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int k, bool accumulate)
        where V : struct, IAttentionVector<V>
    {
        int w = V.Count;
        float* c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        V c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33;
        if (accumulate)
        {
            c00 = V.Load(c); c01 = V.Load(c + w); c02 = V.Load(c + 2 * w); c03 = V.Load(c + 3 * w);
            c10 = V.Load(c1); c11 = V.Load(c1 + w); c12 = V.Load(c1 + 2 * w); c13 = V.Load(c1 + 3 * w);
            c20 = V.Load(c2); c21 = V.Load(c2 + w); c22 = V.Load(c2 + 2 * w); c23 = V.Load(c2 + 3 * w);
            c30 = V.Load(c3); c31 = V.Load(c3 + w); c32 = V.Load(c3 + 2 * w); c33 = V.Load(c3 + 3 * w);
        }
        else
        {
            c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = default;
        }
        float* a0 = a, a1 = a + ars, a2 = a1 + ars, a3 = a2 + ars;
        for (int p = 0; p < k; p++)
        {
            float* bp = b + (long)p * ldb;
            long ap = (long)p * acs;
            var b0 = V.Load(bp); var b1 = V.Load(bp + w); var b2 = V.Load(bp + 2 * w); var b3 = V.Load(bp + 3 * w);
            var x = V.Splat(a0[ap]);
            c00 = V.Fma(x, b0, c00); c01 = V.Fma(x, b1, c01); c02 = V.Fma(x, b2, c02); c03 = V.Fma(x, b3, c03);
            x = V.Splat(a1[ap]);
            c10 = V.Fma(x, b0, c10); c11 = V.Fma(x, b1, c11); c12 = V.Fma(x, b2, c12); c13 = V.Fma(x, b3, c13);
            x = V.Splat(a2[ap]);
            c20 = V.Fma(x, b0, c20); c21 = V.Fma(x, b1, c21); c22 = V.Fma(x, b2, c22); c23 = V.Fma(x, b3, c23);
            x = V.Splat(a3[ap]);
            c30 = V.Fma(x, b0, c30); c31 = V.Fma(x, b1, c31); c32 = V.Fma(x, b2, c32); c33 = V.Fma(x, b3, c33);
        }
        V.Store(c00, c); V.Store(c01, c + w); V.Store(c02, c + 2 * w); V.Store(c03, c + 3 * w);
        V.Store(c10, c1); V.Store(c11, c1 + w); V.Store(c12, c1 + 2 * w); V.Store(c13, c1 + 3 * w);
        V.Store(c20, c2); V.Store(c21, c2 + w); V.Store(c22, c2 + 2 * w); V.Store(c23, c2 + 3 * w);
        V.Store(c30, c3); V.Store(c31, c3 + w); V.Store(c32, c3 + 2 * w); V.Store(c33, c3 + 3 * w);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Block4x1<V>(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int k, bool accumulate)
        where V : struct, IAttentionVector<V>
    {
        float* c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        V r0, r1, r2, r3;
        if (accumulate) { r0 = V.Load(c); r1 = V.Load(c1); r2 = V.Load(c2); r3 = V.Load(c3); }
        else r0 = r1 = r2 = r3 = default;
        float* a0 = a, a1 = a + ars, a2 = a1 + ars, a3 = a2 + ars;
        for (int p = 0; p < k; p++)
        {
            var bv = V.Load(b + (long)p * ldb);
            long ap = (long)p * acs;
            r0 = V.Fma(V.Splat(a0[ap]), bv, r0);
            r1 = V.Fma(V.Splat(a1[ap]), bv, r1);
            r2 = V.Fma(V.Splat(a2[ap]), bv, r2);
            r3 = V.Fma(V.Splat(a3[ap]), bv, r3);
        }
        V.Store(r0, c); V.Store(r1, c1); V.Store(r2, c2); V.Store(r3, c3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Block1x1<V>(float* a, int acs, float* b, int ldb, float* c, int k, bool accumulate)
        where V : struct, IAttentionVector<V>
    {
        V r = accumulate ? V.Load(c) : default;
        for (int p = 0; p < k; p++) r = V.Fma(V.Splat(a[(long)p * acs]), V.Load(b + (long)p * ldb), r);
        V.Store(r, c);
    }

    /// <summary>
    /// dst (cols×ldDst) = srcᵀ for a rows×cols block of row stride ldSrc; dst columns
    /// [rows, ldDst) are zeroed so padded lanes hold finite values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transpose(float* src, int ldSrc, int rows, int cols, float* dst, int ldDst)
    {
        for (int d = 0; d < cols; d++)
        {
            float* row = dst + (long)d * ldDst;
            float* s = src + d;
            for (int r = 0; r < rows; r++) row[r] = s[(long)r * ldSrc];
            for (int r = rows; r < ldDst; r++) row[r] = 0f;
        }
    }

    /// <summary>Copies rows×cols (stride ldSrc) into dst with row stride ldDst, zeroing columns [cols, ldDst).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CopyPadded(float* src, int ldSrc, int rows, int cols, float* dst, int ldDst)
    {
        for (int r = 0; r < rows; r++)
        {
            new ReadOnlySpan<float>(src + (long)r * ldSrc, cols).CopyTo(new Span<float>(dst + (long)r * ldDst, cols));
            new Span<float>(dst + (long)r * ldDst + cols, ldDst - cols).Clear();
        }
    }

    /// <summary>
    /// dst[r, 0..cols) = src[r, 0..cols) ∘ f[r] for rows rows, where ∘ multiplies (or divides when
    /// <paramref name="divide"/>); writes the tile accumulators back to the caller's layout.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ScaleRows<V>(float* src, int ldSrc, float* dst, int ldDst, int rows, int cols, float* f, int fStride, bool divide)
        where V : struct, IAttentionVector<V>
    {
        int w = V.Count;
        for (int r = 0; r < rows; r++)
        {
            float fr = f[(long)r * fStride];
            var fv = V.Splat(fr);
            float* s = src + (long)r * ldSrc, d = dst + (long)r * ldDst;
            int c = 0;
            if (divide)
            {
                for (; c + w <= cols; c += w) V.Store(V.Div(V.Load(s + c), fv), d + c);
                for (; c < cols; c++) d[c] = s[c] / fr;
            }
            else
            {
                for (; c + w <= cols; c += w) V.Store(V.Mul(V.Load(s + c), fv), d + c);
                for (; c < cols; c++) d[c] = s[c] * fr;
            }
        }
    }

    /// <summary>Rounds n up to a multiple of w (a power of two).</summary>
    public static int RoundUp(int n, int w) => (n + w - 1) & -w;
}
