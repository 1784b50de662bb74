namespace Tessera.Kernels.Reference;

/// <summary>
/// Scalar twin of <see cref="Gemm"/>: C = op(A)·op(B) (+ C when accumulating), row-major.
/// op(A) is M×K (A stored K×M when <c>transA</c>), op(B) is K×N (B stored N×K when <c>transB</c>).
/// Accumulates each dot product in double so it is a trustworthy reference.
/// </summary>
public static class ScalarGemm
{
    /// <summary>C = op(A)·op(B), or C += op(A)·op(B) when <paramref name="accumulate"/>, with leading dimensions <paramref name="lda"/>, <paramref name="ldb"/>, <paramref name="ldc"/> as in BLAS sgemm.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        Span<float> c, int ldc, bool accumulate = false)
    {
        GemmShape.Check(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[p * lda + i] : a[i * lda + p];
                    float bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    sum += (double)av * bv;
                }
                c[i * ldc + j] = accumulate ? (float)(c[i * ldc + j] + sum) : (float)sum;
            }
    }
}
