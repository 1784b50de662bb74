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
        double sumSq = 0;
        foreach (var p in parameters)
        {
            if (p.Grad is null) continue;
            var g = p.Grad.AsSpan("ClipGlobalNorm");
            for (int i = 0; i < g.Length; i++) sumSq += (double)g[i] * g[i];
        }
        double norm = Math.Sqrt(sumSq);
        if (!double.IsFinite(norm))
            throw new ArithmeticException($"ClipGlobalNorm: the gradient norm is {norm}; a gradient holds NaN or Inf.");
        double coef = maxNorm / (norm + 1e-6);
        if (coef < 1)
        {
            float c = (float)coef;
            foreach (var p in parameters)
            {
                if (p.Grad is null) continue;
                var g = p.Grad.AsSpan("ClipGlobalNorm");
                System.Numerics.Tensors.TensorPrimitives.Multiply(g, c, g);
            }
        }
        return norm;
    }
}
