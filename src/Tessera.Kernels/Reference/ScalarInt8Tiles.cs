using System.Buffers.Binary;

namespace Tessera.Kernels.Reference;

/// <summary>
/// Scalar twin of <see cref="Int8Tiles"/>: activations rounded by <see cref="ScalarQuant.QuantizeActivations"/>.
/// Q8_0 and Q4_0: each 32-block's exact integer dot Σw·x (Q4_0 w = q − 8), then s = scale · d_x and
/// acc = fma(dot, s, acc), blocks in K order. Q4_K: per sub-block the exact integer dot Σq·x (codes 0 … 15),
/// acc = fma(dot, (d·sc)·d_x, acc) and mins = fma((dmin·m)·d_x, Σx, mins) in K order, result acc − mins.
/// Bit for bit the vector kernel's result.
/// </summary>
public static class ScalarInt8Tiles
{
    const int B = QuantFormat.BlockSize;

    /// <summary>y (n × rows) = q8(x) (n × cols) · Wᵀ for W in <paramref name="format"/> (Q8_0, Q4_0 or Q4_K) blocks, row-major.</summary>
    public static void MatMul(TileFormat format, ReadOnlySpan<byte> blocks, int rows, int cols, ReadOnlySpan<float> x, int n, Span<float> y)
    {
        if (format is not (TileFormat.Q8_0 or TileFormat.Q4_0 or TileFormat.Q4_K)) throw new ArgumentException($"ScalarInt8Tiles: {format} is not an int8-activation format.");
        int nb = cols / B;
        var q = new sbyte[n * cols];
        var xs = new float[n * nb];
        var sums = new int[n * nb];
        ScalarQuant.QuantizeActivations(x[..(n * cols)], q, xs, sums);
        long rowBytes = format switch
        {
            TileFormat.Q8_0 => (long)nb * QuantFormat.Q8_0BlockBytes,
            TileFormat.Q4_0 => (long)nb * QuantFormat.Q4_0BlockBytes,
            _ => (long)(cols / KQuantFormat.SuperBlock) * KQuantFormat.BlockBytes(KQuantType.Q4_K),
        };
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++)
            {
                var w = blocks.Slice((int)(r * rowBytes), (int)rowBytes);
                var qi = q.AsSpan(i * cols, cols);
                var xi = xs.AsSpan(i * nb, nb);
                y[i * rows + r] = format == TileFormat.Q4_K ? RowQ4K(w, qi, xi, sums.AsSpan(i * nb, nb), cols) : RowSigned(format, w, qi, xi, nb);
            }
    }

    static float RowSigned(TileFormat format, ReadOnlySpan<byte> w, ReadOnlySpan<sbyte> q, ReadOnlySpan<float> xs, int nb)
    {
        int bytes = format == TileFormat.Q8_0 ? QuantFormat.Q8_0BlockBytes : QuantFormat.Q4_0BlockBytes;
        float acc = 0;
        for (int b = 0; b < nb; b++)
        {
            var blk = w.Slice(b * bytes, bytes);
            float d = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(blk));
            int dot = 0;
            for (int j = 0; j < B; j++)
            {
                int code = format == TileFormat.Q8_0 ? (sbyte)blk[2 + j] : (j < 16 ? blk[2 + j] & 0x0F : blk[2 + j - 16] >> 4) - 8;
                dot += code * q[b * B + j];
            }
            acc = MathF.FusedMultiplyAdd(dot, d * xs[b], acc);
        }
        return acc;
    }

    static float RowQ4K(ReadOnlySpan<byte> w, ReadOnlySpan<sbyte> q, ReadOnlySpan<float> xs, ReadOnlySpan<int> sums, int cols)
    {
        int bytes = KQuantFormat.BlockBytes(KQuantType.Q4_K);
        float acc = 0, mins = 0;
        for (int s = 0; s < cols / KQuantFormat.SuperBlock; s++)
        {
            var blk = w.Slice(s * bytes, bytes);
            float d = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(blk));
            float dmin = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(blk[2..]));
            for (int j = 0; j < 8; j++)
            {
                var (sc, m) = KQuantFormat.ScaleMin(blk.Slice(4, 12), j);
                int blockIndex = 8 * s + j;
                float dx = xs[blockIndex];
                var codes = blk.Slice(16 + 32 * (j / 2), 32);
                int dot = 0;
                for (int e = 0; e < B; e++) dot += (j % 2 == 0 ? codes[e] & 0x0F : codes[e] >> 4) * q[blockIndex * B + e];
                acc = MathF.FusedMultiplyAdd(dot, (d * sc) * dx, acc);
                mins = MathF.FusedMultiplyAdd((dmin * m) * dx, sums[blockIndex], mins);
            }
        }
        return acc - mins;
    }
}
