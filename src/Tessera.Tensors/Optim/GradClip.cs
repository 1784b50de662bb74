using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tessera.Tensors;

/// <summary>Global-norm gradient clipping with torch.nn.utils.clip_grad_norm_ semantics.</summary>
public static class GradClip
{
    /// <summary>
    /// Computes the 2-norm of all gradients together (in double) and, when it exceeds
    /// <paramref name="maxNorm"/>, scales every gradient by maxNorm / (norm + 1e-6). Returns the norm
    /// before clipping. Parameters without a gradient are ignored. A non-finite norm throws, because
    /// scaling by it would silently turn every gradient into NaN.
    /// </summary>
    public static double ClipGlobalNorm(IReadOnlyList<Tensor> parameters, double maxNorm)
    {
        double result = 0;
        OpProfile.Time("ClipGlobalNorm", () => result = ClipCore(parameters, maxNorm));
        return result;
    }

    static double ClipCore(IReadOnlyList<Tensor> parameters, double maxNorm)
    {
        // Sum of squares per fixed chunk (in parallel), then the chunk sums in order: the same
        // bits on any thread count.
        var chunks = ParameterChunks.Of(parameters);
        var partial = new double[chunks.Count];
        Run(chunks, (_, start, end) =>
        {
            for (int c = start; c < end; c++)
            {
                var (i, at, n) = chunks[c];
                if (parameters[i].Grad is { } g) partial[c] = SumOfSquares(g.AsSpan("ClipGlobalNorm").Slice(at, n));
            }
        });
        double sumSq = 0;
        foreach (double s in partial) sumSq += s;
        double norm = Math.Sqrt(sumSq);
        if (!double.IsFinite(norm))
            throw new ArithmeticException($"ClipGlobalNorm: the gradient norm is {norm}; a gradient holds NaN or Inf.");
        double coef = maxNorm / (norm + 1e-6);
        if (coef < 1)
        {
            float factor = (float)coef;
            Run(chunks, (_, start, end) =>
            {
                for (int c = start; c < end; c++)
                {
                    var (i, at, n) = chunks[c];
                    if (parameters[i].Grad is { } g)
                    {
                        var s = g.AsSpan("ClipGlobalNorm").Slice(at, n);
                        System.Numerics.Tensors.TensorPrimitives.Multiply(s, factor, s);
                    }
                }
            });
        }
        return norm;
    }

    static void Run(ParameterChunks chunks, Action<int, int, int> body)
    {
        if (chunks.Elements < 1 << 16) body(0, 0, chunks.Count);
        else Kernels.WorkerPool.Shared.For(chunks.Count, body);
    }

    /// <summary>Σ x² in double: four vector accumulators of doubles, combined in a fixed order, then the scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static double SumOfSquares(ReadOnlySpan<float> x)
    {
        int j = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && x.Length >= 16)
        {
            Vector256<double> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j <= x.Length - 16; j += 16)
            {
                var (l0, h0) = Vector256.Widen(Vector256.Create(x.Slice(j, 8)));
                var (l1, h1) = Vector256.Widen(Vector256.Create(x.Slice(j + 8, 8)));
                a0 += l0 * l0; a1 += h0 * h0; a2 += l1 * l1; a3 += h1 * h1;
            }
            sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        for (; j < x.Length; j++) sum += (double)x[j] * x[j];
        return sum;
    }
}
