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
/// fp32 weights, borrowed, not copied: each part points into the native buffer of a model tensor
/// (or other storage) that must outlive this object. Several matrices of the same width can be
/// stacked by rows without copying (<see cref="Stack"/>): fused q/k/v or gate/up then cost one
/// parallel region per decode step instead of three. Up to <see cref="DecodeMatMul.MaxRows"/> rows
/// go through <see cref="DecodeMatMul"/>, which streams every weight once; more rows (prefill) use
/// the packed <see cref="Gemm"/>, one call per part writing its columns of y.
/// </summary>
public sealed unsafe class DenseWeights : IWeightMatrix
{
    readonly float*[] parts;
    readonly int[] partRows;
    readonly object? owner;

    /// <summary>Wraps <paramref name="rows"/> × <paramref name="cols"/> floats at <paramref name="data"/> (row-major, unowned).</summary>
    public DenseWeights(float* data, int rows, int cols) : this([(IntPtr)data], [rows], cols, null) { }

    DenseWeights(IntPtr[] data, int[] rows, int cols, object? owner)
    {
        if (cols <= 0) throw new ArgumentException($"DenseWeights: {cols} columns must be positive.");
        parts = new float*[data.Length];
        for (int i = 0; i < data.Length; i++)
        {
            if (data[i] == IntPtr.Zero) throw new ArgumentNullException(nameof(data));
            if (rows[i] <= 0) throw new ArgumentException($"DenseWeights: part {i} has {rows[i]} rows.");
            parts[i] = (float*)data[i];
            Rows += rows[i];
        }
        partRows = rows;
        Cols = cols;
        this.owner = owner;
    }

    /// <summary>Borrows a contiguous 2-D tensor (out, in); keep the tensor alive while this is used.</summary>
    public static DenseWeights Borrow(Tensor t)
    {
        if (t.Rank != 2) throw new ArgumentException($"DenseWeights: '{t.Name}' {t.ShapeString} is not a matrix.");
        var span = t.AsSpan("DenseWeights");
        // The tensor's storage is native memory, so the address is stable for the tensor's lifetime.
        return new DenseWeights((float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span)), t.Dim(0), t.Dim(1));
    }

    /// <summary>Copies a row-major (rows, cols) matrix into memory this object owns (freed with it).</summary>
    public static DenseWeights Own(ReadOnlySpan<float> data, int rows, int cols)
    {
        if (data.Length != (long)rows * cols) throw new ArgumentException($"DenseWeights.Own: {data.Length} floats do not form ({rows}, {cols}).");
        var block = new NativeBlock((long)rows * cols);
        data.CopyTo(new Span<float>(block.Pointer, data.Length));
        return new DenseWeights([(IntPtr)block.Pointer], [rows], cols, block);
    }

    /// <summary>The matrices stacked by rows (all with the same columns), as one matrix; nothing is copied.</summary>
    public static DenseWeights Stack(params DenseWeights[] matrices)
    {
        if (matrices.Length == 0) throw new ArgumentException("DenseWeights.Stack: nothing to stack.");
        var data = new List<IntPtr>();
        var rows = new List<int>();
        var owners = new List<object>();
        foreach (var m in matrices)
        {
            if (m.Cols != matrices[0].Cols) throw new ArgumentException($"DenseWeights.Stack: {m.Cols} columns vs {matrices[0].Cols}.");
            for (int i = 0; i < m.parts.Length; i++) { data.Add((IntPtr)m.parts[i]); rows.Add(m.partRows[i]); }
            if (m.owner is not null) owners.Add(m.owner);
        }
        return new DenseWeights([.. data], [.. rows], matrices[0].Cols, owners.Count == 0 ? null : owners.ToArray());
    }

    /// <inheritdoc />
    public int Rows { get; }
    /// <inheritdoc />
    public int Cols { get; }
    /// <inheritdoc />
    public long Bytes => (long)Rows * Cols * sizeof(float);

    /// <summary>Row <paramref name="r"/> of W (an embedding lookup when W is the tied embedding table).</summary>
    public ReadOnlySpan<float> Row(int r)
    {
        if ((uint)r >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(r), r, $"DenseWeights: row {r} outside [0, {Rows}).");
        int s = 0;
        while (r >= partRows[s]) { r -= partRows[s]; s++; }
        return new ReadOnlySpan<float>(parts[s] + (long)r * Cols, Cols);
    }

    /// <summary>W as one row-major fp32 array (a copy).</summary>
    public float[] ToArray()
    {
        var a = new float[(long)Rows * Cols];
        long at = 0;
        for (int s = 0; s < parts.Length; s++)
        {
            long len = (long)partRows[s] * Cols;
            new ReadOnlySpan<float>(parts[s], (int)len).CopyTo(a.AsSpan((int)at, (int)len));
            at += len;
        }
        return a;
    }

    /// <inheritdoc />
    public void MatMul(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        if (x.Length < (long)n * Cols || y.Length < (long)n * Rows)
            throw new ArgumentException($"DenseWeights.MatMul: x has {x.Length} (needs {n}×{Cols}), y has {y.Length} (needs {n}×{Rows}).");
        if (n == 0) return;
        fixed (float* px = x, py = y)
        {
            if (n <= DecodeMatMul.MaxRows) { DecodeMatMul.Run(parts, partRows, Cols, px, n, py, Rows); return; }
            int col = 0;
            for (int s = 0; s < parts.Length; s++)
            {
                Gemm.Sgemm(WorkerPool.Shared, false, true, n, partRows[s], Cols, px, Cols, parts[s], Cols, py + col, Rows, accumulate: false);
                col += partRows[s];
            }
        }
    }

    /// <summary>64-byte aligned native floats, freed when the last holder is collected.</summary>
    sealed class NativeBlock
    {
        public readonly float* Pointer;
        public NativeBlock(long floats) => Pointer = (float*)NativeMemory.AlignedAlloc((nuint)(Math.Max(1, floats) * sizeof(float)), 64);
        ~NativeBlock() => NativeMemory.AlignedFree(Pointer);
    }
}
