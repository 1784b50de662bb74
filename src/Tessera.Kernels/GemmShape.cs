namespace Tessera.Kernels;

/// <summary>Argument checks shared by the fast GEMM and its scalar twin.</summary>
public static class GemmShape
{
    /// <summary>Throws an <see cref="ArgumentException"/> naming the shapes when the buffers cannot hold the operands.</summary>
    public static void Check(bool transA, bool transB, int m, int n, int k,
        int aLength, int lda, int bLength, int ldb, int cLength, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentException($"Sgemm: negative size M={m} N={n} K={k}.");
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        if (lda < Math.Max(1, aCols) || ldb < Math.Max(1, bCols) || ldc < Math.Max(1, n))
            throw new ArgumentException($"Sgemm: leading dimension too small (lda={lda} for {aRows}x{aCols}, ldb={ldb} for {bRows}x{bCols}, ldc={ldc} for {m}x{n}).");
        if (Need(aRows, aCols, lda) > aLength)
            throw new ArgumentException($"Sgemm: A holds {aLength} floats but op(A) {m}x{k} (transA={transA}, lda={lda}) needs {Need(aRows, aCols, lda)}.");
        if (Need(bRows, bCols, ldb) > bLength)
            throw new ArgumentException($"Sgemm: B holds {bLength} floats but op(B) {k}x{n} (transB={transB}, ldb={ldb}) needs {Need(bRows, bCols, ldb)}.");
        if (Need(m, n, ldc) > cLength)
            throw new ArgumentException($"Sgemm: C holds {cLength} floats but {m}x{n} (ldc={ldc}) needs {Need(m, n, ldc)}.");
    }

    static long Need(int rows, int cols, int ld) => rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;
}
