using System.Buffers;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>
/// A ternary weight matrix W (Rows = out, Cols = in): codes t ∈ {−1, 0, +1} packed 2 bits each
/// (layout in <see cref="QuantFormat"/>) and one fp16 absmean scale γ per group of
/// <see cref="GroupSize"/> consecutive weights of the row-major tensor, so w ≈ γ·t (BitNet b1.58).
/// A group as large as the tensor is the per-tensor variant. <see cref="MatMul(ReadOnlySpan{float}, int, Span{float})"/> computes
/// y (n×Rows) = x (n×Cols)·Wᵀ with int8 activations and integer dot products; twin:
/// <see cref="ScalarQuant.MatMulTernary"/>.
/// </summary>
public sealed unsafe class TernaryMatrix
{
    readonly byte[] packed;
    readonly ushort[] scaleBits;
    readonly float[] scales;

    /// <summary>Wraps packed codes and fp16 scale bits (both copied).</summary>
    public TernaryMatrix(int rows, int cols, int groupSize, ReadOnlySpan<byte> packedCodes, ReadOnlySpan<ushort> fp16Scales)
    {
        if (rows < 0 || cols < 0) throw new ArgumentException($"TernaryMatrix: shape ({rows}, {cols}) must be non-negative.");
        long n = (long)rows * cols;
        long packedBytes = QuantFormat.TernaryPackedBytes(n);
        QuantFormat.CheckedBlocks(cols);
        long groups = QuantFormat.TernaryGroups(n, groupSize);
        if (packedCodes.Length != packedBytes || fp16Scales.Length != groups)
            throw new ArgumentException($"TernaryMatrix: ({rows}, {cols}) with group {groupSize} needs {packedBytes} packed bytes and {groups} scales; got {packedCodes.Length} and {fp16Scales.Length}.");
        Rows = rows;
        Cols = cols;
        GroupSize = groupSize;
        packed = packedCodes.ToArray();
        scaleBits = fp16Scales.ToArray();
        scales = new float[groups];
        for (int g = 0; g < scales.Length; g++) scales[g] = QuantFormat.FromHalf(scaleBits[g]);
    }

    /// <summary>Output features.</summary>
    public int Rows { get; }

    /// <summary>Input features, a multiple of 32.</summary>
    public int Cols { get; }

    /// <summary>Weights per scale (a multiple of 32); ≥ Rows·Cols means one scale for the tensor.</summary>
    public int GroupSize { get; }

    /// <summary>Bytes held: packed codes, fp16 scales and their fp32 cache.</summary>
    public long Bytes => packed.LongLength + scaleBits.LongLength * sizeof(ushort) + scales.LongLength * sizeof(float);

    /// <summary>The packed 2-bit codes.</summary>
    public ReadOnlySpan<byte> Packed => packed;

    /// <summary>The fp16 bits of the group scales.</summary>
    public ReadOnlySpan<ushort> ScaleBits => scaleBits;

    /// <summary>Absmean ternary quantization with one scale per <paramref name="groupSize"/> weights.</summary>
    public static TernaryMatrix FromFloat(ReadOnlySpan<float> w, int rows, int cols, int groupSize = 64)
    {
        if (w.Length != (long)rows * cols) throw new ArgumentException($"TernaryMatrix.FromFloat: {w.Length} weights do not form ({rows}, {cols}).");
        QuantFormat.CheckedBlocks(cols);
        var codes = new byte[QuantFormat.TernaryPackedBytes(w.Length)];
        var bits = new ushort[QuantFormat.TernaryGroups(w.Length, groupSize)];
        ScalarQuant.QuantizeTernary(w, groupSize, codes, bits);
        return new TernaryMatrix(rows, cols, groupSize, codes, bits);
    }

    /// <summary>Absmean ternary quantization with a single scale for the whole tensor (the comparison baseline).</summary>
    public static TernaryMatrix FromFloatPerTensor(ReadOnlySpan<float> w, int rows, int cols)
        => FromFloat(w, rows, cols, Math.Max(QuantFormat.BlockSize, (int)Math.Min(int.MaxValue / 2, ((long)rows * cols + 31) / 32 * 32)));

    /// <summary>The fp32 matrix the codes and scales represent.</summary>
    public float[] Dequantize()
    {
        var w = new float[(long)Rows * Cols];
        ScalarQuant.DequantizeTernary(packed, scales, GroupSize, w);
        return w;
    }

    /// <summary>y (n×Rows) = x (n×Cols)·Wᵀ.</summary>
    public void MatMul(ReadOnlySpan<float> x, int n, Span<float> y) => MatMul(x, n, y, QuantDot.BestWidth);

    internal void MatMul(ReadOnlySpan<float> x, int n, Span<float> y, int width)
    {
        QuantMatMul.Check("TernaryMatrix.MatMul", Rows, Cols, x.Length, n, y.Length);
        if (n == 0 || Rows == 0) return;
        int nb = Cols / QuantFormat.BlockSize;
        var scratch = QuantMatMul.Rent(n, Cols);
        try
        {
            fixed (float* px = x, py = y, pgs = scales)
            fixed (byte* pw = packed, ps = scratch)
            {
                QuantMatMul.Quantize(px, n, Cols, ps, out var q, out var xs, out var sums);
                RowParallel.Run(new RowsT(pw, pgs, GroupSize, q, xs, sums, py, nb, n, Rows, QuantDot.Supported(width)), Rows, (long)Rows * Cols * n);
            }
        }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    readonly struct RowsT(byte* t, float* gs, int groupSize, sbyte* q, float* xs, int* sums, float* y, int nb, int n, int rows, int width) : IRowRange
    {
        public void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                byte* tr = t + (long)r * nb * QuantFormat.TernaryBlockBytes;
                long first = (long)r * nb * QuantFormat.BlockSize;
                for (int i = 0; i < n; i++)
                    y[(long)i * rows + r] = QuantDot.Ternary(tr, gs, groupSize, first, q + (long)i * nb * QuantFormat.BlockSize,
                        xs + (long)i * nb, sums + (long)i * nb, nb, width);
            }
        }
    }
}
