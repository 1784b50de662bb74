using System.Buffers;
using System.Buffers.Binary;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>
/// A ggml block format (32 weights per block, an fp16 scale first in each block): its sizes, its
/// reference quantizer, and its integer dot product against int8-quantized activations. A struct
/// implementing this is a type parameter of <see cref="BlockQuantMatrix{TFormat}"/>, so the JIT
/// specialises the hot loop per format with no virtual calls.
/// </summary>
public unsafe interface IBlockFormat
{
    /// <summary>The ggml name of the format, e.g. <c>Q8_0</c>.</summary>
    static abstract string Name { get; }
    /// <summary>Bytes one block of 32 weights takes.</summary>
    static abstract int BlockBytes { get; }
    /// <summary>Quantizes <paramref name="x"/> (a multiple of 32 values) into consecutive blocks (reference rounding).</summary>
    static abstract void Quantize(ReadOnlySpan<float> x, Span<byte> blocks);
    /// <summary>Expands consecutive blocks back to floats.</summary>
    static abstract void Dequantize(ReadOnlySpan<byte> blocks, Span<float> x);
    /// <summary>Σ over nb blocks of one weight row · one quantized activation row (<paramref name="sums"/>: per-block Σq, for offset formats).</summary>
    static abstract float Dot(byte* w, float* ws, sbyte* q, float* xs, int* sums, int nb, int width);
}

/// <summary>ggml Q8_0: fp16 d + 32 int8, x = d·q.</summary>
public readonly unsafe struct Q8_0Format : IBlockFormat
{
    /// <inheritdoc />
    public static string Name => "Q8_0";
    /// <inheritdoc />
    public static int BlockBytes => QuantFormat.Q8_0BlockBytes;
    /// <inheritdoc />
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> blocks) => ScalarQuant.QuantizeQ8_0(x, blocks);
    /// <inheritdoc />
    public static void Dequantize(ReadOnlySpan<byte> blocks, Span<float> x) => ScalarQuant.DequantizeQ8_0(blocks, x);
    /// <inheritdoc />
    public static float Dot(byte* w, float* ws, sbyte* q, float* xs, int* sums, int nb, int width) => QuantDot.Q8_0(w, ws, q, xs, nb, width);
}

/// <summary>ggml Q4_0: fp16 d + 16 bytes of nibbles (low = elements 0..15, high = 16..31), x = d·(q − 8).</summary>
public readonly unsafe struct Q4_0Format : IBlockFormat
{
    /// <inheritdoc />
    public static string Name => "Q4_0";
    /// <inheritdoc />
    public static int BlockBytes => QuantFormat.Q4_0BlockBytes;
    /// <inheritdoc />
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> blocks) => ScalarQuant.QuantizeQ4_0(x, blocks);
    /// <inheritdoc />
    public static void Dequantize(ReadOnlySpan<byte> blocks, Span<float> x) => ScalarQuant.DequantizeQ4_0(blocks, x);
    /// <inheritdoc />
    public static float Dot(byte* w, float* ws, sbyte* q, float* xs, int* sums, int nb, int width) => QuantDot.Q4_0(w, ws, q, xs, sums, nb, width);
}

/// <summary>
/// A weight matrix W (Rows = out, Cols = in) stored row-major in a ggml block format, each row
/// Cols/32 blocks (the exact bytes of a GGUF tensor of that type). <see cref="MatMul(ReadOnlySpan{float}, int, Span{float})"/>
/// computes y (n×Rows) = x (n×Cols)·Wᵀ with int8 activations and integer dot products
/// (<see cref="QuantDot"/>), row-parallel over <see cref="WorkerPool.Shared"/>. Twins:
/// <see cref="ScalarQuant.MatMulQ8_0"/>, <see cref="ScalarQuant.MatMulQ4_0"/>.
/// </summary>
public abstract unsafe class BlockQuantMatrix<TFormat> where TFormat : struct, IBlockFormat
{
    readonly byte[] blocks;
    readonly float[] scales;   // fp32 copies of the fp16 block scales, so the inner loop does no conversion

    /// <summary>Wraps block bytes (copied); Cols must be a multiple of 32.</summary>
    protected BlockQuantMatrix(int rows, int cols, ReadOnlySpan<byte> blockBytes)
    {
        string name = TFormat.Name + "Matrix";
        if (rows < 0 || cols < 0) throw new ArgumentException($"{name}: shape ({rows}, {cols}) must be non-negative.");
        long expected = QuantFormat.CheckedBlocks((long)rows * cols) * TFormat.BlockBytes;
        if (blockBytes.Length != expected) throw new ArgumentException($"{name}: ({rows}, {cols}) needs {expected} bytes of blocks, got {blockBytes.Length}.");
        Rows = rows;
        Cols = cols;
        blocks = blockBytes.ToArray();
        scales = new float[expected / TFormat.BlockBytes];
        for (int b = 0; b < scales.Length; b++)
            scales[b] = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(blocks.AsSpan(b * TFormat.BlockBytes)));
    }

    /// <summary>Output features (rows of W).</summary>
    public int Rows { get; }

    /// <summary>Input features (columns of W), a multiple of 32.</summary>
    public int Cols { get; }

    /// <summary>Bytes held: the blocks plus the fp32 scale cache.</summary>
    public long Bytes => blocks.LongLength + scales.LongLength * sizeof(float);

    /// <summary>The GGUF block bytes.</summary>
    public ReadOnlySpan<byte> Blocks => blocks;

    /// <summary>Quantizes a row-major fp32 matrix with ggml's reference quantizer for the format.</summary>
    protected static byte[] QuantizeRows(ReadOnlySpan<float> w, int rows, int cols)
    {
        if (w.Length != (long)rows * cols) throw new ArgumentException($"{TFormat.Name}Matrix.FromFloat: {w.Length} weights do not form ({rows}, {cols}).");
        QuantFormat.CheckedBlocks(cols);
        var bytes = new byte[QuantFormat.CheckedBlocks(w.Length) * TFormat.BlockBytes];
        TFormat.Quantize(w, bytes);
        return bytes;
    }

    /// <summary>The fp32 matrix the blocks represent.</summary>
    public float[] Dequantize()
    {
        var w = new float[(long)Rows * Cols];
        TFormat.Dequantize(blocks, w);
        return w;
    }

    /// <summary>y (n×Rows) = x (n×Cols)·Wᵀ.</summary>
    public void MatMul(ReadOnlySpan<float> x, int n, Span<float> y) => MatMul(x, n, y, QuantDot.BestWidth);

    internal void MatMul(ReadOnlySpan<float> x, int n, Span<float> y, int width)
    {
        QuantMatMul.Check(TFormat.Name + "Matrix.MatMul", Rows, Cols, x.Length, n, y.Length);
        if (n == 0 || Rows == 0) return;
        int nb = Cols / QuantFormat.BlockSize;
        var scratch = QuantMatMul.Rent(n, Cols);
        try
        {
            fixed (float* px = x, py = y, pws = scales)
            fixed (byte* pw = blocks, ps = scratch)
            {
                QuantMatMul.Quantize(px, n, Cols, ps, out var q, out var xs, out var sums);
                RowParallel.Run(new RowRange(pw, pws, q, xs, sums, py, nb, n, Rows, QuantDot.Supported(width)), Rows, (long)Rows * Cols * n);
            }
        }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    readonly struct RowRange(byte* w, float* ws, sbyte* q, float* xs, int* sums, float* y, int nb, int n, int rows, int width) : IRowRange
    {
        public void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                byte* wr = w + (long)r * nb * TFormat.BlockBytes;
                float* sr = ws + (long)r * nb;
                for (int i = 0; i < n; i++)
                    y[(long)i * rows + r] = TFormat.Dot(wr, sr, q + (long)i * nb * QuantFormat.BlockSize, xs + (long)i * nb, sums + (long)i * nb, nb, width);
            }
        }
    }
}

/// <summary>A Q8_0 weight matrix (see <see cref="BlockQuantMatrix{TFormat}"/>).</summary>
public sealed class Q8_0Matrix(int rows, int cols, ReadOnlySpan<byte> blocks) : BlockQuantMatrix<Q8_0Format>(rows, cols, blocks)
{
    /// <summary>Quantizes a row-major fp32 matrix with ggml's Q8_0 reference quantizer.</summary>
    public static Q8_0Matrix FromFloat(ReadOnlySpan<float> w, int rows, int cols) => new(rows, cols, QuantizeRows(w, rows, cols));
}

/// <summary>A Q4_0 weight matrix (see <see cref="BlockQuantMatrix{TFormat}"/>).</summary>
public sealed class Q4_0Matrix(int rows, int cols, ReadOnlySpan<byte> blocks) : BlockQuantMatrix<Q4_0Format>(rows, cols, blocks)
{
    /// <summary>Quantizes a row-major fp32 matrix with ggml's Q4_0 reference quantizer.</summary>
    public static Q4_0Matrix FromFloat(ReadOnlySpan<float> w, int rows, int cols) => new(rows, cols, QuantizeRows(w, rows, cols));
}
