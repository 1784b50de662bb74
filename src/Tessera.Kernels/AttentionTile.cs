using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
        if (typeof(V) == typeof(AttentionVector512))
            for (; i + 6 <= m; i += 6)
            {
                float* ai = a + (long)i * ars;
                float* ci = c + (long)i * ldc;
                int j = 0;
                for (; j + 64 <= n; j += 64) Block6x4Avx512(ai, ars, acs, b + j, ldb, ci + j, ldc, k, accumulate);
                for (; j < n; j += w)
                {
                    Block4x1<V>(ai, ars, acs, b + j, ldb, ci + j, ldc, k, accumulate);
                    Block1x1<V>(ai + 4L * ars, acs, b + j, ldb, ci + 4L * ldc + j, k, accumulate);
                    Block1x1<V>(ai + 5L * ars, acs, b + j, ldb, ci + 5L * ldc + j, k, accumulate);
                }
            }
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

    /// <summary>Rows of <see cref="MatMul{V}"/>'s widest register block: 6 with 16-lane vectors, else 4.</summary>
    static int Band<V>() where V : struct, IAttentionVector<V> => typeof(V) == typeof(AttentionVector512) ? 6 : 4;

    /// <summary>
    /// C += A·B where the rows are queries i0 + r and k runs over keys j0 + c: a band of rows stops at the
    /// last key its last query sees (<see cref="AttentionProblem.LastKey"/>). The terms left out are the
    /// causal mask's exact zeros (P = exp(−∞) = 0, dS = 0), so every sum keeps its value and order; only
    /// a C element whose terms are all zero could differ, in the sign of that zero.
    /// </summary>
    public static void MatMulQueryRows<V>(in AttentionProblem p, int batch, int i0, int j0, float* a, int ars, int acs, float* b, int ldb,
        float* c, int ldc, int m, int n, int k) where V : struct, IAttentionVector<V>
    {
        if (j0 + k - 1 <= p.LastKey(batch, i0)) { MatMul<V>(a, ars, acs, b, ldb, c, ldc, m, n, k, accumulate: true); return; }
        int band = Band<V>();
        for (int r0 = 0; r0 < m; r0 += band)
        {
            int mb = Math.Min(band, m - r0);
            int kb = Math.Min(k, p.LastKey(batch, i0 + r0 + mb - 1) - j0 + 1);
            if (kb > 0) MatMul<V>(a + (long)r0 * ars, ars, acs, b, ldb, c + (long)r0 * ldc, ldc, mb, n, kb, accumulate: true);
        }
    }

    /// <summary>
    /// C += A·B where the rows are keys j0 + c and k runs over queries i0 + r: a band of rows starts at the
    /// first query that sees its first key. As <see cref="MatMulQueryRows"/>, only the mask's zeros are left out.
    /// </summary>
    public static void MatMulKeyRows<V>(in AttentionProblem p, int batch, int i0, int j0, float* a, int ars, int acs, float* b, int ldb,
        float* c, int ldc, int m, int n, int k) where V : struct, IAttentionVector<V>
    {
        if (j0 + m - 1 <= p.LastKey(batch, i0)) { MatMul<V>(a, ars, acs, b, ldb, c, ldc, m, n, k, accumulate: true); return; }
        int band = Band<V>(), pre = p.Prefix(batch);
        for (int c0 = 0; c0 < m; c0 += band)
        {
            int j = j0 + c0, mb = Math.Min(band, m - c0);
            int r1 = j < pre ? 0 : Math.Max(0, j - i0);   // query i sees key j when i ≥ j or j is in the prefix
            if (r1 < k) MatMul<V>(a + (long)c0 * ars + (long)r1 * acs, ars, acs, b + (long)r1 * ldb, ldb, c + (long)c0 * ldc, ldc, mb, n, k - r1, accumulate: true);
        }
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
        long a1 = ars, a2 = 2L * ars, a3 = 3L * ars;
        for (int p = 0; p < k; p++)
        {
            var b0 = V.Load(b); var b1 = V.Load(b + w); var b2 = V.Load(b + 2 * w); var b3 = V.Load(b + 3 * w);
            var x = V.Splat(a[0]);
            c00 = V.Fma(x, b0, c00); c01 = V.Fma(x, b1, c01); c02 = V.Fma(x, b2, c02); c03 = V.Fma(x, b3, c03);
            x = V.Splat(a[a1]);
            c10 = V.Fma(x, b0, c10); c11 = V.Fma(x, b1, c11); c12 = V.Fma(x, b2, c12); c13 = V.Fma(x, b3, c13);
            x = V.Splat(a[a2]);
            c20 = V.Fma(x, b0, c20); c21 = V.Fma(x, b1, c21); c22 = V.Fma(x, b2, c22); c23 = V.Fma(x, b3, c23);
            x = V.Splat(a[a3]);
            c30 = V.Fma(x, b0, c30); c31 = V.Fma(x, b1, c31); c32 = V.Fma(x, b2, c32); c33 = V.Fma(x, b3, c33);
            a += acs; b += ldb;
        }
        V.Store(c00, c); V.Store(c01, c + w); V.Store(c02, c + 2 * w); V.Store(c03, c + 3 * w);
        V.Store(c10, c1); V.Store(c11, c1 + w); V.Store(c12, c1 + 2 * w); V.Store(c13, c1 + 3 * w);
        V.Store(c20, c2); V.Store(c21, c2 + w); V.Store(c22, c2 + 2 * w); V.Store(c23, c2 + 3 * w);
        V.Store(c30, c3); V.Store(c31, c3 + w); V.Store(c32, c3 + 2 * w); V.Store(c33, c3 + 3 * w);
    }

    // 6 rows × 4 vectors of 16 lanes, written with Vector512 directly: 24 accumulators + 4 B loads +
    // 1 broadcast fit the 32 registers, and the JIT emits one vfmadd231ps per product with no register
    // copies (the generic 4×4 block above compiles to vfmadd213ps + vmovaps for the last use of each
    // operand). Each C element is the same FMA chain over p in the same order as the other blocks, so
    // the block shape never changes a result (AttentionTileTests checks this bit for bit). Measured
    // 1.1–1.2× the 4×4 block on 64×64×64 products (thread CPU clock, same process).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Block6x4Avx512(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int k, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default;
        Vector512<float> c50 = default, c51 = default, c52 = default, c53 = default;
        if (accumulate)
        {
            float* r = c;
            c00 = Vector512.Load(r); c01 = Vector512.Load(r + 16); c02 = Vector512.Load(r + 32); c03 = Vector512.Load(r + 48); r += ldc;
            c10 = Vector512.Load(r); c11 = Vector512.Load(r + 16); c12 = Vector512.Load(r + 32); c13 = Vector512.Load(r + 48); r += ldc;
            c20 = Vector512.Load(r); c21 = Vector512.Load(r + 16); c22 = Vector512.Load(r + 32); c23 = Vector512.Load(r + 48); r += ldc;
            c30 = Vector512.Load(r); c31 = Vector512.Load(r + 16); c32 = Vector512.Load(r + 32); c33 = Vector512.Load(r + 48); r += ldc;
            c40 = Vector512.Load(r); c41 = Vector512.Load(r + 16); c42 = Vector512.Load(r + 32); c43 = Vector512.Load(r + 48); r += ldc;
            c50 = Vector512.Load(r); c51 = Vector512.Load(r + 16); c52 = Vector512.Load(r + 32); c53 = Vector512.Load(r + 48);
        }
        long a1 = ars, a2 = 2L * ars, a3 = 3L * ars, a4 = 4L * ars, a5 = 5L * ars;
        for (int p = 0; p < k; p++)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16); var b2 = Vector512.Load(b + 32); var b3 = Vector512.Load(b + 48);
            var x = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(x, b2, c02); c03 = Vector512.FusedMultiplyAdd(x, b3, c03);
            x = Vector512.Create(a[a1]);
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(x, b2, c12); c13 = Vector512.FusedMultiplyAdd(x, b3, c13);
            x = Vector512.Create(a[a2]);
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(x, b2, c22); c23 = Vector512.FusedMultiplyAdd(x, b3, c23);
            x = Vector512.Create(a[a3]);
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(x, b2, c32); c33 = Vector512.FusedMultiplyAdd(x, b3, c33);
            x = Vector512.Create(a[a4]);
            c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            c42 = Vector512.FusedMultiplyAdd(x, b2, c42); c43 = Vector512.FusedMultiplyAdd(x, b3, c43);
            x = Vector512.Create(a[a5]);
            c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            c52 = Vector512.FusedMultiplyAdd(x, b2, c52); c53 = Vector512.FusedMultiplyAdd(x, b3, c53);
            a += acs; b += ldb;
        }
        c00.Store(c); c01.Store(c + 16); c02.Store(c + 32); c03.Store(c + 48); c += ldc;
        c10.Store(c); c11.Store(c + 16); c12.Store(c + 32); c13.Store(c + 48); c += ldc;
        c20.Store(c); c21.Store(c + 16); c22.Store(c + 32); c23.Store(c + 48); c += ldc;
        c30.Store(c); c31.Store(c + 16); c32.Store(c + 32); c33.Store(c + 48); c += ldc;
        c40.Store(c); c41.Store(c + 16); c42.Store(c + 32); c43.Store(c + 48); c += ldc;
        c50.Store(c); c51.Store(c + 16); c52.Store(c + 32); c53.Store(c + 48);
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
        int r8 = 0, c8 = 0;
        if (Avx.IsSupported)
        {
            // Whole 8×8 blocks through registers (unpack, shuffle, lane permute), the rest element by element.
            r8 = rows & ~7; c8 = cols & ~7;
            for (int r = 0; r < r8; r += 8)
                for (int d = 0; d < c8; d += 8)
                    Transpose8x8(src + (long)r * ldSrc + d, ldSrc, dst + (long)d * ldDst + r, ldDst);
        }
        for (int d = 0; d < cols; d++)
        {
            float* row = dst + (long)d * ldDst;
            float* s = src + d;
            for (int r = d < c8 ? r8 : 0; r < rows; r++) row[r] = s[(long)r * ldSrc];
            for (int r = rows; r < ldDst; r++) row[r] = 0f;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8x8(float* s, int lds, float* d, int ldd)
    {
        var r0 = Avx.LoadVector256(s); var r1 = Avx.LoadVector256(s + lds);
        var r2 = Avx.LoadVector256(s + 2L * lds); var r3 = Avx.LoadVector256(s + 3L * lds);
        var r4 = Avx.LoadVector256(s + 4L * lds); var r5 = Avx.LoadVector256(s + 5L * lds);
        var r6 = Avx.LoadVector256(s + 6L * lds); var r7 = Avx.LoadVector256(s + 7L * lds);
        // t: pairs of rows interleaved; u: four rows' element j in each 128-bit half (j, j + 4).
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(d, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(d + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(d + 2L * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(d + 3L * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(d + 4L * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(d + 5L * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(d + 6L * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(d + 7L * ldd, Avx.Permute2x128(u3, u7, 0x31));
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
