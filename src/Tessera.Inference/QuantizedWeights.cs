using Tessera.Kernels;

namespace Tessera.Inference;

/// <summary>Storage formats the engine can run weight matrices in.</summary>
public enum WeightFormat
{
    /// <summary>fp32 (<see cref="DenseWeights"/>).</summary>
    F32,
    /// <summary>ggml Q8_0: 32 int8 + one fp16 scale per block (8.5 bits per weight).</summary>
    Q8_0,
    /// <summary>ggml Q4_0: 32 4-bit codes + one fp16 scale per block (4.5 bits per weight).</summary>
    Q4_0,
    /// <summary>Tessera ternary {−1, 0, +1} with per-group absmean scales (≈2 bits per weight; for ternary-trained models).</summary>
    Ternary,
}

/// <summary>
/// A quantized weight matrix (<see cref="Q8_0Matrix"/>, <see cref="Q4_0Matrix"/> or
/// <see cref="TernaryMatrix"/>) behind <see cref="IWeightMatrix"/>, so the forward pass runs on it
/// unchanged. Q8_0 and Q4_0 run through <see cref="QuantizedTiles"/>: the blocks are expanded to fp32
/// in registers or L1 and multiplied in fp32, exactly the product with the dequantized matrix
/// (memory traffic is the quantized size). Ternary uses the int8-activation dot products of
/// <see cref="TernaryMatrix"/>.
/// <see cref="Bytes"/> is what a decode step streams, which is the point: fewer bytes per token.
/// </summary>
public sealed unsafe class QuantizedWeights : IWeightMatrix
{
    readonly Q8_0Matrix? q8;
    readonly Q4_0Matrix? q4;
    readonly TernaryMatrix? ternary;
    readonly float[] scales = [];   // fp32 block scales for the fp32-expansion path (Q8_0, Q4_0)

    /// <summary>Runs a Q8_0 matrix (its blocks are read in place; the scales are also kept as fp32).</summary>
    public QuantizedWeights(Q8_0Matrix m)
    {
        q8 = m; Format = WeightFormat.Q8_0; Rows = m.Rows; Cols = m.Cols;
        scales = BlockScales(m.Blocks, QuantFormat.Q8_0BlockBytes);
        Bytes = m.Blocks.Length + scales.LongLength * sizeof(float);
    }

    /// <summary>Runs a Q4_0 matrix (its blocks are read in place; the scales are also kept as fp32).</summary>
    public QuantizedWeights(Q4_0Matrix m)
    {
        q4 = m; Format = WeightFormat.Q4_0; Rows = m.Rows; Cols = m.Cols;
        scales = BlockScales(m.Blocks, QuantFormat.Q4_0BlockBytes);
        Bytes = m.Blocks.Length + scales.LongLength * sizeof(float);
    }

    /// <summary>The fp16 scale at the head of every block, as fp32 (read once per block instead of converted).</summary>
    static float[] BlockScales(ReadOnlySpan<byte> blocks, int blockBytes)
    {
        var s = new float[blocks.Length / blockBytes];
        for (int b = 0; b < s.Length; b++) s[b] = QuantFormat.FromHalf(System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(blocks[(b * blockBytes)..]));
        return s;
    }
    /// <summary>Runs a ternary matrix through its int8-activation dot products.</summary>
    public QuantizedWeights(TernaryMatrix m) { ternary = m; Format = WeightFormat.Ternary; Rows = m.Rows; Cols = m.Cols; Bytes = m.Bytes; }

    /// <summary>Quantizes a row-major (rows, cols) fp32 matrix; cols must be a multiple of 32.</summary>
    public static QuantizedWeights Quantize(ReadOnlySpan<float> w, int rows, int cols, WeightFormat format, int ternaryGroup = 64) => format switch
    {
        WeightFormat.Q8_0 => new(Q8_0Matrix.FromFloat(w, rows, cols)),
        WeightFormat.Q4_0 => new(Q4_0Matrix.FromFloat(w, rows, cols)),
        WeightFormat.Ternary => new(TernaryMatrix.FromFloat(w, rows, cols, ternaryGroup)),
        _ => throw new ArgumentException($"QuantizedWeights: {format} is not a quantized format."),
    };

    /// <summary>Q8_0 or Q4_0 matrices of one format and width stacked by rows (their blocks concatenated).</summary>
    public static QuantizedWeights Concatenate(params QuantizedWeights[] parts)
    {
        if (parts.Length == 0) throw new ArgumentException("QuantizedWeights.Concatenate: nothing to stack.");
        var format = parts[0].Format;
        int rows = 0, cols = parts[0].Cols;
        var bytes = new List<byte>();
        foreach (var p in parts)
        {
            if (p.Format != format || p.Cols != cols) throw new ArgumentException($"QuantizedWeights.Concatenate: {p.Format} ({p.Rows}, {p.Cols}) does not stack with {format} × {cols}.");
            rows += p.Rows;
            bytes.AddRange(format switch
            {
                WeightFormat.Q8_0 => p.q8!.Blocks.ToArray(),
                WeightFormat.Q4_0 => p.q4!.Blocks.ToArray(),
                _ => throw new ArgumentException($"QuantizedWeights.Concatenate: {format} scales are per group of the whole tensor; stack before quantizing."),
            });
        }
        var all = bytes.ToArray();
        return format == WeightFormat.Q8_0 ? new(new Q8_0Matrix(rows, cols, all)) : new(new Q4_0Matrix(rows, cols, all));
    }

    /// <summary>The storage format.</summary>
    public WeightFormat Format { get; }
    public int Rows { get; }
    public int Cols { get; }

    /// <summary>Bytes one full product reads: the blocks and the fp32 copy of their scales.</summary>
    public long Bytes { get; }

    /// <summary>The fp32 matrix the codes represent.</summary>
    public float[] Dequantize() => q8?.Dequantize() ?? q4?.Dequantize() ?? ternary!.Dequantize();

    public void MatMul(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        if (x.Length < (long)n * Cols || y.Length < (long)n * Rows)
            throw new ArgumentException($"QuantizedWeights.MatMul: x has {x.Length} (needs {n}×{Cols}), y has {y.Length} (needs {n}×{Rows}).");
        // The quantized kernels want exact extents; the engine's buffers are larger.
        var xs = x[..(n * Cols)];
        var ys = y[..(n * Rows)];
        if (Format is WeightFormat.Q8_0 or WeightFormat.Q4_0)
        {
            fixed (byte* blocks = q8 is not null ? q8.Blocks : q4!.Blocks)
            fixed (float* px = xs, py = ys, ps = scales)
                QuantizedTiles.Run(Format, blocks, ps, Rows, Cols, px, n, py);
            return;
        }
        if (q8 is not null) q8.MatMul(xs, n, ys);
        else if (q4 is not null) q4.MatMul(xs, n, ys);
        else ternary!.MatMul(xs, n, ys);
    }
}
