namespace Tessera.Tensors;

/// <summary>
/// Copies (or adds) a strided n-d source into a contiguous row-major destination. The innermost
/// axis runs as a plain loop; outer axes advance an index counter, so any rank works without recursion.
/// </summary>
internal static unsafe class StridedCopy
{
    public static void Copy(float* src, ReadOnlySpan<int> shape, ReadOnlySpan<int> srcStrides, float* dst, bool accumulate)
    {
        int rank = shape.Length;
        long total = 1;
        foreach (int d in shape) total *= d;
        if (total == 0) return;
        if (rank == 0) { *dst = accumulate ? *dst + *src : *src; return; }
        int inner = shape[rank - 1], innerStride = srcStrides[rank - 1];
        Span<int> index = stackalloc int[rank];
        long outer = total / inner;
        float* s = src;
        for (long o = 0; o < outer; o++)
        {
            if (accumulate) for (int i = 0; i < inner; i++) dst[i] += s[(long)i * innerStride];
            else for (int i = 0; i < inner; i++) dst[i] = s[(long)i * innerStride];
            dst += inner;
            // Advance the outer index like an odometer and move the source pointer to match.
            for (int a = rank - 2; a >= 0; a--)
            {
                s += srcStrides[a];
                if (++index[a] < shape[a]) break;
                s -= (long)srcStrides[a] * shape[a];
                index[a] = 0;
            }
        }
    }
}
