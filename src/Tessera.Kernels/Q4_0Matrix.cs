using System.Buffers;
using System.Buffers.Binary;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>
/// A weight matrix W (Rows = out, Cols = in) stored as ggml Q4_0 blocks (4-bit codes, x = d·(q − 8)), row-major,
/// each row Cols/32 blocks (the exact bytes of a GGUF Q4_0 tensor). <see cref="MatMul(ReadOnlySpan{float}, int, Span{float})"/> computes
/// y (n×Rows) = x (n×Cols)·Wᵀ with int8 activations and integer dot products (<see cref="QuantDot"/>),
/// row-parallel over <see cref="WorkerPool.Shared"/>. Twin: <see cref="ScalarQuant.MatMulQ4_0"/>.
/// </summary>
public sealed unsafe class Q4_0Matrix
{
    readonly byte[] blocks;
    readonly float[] scales;   // fp32 copies of the fp16 block scales, so the inner loop does no conversion

    /// <summary>Wraps Q4_0 bytes (copied); Cols must be a multiple of 32.</summary>
    public Q4_0Matrix(int rows, int cols, ReadOnlySpan<byte> q8_0Blocks)
    {
        if (rows < 0 || cols < 0) throw new ArgumentException($"Q4_0Matrix: shape ({rows}, {cols}) must be non-negative.");
        long expected = QuantFormat.Q4_0Bytes((long)rows * cols);
        if (q8_0Blocks.Length != expected) throw new ArgumentException($"Q4_0Matrix: ({rows}, {cols}) needs {expected} bytes of blocks, got {q8_0Blocks.Length}.");
        Rows = rows;
        Cols = cols;
        blocks = q8_0Blocks.ToArray();
        scales = new float[expected / QuantFormat.Q4_0BlockBytes];
        for (int b = 0; b < scales.Length; b++)
            scales[b] = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(blocks.AsSpan(b * QuantFormat.Q4_0BlockBytes)));
    }

    /// <summary>Output features (rows of W).</summary>
    public int Rows { get; }

    /// <summary>Input features (columns of W), a multiple of 32.</summary>
    public int Cols { get; }

    /// <summary>Bytes held: the Q4_0 blocks plus the fp32 scale cache.</summary>
    public long Bytes => blocks.LongLength + scales.LongLength * sizeof(float);

    /// <summary>The GGUF Q4_0 bytes.</summary>
    public ReadOnlySpan<byte> Blocks => blocks;

    /// <summary>Quantizes a row-major fp32 matrix with ggml's Q4_0 reference quantizer.</summary>
    public static Q4_0Matrix FromFloat(ReadOnlySpan<float> w, int rows, int cols)
    {
        if (w.Length != (long)rows * cols) throw new ArgumentException($"Q4_0Matrix.FromFloat: {w.Length} weights do not form ({rows}, {cols}).");
        var bytes = new byte[QuantFormat.Q4_0Bytes(w.Length)];
        QuantFormat.CheckedBlocks(cols);
        ScalarQuant.QuantizeQ4_0(w, bytes);
        return new Q4_0Matrix(rows, cols, bytes);
    }

    /// <summary>The fp32 matrix the blocks represent.</summary>
    public float[] Dequantize()
    {
        var w = new float[(long)Rows * Cols];
        ScalarQuant.DequantizeQ4_0(blocks, w);
        return w;
    }

    /// <summary>y (n×Rows) = x (n×Cols)·Wᵀ.</summary>
    public void MatMul(ReadOnlySpan<float> x, int n, Span<float> y) => MatMul(x, n, y, QuantDot.BestWidth);

    internal void MatMul(ReadOnlySpan<float> x, int n, Span<float> y, int width)
    {
        QuantMatMul.Check("Q4_0Matrix.MatMul", Rows, Cols, x.Length, n, y.Length);
        if (n == 0 || Rows == 0) return;
        int nb = Cols / QuantFormat.BlockSize;
        var scratch = QuantMatMul.Rent(n, Cols);
        try
        {
            fixed (float* px = x, py = y, pws = scales)
            fixed (byte* pw = blocks, ps = scratch)
            {
                QuantMatMul.Quantize(px, n, Cols, ps, out var q, out var xs, out var sums);
                RowParallel.Run(new Rows4(pw, pws, q, xs, sums, py, nb, n, Rows, QuantDot.Supported(width)), Rows, (long)Rows * Cols * n);
            }
        }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    readonly struct Rows4(byte* w, float* ws, sbyte* q, float* xs, int* sums, float* y, int nb, int n, int rows, int width) : IRowRange
    {
        public void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                byte* wr = w + (long)r * nb * QuantFormat.Q4_0BlockBytes;
                float* sr = ws + (long)r * nb;
                for (int i = 0; i < n; i++)
                    y[(long)i * rows + r] = QuantDot.Q4_0(wr, sr, q + (long)i * nb * QuantFormat.BlockSize, xs + (long)i * nb, sums + (long)i * nb, nb, width);
            }
        }
    }
}
