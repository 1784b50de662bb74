using System.Runtime.InteropServices;
using Tessera.Kernels;
using Tessera.Kernels.Reference;

namespace Tessera.Inference;

/// <summary>
/// fp32 weights repacked for <see cref="PanelMatMul"/> (Tessera.Kernels), behind <see cref="IWeightMatrix"/>: panels of 64 rows of W stored k-major
/// (64-byte aligned, the last panel zero-padded), owned by this object. The forward pass multiplies
/// through this form for every row count — one decode row, a continuous batch of 32, a speculative
/// block, a prefill chunk — with the same per-output sum, so results never depend on the batch.
/// Packing copies the matrix once at load time; the packed copy is what decoding streams.
/// </summary>
public sealed unsafe class PanelWeights : IWeightMatrix
{
    readonly float* panels;

    PanelWeights(int rows, int cols)
    {
        if (rows <= 0 || cols <= 0) throw new ArgumentException($"PanelWeights: a ({rows}, {cols}) matrix is empty.");
        Rows = rows; Cols = cols;
        long floats = PanelMatMul.PackedFloats(rows, cols);
        panels = (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
        NativeMemory.Clear(panels, (nuint)(floats * sizeof(float)));
    }

    /// <summary>Packs a row-major (rows, cols) matrix.</summary>
    public static PanelWeights Pack(ReadOnlySpan<float> data, int rows, int cols)
    {
        if (data.Length != (long)rows * cols) throw new ArgumentException($"PanelWeights.Pack: {data.Length} floats do not form ({rows}, {cols}).");
        var w = new PanelWeights(rows, cols);
        for (int r = 0; r < rows; r++) w.SetRow(r, data.Slice(r * cols, cols));
        return w;
    }

    /// <summary>Packs the rows of <paramref name="dense"/> (stacked parts included).</summary>
    public static PanelWeights Pack(DenseWeights dense)
    {
        var w = new PanelWeights(dense.Rows, dense.Cols);
        for (int r = 0; r < dense.Rows; r++) w.SetRow(r, dense.Row(r));
        return w;
    }

    void SetRow(int r, ReadOnlySpan<float> row) => PanelMatMul.PackRow(panels, Cols, r, row);

    /// <inheritdoc />
    public int Rows { get; }
    /// <inheritdoc />
    public int Cols { get; }

    /// <summary>The matrix's own bytes (padding rows excluded: they are never used).</summary>
    public long Bytes => (long)Rows * Cols * sizeof(float);

    /// <summary>W as one row-major fp32 array (a copy).</summary>
    public float[] ToArray()
    {
        var a = new float[(long)Rows * Cols];
        for (int r = 0; r < Rows; r++) PanelMatMul.UnpackRow(panels, Cols, r, a.AsSpan(r * Cols, Cols));
        return a;
    }

    /// <inheritdoc />
    public void MatMul(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        if (x.Length < (long)n * Cols || y.Length < (long)n * Rows)
            throw new ArgumentException($"PanelWeights.MatMul: x has {x.Length} (needs {n}×{Cols}), y has {y.Length} (needs {n}×{Rows}).");
        if (n == 0) return;
        fixed (float* px = x, py = y) PanelMatMul.Run(panels, Rows, Cols, px, n, py, Rows);
        GC.KeepAlive(this);
    }

    /// <summary>The twin of <see cref="MatMul"/> (for tests): the same sums, one scalar at a time.</summary>
    public void ScalarMatMul(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        if (x.Length < (long)n * Cols || y.Length < (long)n * Rows) throw new ArgumentException("PanelWeights.ScalarMatMul: buffers too small.");
        fixed (float* px = x, py = y) ScalarPanelMatMul.Run(panels, Rows, Cols, px, n, py, Rows);
        GC.KeepAlive(this);
    }

    /// <summary>Frees the packed panels if the matrix was never disposed explicitly.</summary>
    ~PanelWeights() => NativeMemory.AlignedFree(panels);
}
