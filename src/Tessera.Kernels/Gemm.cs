using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>fp32 GEMM: C = op(A)·op(B) (+ C when accumulating), row-major. Same contract as <see cref="ScalarGemm"/>.</summary>
public static class Gemm
{
    public static void Sgemm(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        Span<float> c, int ldc, bool accumulate = false)
        => ScalarGemm.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate); // PLACEHOLDER: fast path pending
}
