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
        OpProfile.Time("ClipGlobalNorm", () => result = ClipCore(parameters, maxNorm, null));
        return result;
    }

    /// <summary>
    /// The same clip when <paramref name="parameters"/> is one contiguous share of a model's
    /// parameter list held by this process (ZeRO-1): <paramref name="gather"/> receives this
    /// share's per-chunk sums of squares (fixed 16 Ki-float chunks, in order) and returns the
    /// chunk sums of the whole list in parameter order, e.g. an all-gather across ranks. They are
    /// added in order, so the norm has the same bits as <see cref="ClipGlobalNorm(IReadOnlyList{Tensor}, double)"/>
    /// over the whole list; only this share is scaled.
    /// </summary>
    public static double ClipGlobalNorm(IReadOnlyList<Tensor> parameters, double maxNorm, Func<double[], double[]> gather)
    {
        double result = 0;
        OpProfile.Time("ClipGlobalNorm", () => result = ClipCore(parameters, maxNorm, gather));
        return result;
    }

    static double ClipCore(IReadOnlyList<Tensor> parameters, double maxNorm, Func<double[], double[]>? gather)
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
                if (parameters[i].Grad is { } g) partial[c] = Kernels.DoubleSums.SumOfSquares(g.AsSpan("ClipGlobalNorm").Slice(at, n));
            }
        });
        if (gather is not null) partial = gather(partial);
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
}
