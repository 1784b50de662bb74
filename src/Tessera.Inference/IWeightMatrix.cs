using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tessera.Kernels;
using Tessera.Tensors;

namespace Tessera.Inference;

/// <summary>
/// A weight matrix W stored (out = <see cref="Rows"/>, in = <see cref="Cols"/>), as Linear layers
/// hold it, seen only through the product the forward pass needs. fp32 is
/// <see cref="DenseWeights"/>; quantized formats (Q8_0, Q4_0, ternary) implement the same
/// interface, so the engine does not change when the storage does.
/// </summary>
public interface IWeightMatrix
{
    /// <summary>Output features (rows of W).</summary>
    int Rows { get; }

    /// <summary>Input features (columns of W).</summary>
    int Cols { get; }

    /// <summary>Bytes read from memory by one full pass over W (what a decode step streams).</summary>
    long Bytes { get; }

    /// <summary>y (n × Rows) = x (n × Cols) · Wᵀ, both row-major; y is overwritten.</summary>
    void MatMul(ReadOnlySpan<float> x, int n, Span<float> y);
}

/// <summary>
/// fp32 weights over <see cref="Gemm"/>. The matrix is borrowed, not copied: it points into the
/// native buffer of a model tensor, which must outlive this object. For n ≤ 4 rows (decoding)
/// Gemm streams W once without packing, which is what makes batch-1 decode memory-bound.
/// </summary>
public sealed unsafe class DenseWeights : IWeightMatrix
{
    readonly float* w;

    /// <summary>Wraps <paramref name="rows"/> × <paramref name="cols"/> floats at <paramref name="data"/> (row-major, unowned).</summary>
    public DenseWeights(float* data, int rows, int cols)
    {
        if (data == null) throw new ArgumentNullException(nameof(data));
        if (rows <= 0 || cols <= 0) throw new ArgumentException($"DenseWeights: shape ({rows}, {cols}) must be positive.");
        w = data; Rows = rows; Cols = cols;
    }

    /// <summary>Borrows a contiguous 2-D tensor (out, in); keep the tensor alive while this is used.</summary>
    public static DenseWeights Borrow(Tensor t)
    {
        if (t.Rank != 2) throw new ArgumentException($"DenseWeights: '{t.Name}' {t.ShapeString} is not a matrix.");
        var span = t.AsSpan("DenseWeights");
        // The tensor's storage is native memory, so the address is stable for the tensor's lifetime.
        return new DenseWeights((float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span)), t.Dim(0), t.Dim(1));
    }

    /// <summary>Rows Gemm multiplies without packing W (its small-M path).</summary>
    const int SmallRows = 4;

    public int Rows { get; }
    public int Cols { get; }
    public long Bytes => (long)Rows * Cols * sizeof(float);

    /// <summary>Row <paramref name="r"/> of W (an embedding lookup when W is the tied embedding table).</summary>
    public ReadOnlySpan<float> Row(int r)
    {
        if ((uint)r >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(r), r, $"DenseWeights: row {r} outside [0, {Rows}).");
        return new ReadOnlySpan<float>(w + (long)r * Cols, Cols);
    }

    public void MatMul(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        if (x.Length < (long)n * Cols || y.Length < (long)n * Rows)
            throw new ArgumentException($"DenseWeights.MatMul: x has {x.Length} (needs {n}×{Cols}), y has {y.Length} (needs {n}×{Rows}).");
        if (n == 0) return;
        fixed (float* px = x, py = y)
        {
            // Up to 8 rows (a speculative block, a small decode batch): two unpacked streams of W
            // read less memory than packing W into panels once and reading the panels back.
            if (n <= 2 * SmallRows)
                for (int r = 0; r < n; r += SmallRows)
                    Gemm.Sgemm(WorkerPool.Shared, false, true, Math.Min(SmallRows, n - r), Rows, Cols, px + (long)r * Cols, Cols, w, Cols, py + (long)r * Rows, Rows, accumulate: false);
            else Gemm.Sgemm(WorkerPool.Shared, false, true, n, Rows, Cols, px, Cols, w, Cols, py, Rows, accumulate: false);
        }
    }
}
