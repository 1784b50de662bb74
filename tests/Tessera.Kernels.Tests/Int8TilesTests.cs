using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Int8-activation products of quantized weights: the vector kernel against its scalar twin (bit for
/// bit, every row count, ragged tiles, block counts from 1 up), the same bits for a row whether it is
/// alone or in a batch, and the result within the int8-activation bound of the fp32 product with the
/// dequantized weights.
/// </summary>
public class Int8TilesTests
{
    public static TheoryData<TileFormat> Formats => new() { TileFormat.Q8_0, TileFormat.Q4_0, TileFormat.Q4_K };

    /// <summary>Weight blocks of (rows, cols) in <paramref name="format"/>: quantized random floats, plus any-bit codes for the 4-bit formats.</summary>
    static byte[] Blocks(TileFormat format, int rows, int cols, Random r)
    {
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = (float)(r.NextDouble() * 2 - 1) * (i % 7 == 0 ? 3 : 1);
        switch (format)
        {
            case TileFormat.Q8_0:
            {
                var b = new byte[rows * cols / 32 * QuantFormat.Q8_0BlockBytes];
                ScalarQuant.QuantizeQ8_0(w, b);
                for (int blk = 1; blk < b.Length / 34; blk += 3) r.NextBytes(b.AsSpan(blk * 34 + 2, 32));   // any code, −128 included
                return b;
            }
            case TileFormat.Q4_0:
            {
                var b = new byte[rows * cols / 32 * QuantFormat.Q4_0BlockBytes];
                ScalarQuant.QuantizeQ4_0(w, b);
                for (int blk = 0; blk < b.Length / 18; blk++) r.NextBytes(b.AsSpan(blk * 18 + 2, 16));   // every nibble value
                return b;
            }
            default:
            {
                var b = new byte[KQuantFormat.Bytes(KQuantType.Q4_K, w.Length)];
                ScalarKQuant.Quantize(KQuantType.Q4_K, w, b);
                for (int s = 0; s < b.Length / 144; s++) r.NextBytes(b.AsSpan(s * 144 + 4, 140));   // any 6-bit scales, mins and codes
                return b;
            }
        }
    }

    static unsafe float[] Run(TileFormat format, byte[] blocks, int rows, int cols, float[] x, int n)
    {
        var y = new float[n * rows];
        fixed (byte* pb = blocks)
        fixed (float* px = x, py = y)
            Int8Tiles.Run(format, pb, rows, cols, px, n, py);
        return y;
    }

    static unsafe float[] Run(Int8Panels panels, float[] x, int n)
    {
        var y = new float[n * panels.Rows];
        fixed (float* px = x, py = y)
            Int8Tiles.Run(panels, px, n, py);
        return y;
    }

    static float[] RandomX(int count, Random r)
    {
        var x = new float[count];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() * 4 - 2) * (i % 13 == 0 ? 8 : 1);
        return x;
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void VectorKernelEqualsTheScalarTwinBitForBit(TileFormat format)
    {
        var r = new Random(17);
        int unit = format == TileFormat.Q4_K ? 256 : 32;
        foreach (int blocksPerRow in new[] { 1, 2, 3, 5, 8 })
            foreach (int rows in new[] { 1, 3, 4, 9 })
            {
                int cols = blocksPerRow * unit;
                var blocks = Blocks(format, rows, cols, r);
                foreach (int n in new[] { 1, 2, 5, 8 })
                {
                    var x = RandomX(n * cols, r);
                    var want = new float[n * rows];
                    ScalarInt8Tiles.MatMul(format, blocks, rows, cols, x, n, want);
                    Assert.Equal(want, Run(format, blocks, rows, cols, x, n));
                }
            }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void ARowGivesTheSameBitsAloneAndInABatchOfAnySize(TileFormat format)
    {
        var r = new Random(18);
        int rows = 45, cols = 1024;   // ragged last tile; large enough to run on the worker pool
        var blocks = Blocks(format, rows, cols, r);
        var x = RandomX(70 * cols, r);
        var single = new float[70 * rows];
        for (int i = 0; i < 70; i++) Run(format, blocks, rows, cols, x[(i * cols)..((i + 1) * cols)], 1).CopyTo(single, i * rows);
        foreach (int n in new[] { 2, 3, 4, 7, 32, 70 })
            Assert.Equal(single[..(n * rows)], Run(format, blocks, rows, cols, x[..(n * cols)], n));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void ProductIsWithinTheInt8ActivationBoundOfTheDequantizedProduct(TileFormat format)
    {
        var r = new Random(19);
        int rows = 13, cols = 512, n = 3;
        var blocks = Blocks(format, rows, cols, r);
        var w = new float[rows * cols];
        if (format == TileFormat.Q8_0) ScalarQuant.DequantizeQ8_0(blocks, w);
        else if (format == TileFormat.Q4_0) ScalarQuant.DequantizeQ4_0(blocks, w);
        else ScalarKQuant.Dequantize(KQuantType.Q4_K, blocks, w);
        var x = RandomX(n * cols, r);
        var y = Run(format, blocks, rows, cols, x, n);
        const double U = 1.0 / (1 << 24);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < rows; j++)
            {
                // |x̂ − x| ≤ d/2 per element (d = max|x_block|/127), plus fp32 rounding of the scaled block sums.
                double exact = 0, act = 0, mag = 0;
                for (int b = 0; b < cols / 32; b++)
                {
                    double amax = 0;
                    for (int p = 0; p < 32; p++) amax = Math.Max(amax, Math.Abs(x[i * cols + b * 32 + p]));
                    for (int p = b * 32; p < b * 32 + 32; p++)
                    {
                        double xv = x[i * cols + p], wv = w[j * cols + p];
                        exact += xv * wv;
                        act += amax / 254 * Math.Abs(wv);
                        mag += Math.Abs((Math.Abs(xv) + amax / 254) * wv);
                    }
                }
                double tol = act + 4 * (cols / 32 + 8) * U * mag;
                Assert.True(Math.Abs(y[i * rows + j] - exact) <= tol, $"{format} ({i},{j}): {y[i * rows + j]} vs {exact} (tol {tol})");
            }
    }

    public static TheoryData<TileFormat> PanelFormats => new() { TileFormat.Q8_0, TileFormat.Q4_0, TileFormat.Q4_K };

    [Theory]
    [MemberData(nameof(PanelFormats))]
    public void PanelsGiveTheScalarTwinsBitsWithAndWithoutVnni(TileFormat format)
    {
        // The AVX2 forms (vpmaddubsw + vpmaddwd: Zen 4 and other CPUs without AVX-VNNI) are forced here on a VNNI CPU;
        // both forms must form the same exact integers, so the switch changes no bits for concurrent tests either.
        var r = new Random(20);
        int unit = format == TileFormat.Q4_K ? 256 : 32;
        foreach (int rows in new[] { 1, 7, 8, 13, 24 })
            foreach (int blocksPerRow in new[] { 1, 3, 16 })
            {
                int cols = unit * blocksPerRow;
                var blocks = Blocks(format, rows, cols, r);
                var panels = Int8Panels.Pack(format, blocks, rows, cols);
                foreach (int n in new[] { 1, 3, 4, 9 })
                {
                    var x = RandomX(n * cols, r);
                    var want = new float[n * rows];
                    ScalarInt8Tiles.MatMul(format, blocks, rows, cols, x, n, want);
                    Assert.Equal(want, Run(panels, x, n));
                    try
                    {
                        Int8Tiles.AvoidVnni = true;
                        Assert.Equal(want, Run(panels, x, n));
                    }
                    finally { Int8Tiles.AvoidVnni = false; }
                }
            }
    }

    [Theory]
    [MemberData(nameof(PanelFormats))]
    public void PanelsWidenAnyFp16ScaleExactly(TileFormat format)
    {
        // The panels keep the blocks' fp16 scale bits (Q4_K: d and dmin) and widen them per panel (Halves): subnormal,
        // zero, negative, huge, infinite and NaN scales must give the scalar twin's bits (which widens each with
        // QuantFormat.FromHalf).
        var r = new Random(21);
        ushort[] special = [0x0000, 0x8000, 0x0001, 0x03FF, 0x8001, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00, 0x7C00, 0xFC00, 0x7E00];
        int blockBytes = format switch { TileFormat.Q8_0 => QuantFormat.Q8_0BlockBytes, TileFormat.Q4_0 => QuantFormat.Q4_0BlockBytes, _ => 144 };
        int halvesPerBlock = format == TileFormat.Q4_K ? 2 : 1;
        foreach (bool withNonFinite in new[] { false, true })
        {
            int rows = 21, cols = format == TileFormat.Q4_K ? 256 * 2 : 32 * 5;
            var blocks = Blocks(format, rows, cols, r);
            for (int blk = 0; blk < blocks.Length / blockBytes; blk++)
                for (int k = 0; k < halvesPerBlock; k++)
                {
                    ushort h = (blk + k) % 3 == 0 ? special[r.Next(withNonFinite ? special.Length : special.Length - 3)] : (ushort)r.Next(0x10000);
                    if (!withNonFinite && (h & 0x7C00) == 0x7C00) h &= 0x83FF;   // keep this pass finite: subnormal instead
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(blocks.AsSpan(blk * blockBytes + 2 * k), h);
                }
            var panels = Int8Panels.Pack(format, blocks, rows, cols);
            foreach (int n in new[] { 1, 5 })
            {
                var x = RandomX(n * cols, r);
                var want = new float[n * rows];
                ScalarInt8Tiles.MatMul(format, blocks, rows, cols, x, n, want);
                Assert.Equal(want, Run(panels, x, n));
            }
        }
    }

    [Fact]
    public unsafe void HalvesWidensEveryFp16PatternAsTheScalarConversion()
    {
        var h = new ushort[0x10000 + 7];   // not a multiple of 16 or 8: the tails run too
        for (int i = 0; i < h.Length; i++) h[i] = (ushort)(i * 40503);   // every pattern (40503 is odd), shuffled
        var f = new float[h.Length];
        fixed (ushort* ph = h)
        fixed (float* pf = f)
            Halves.ToSingle(ph, pf, h.Length);
        for (int i = 0; i < h.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(QuantFormat.FromHalf(h[i])) == BitConverter.SingleToInt32Bits(f[i]),
                $"0x{h[i]:X4}: {f[i]} vs {QuantFormat.FromHalf(h[i])}");
    }

    [Fact]
    public void PackingRejectsTheWrongByteCountAndFormat()
    {
        Assert.Throws<ArgumentException>(() => Int8Panels.Pack(TileFormat.Q8_0, new byte[33], 1, 32));
        Assert.Throws<ArgumentException>(() => Int8Panels.Pack(TileFormat.Q4_0, new byte[18], 1, 48));
        Assert.Throws<ArgumentException>(() => Int8Panels.Pack(TileFormat.Q4_K, new byte[143], 1, 256));
        Assert.Throws<ArgumentException>(() => Int8Panels.Pack(TileFormat.Q4_K, new byte[144], 1, 128));
        Assert.Throws<ArgumentException>(() => Int8Panels.Pack(TileFormat.Q6_K, new byte[210], 1, 256));
    }
}
