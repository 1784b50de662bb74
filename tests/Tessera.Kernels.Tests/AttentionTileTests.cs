namespace Tessera.Kernels.Tests;

/// <summary>
/// The attention tile product must compute every C element as one FMA chain over p = 0 … k−1 in order,
/// whatever block shape (6×4 at 512 bits, 4×4, 4×1, 1×1) covers it: the blocks differ only in how many
/// elements share a loop, so changing them may never change a result. Checked bit for bit against a
/// scalar <see cref="MathF.FusedMultiplyAdd"/> chain, A read in place and transposed, with and without
/// accumulation, on row counts that leave every remainder of 6 and 4 and column counts that are and are
/// not multiples of four vectors.
/// </summary>
public unsafe class AttentionTileTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void EveryBlockShapeGivesTheScalarFmaChain(int width)
    {
        var rng = new TestRandom(17);
        foreach (int m in new[] { 1, 3, 4, 5, 6, 7, 10, 12, 13, 64 })
            foreach (int n in new[] { 16, 48, 64, 80, 128 })
                foreach (int k in new[] { 1, 7, 64 })
                    foreach (bool transposed in new[] { false, true })
                        foreach (bool accumulate in new[] { false, true })
                        {
                            int lda = transposed ? m + 3 : k + 5, ldb = n + 16, ldc = n + 32;
                            float[] a = rng.Array(transposed ? k * lda : m * lda, -2f, 2f), b = rng.Array(k * ldb, -2f, 2f);
                            float[] c0 = rng.Array(m * ldc, -2f, 2f);
                            var c = (float[])c0.Clone();
                            int ars = transposed ? 1 : lda, acs = transposed ? lda : 1;
                            fixed (float* pa = a, pb = b, pc = c)
                            {
                                if (width == 0) AttentionTile.MatMul<AttentionVector512>(pa, ars, acs, pb, ldb, pc, ldc, m, n, k, accumulate);
                                else AttentionTile.MatMul<AttentionVector256>(pa, ars, acs, pb, ldb, pc, ldc, m, n, k, accumulate);
                            }
                            for (int i = 0; i < m; i++)
                                for (int j = 0; j < ldc; j++)
                                {
                                    float want = c0[i * ldc + j];
                                    if (j < n)
                                    {
                                        if (!accumulate) want = 0f;
                                        for (int p = 0; p < k; p++) want = MathF.FusedMultiplyAdd(a[i * ars + p * acs], b[p * ldb + j], want);
                                    }
                                    float got = c[i * ldc + j];
                                    if (BitConverter.SingleToInt32Bits(got) != BitConverter.SingleToInt32Bits(want))
                                        Assert.Fail($"width={width} m={m} n={n} k={k} transposed={transposed} accumulate={accumulate}: C[{i},{j}] = {got:R}, the FMA chain gives {want:R}");
                                }
                        }
    }

    /// <summary>
    /// The tile transpose (8×8 register blocks where AVX is present, element by element at the edges) must
    /// put src[r, d] at dst[d, r] and zero the padding columns [rows, ldDst), for every size around the block
    /// edges and row strides that are not multiples of the block.
    /// </summary>
    [Fact]
    public void TransposeMatchesItsDefinition()
    {
        var rng = new TestRandom(23);
        foreach (int rows in new[] { 1, 7, 8, 9, 16, 23, 63, 64 })
            foreach (int cols in new[] { 1, 5, 8, 15, 16, 33, 64 })
            {
                int ldSrc = cols + 3, ldDst = rows + 9;
                float[] src = rng.Array(rows * ldSrc, -2f, 2f);
                var dst = new float[cols * ldDst];
                Array.Fill(dst, float.NaN);
                fixed (float* ps = src, pd = dst) AttentionTile.Transpose(ps, ldSrc, rows, cols, pd, ldDst);
                for (int d = 0; d < cols; d++)
                    for (int r = 0; r < ldDst; r++)
                    {
                        float want = r < rows ? src[r * ldSrc + d] : 0f;
                        if (BitConverter.SingleToInt32Bits(dst[d * ldDst + r]) != BitConverter.SingleToInt32Bits(want))
                            Assert.Fail($"rows={rows} cols={cols}: dst[{d},{r}] = {dst[d * ldDst + r]:R}, want {want:R}");
                    }
            }
    }
}
