namespace Tessera.Inference;

/// <summary>
/// Matrices of the same width stacked by rows and used as one (fused q/k/v, gate/up) when they
/// cannot share storage: each part multiplies on its own and its outputs are placed at its columns
/// of y. <see cref="Of"/> prefers the single-storage forms: <see cref="DenseWeights.Stack"/> for
/// fp32 parts (no copy, one parallel region) and one concatenated quantized matrix for parts of one
/// quantized format (the blocks are per row, so concatenating rows is exact).
/// </summary>
public sealed class StackedWeights : IWeightMatrix
{
    readonly IWeightMatrix[] parts;
    float[] scratch = [];

    StackedWeights(IWeightMatrix[] parts)
    {
        this.parts = parts;
        Cols = parts[0].Cols;
        foreach (var p in parts)
        {
            if (p.Cols != Cols) throw new ArgumentException($"StackedWeights: {p.Cols} columns vs {Cols}.");
            Rows += p.Rows;
            Bytes += p.Bytes;
        }
    }

    /// <summary>The parts as one matrix, in the cheapest form that exists for them.</summary>
    public static IWeightMatrix Of(params IWeightMatrix[] parts)
    {
        if (parts.Length == 0) throw new ArgumentException("StackedWeights: nothing to stack.");
        if (parts.Length == 1) return parts[0];
        if (Array.TrueForAll(parts, p => p is DenseWeights)) return DenseWeights.Stack(Array.ConvertAll(parts, p => (DenseWeights)p));
        if (parts[0] is QuantizedWeights { Format: WeightFormat.Q8_0 or WeightFormat.Q4_0 or WeightFormat.Q4_K or WeightFormat.Q5_K or WeightFormat.Q6_K } first
            && Array.TrueForAll(parts, p => p is QuantizedWeights q && q.Format == first.Format))
            return QuantizedWeights.Concatenate(Array.ConvertAll(parts, p => (QuantizedWeights)p));
        return new StackedWeights(parts);
    }

    /// <inheritdoc />
    public int Rows { get; }
    /// <inheritdoc />
    public int Cols { get; }
    /// <inheritdoc />
    public long Bytes { get; }

    /// <inheritdoc />
    public void MatMul(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        if (y.Length < (long)n * Rows) throw new ArgumentException($"StackedWeights.MatMul: y has {y.Length}, needs {n}×{Rows}.");
        int col = 0;
        foreach (var p in parts)
        {
            if (n == 1) p.MatMul(x, 1, y.Slice(col, p.Rows));
            else
            {
                if (scratch.Length < n * p.Rows) scratch = new float[n * p.Rows];
                p.MatMul(x, n, scratch);
                for (int i = 0; i < n; i++) scratch.AsSpan(i * p.Rows, p.Rows).CopyTo(y.Slice(i * Rows + col, p.Rows));
            }
            col += p.Rows;
        }
    }
}
