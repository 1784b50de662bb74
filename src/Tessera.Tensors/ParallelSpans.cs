using System.Numerics.Tensors;

namespace Tessera.Tensors;

/// <summary>
/// Memory-bound elementwise steps of the graph (residual adds, gradient accumulation and copies)
/// split into fixed 16K-float chunks over the shared worker pool when large. Elementwise, so the
/// bits do not depend on the split; small spans stay on the calling thread.
/// </summary>
internal static unsafe class ParallelSpans
{
    const int Chunk = 1 << 14;

    /// <summary>y = a + b (y may be a or b).</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        if (a.Length != b.Length || y.Length != a.Length)
            throw new ArgumentException($"ParallelSpans.Add: lengths {a.Length}, {b.Length}, {y.Length} differ.");
        if (a.Length < 4 * Chunk) { TensorPrimitives.Add(a, b, y); return; }
        fixed (float* pa = a, pb = b, py = y)
        {
            long ia = (long)pa, ib = (long)pb, iy = (long)py;
            int n = a.Length;
            Kernels.WorkerPool.Shared.For((n + Chunk - 1) / Chunk, (_, start, end) =>
            {
                int at = start * Chunk, len = Math.Min(end * Chunk, n) - at;
                TensorPrimitives.Add(new ReadOnlySpan<float>((float*)ia + at, len), new ReadOnlySpan<float>((float*)ib + at, len), new Span<float>((float*)iy + at, len));
            });
        }
    }

    /// <summary>y = x.</summary>
    public static void Copy(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"ParallelSpans.Copy: lengths {x.Length} and {y.Length} differ.");
        if (x.Length < 4 * Chunk) { x.CopyTo(y); return; }
        fixed (float* px = x, py = y)
        {
            long ix = (long)px, iy = (long)py;
            int n = x.Length;
            Kernels.WorkerPool.Shared.For((n + Chunk - 1) / Chunk, (_, start, end) =>
            {
                int at = start * Chunk, len = Math.Min(end * Chunk, n) - at;
                new ReadOnlySpan<float>((float*)ix + at, len).CopyTo(new Span<float>((float*)iy + at, len));
            });
        }
    }
}
