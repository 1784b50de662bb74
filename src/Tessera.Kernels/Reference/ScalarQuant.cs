using System.Buffers.Binary;

namespace Tessera.Kernels.Reference;

/// <summary>
/// Scalar twin of the quantized formats and matmuls (<see cref="QuantFormat"/>, <see cref="QuantDot"/>,
/// <see cref="Q8_0Matrix"/>, <see cref="Q4_0Matrix"/>, <see cref="TernaryMatrix"/>). Weight
/// quantizers follow ggml's reference quantizers exactly (same scale choice and rounding), so their
/// bytes match what llama.cpp's <c>quantize_row_q8_0_ref</c> / <c>quantize_row_q4_0_ref</c> write.
/// Activations are quantized per 32-block to int8 with an fp32 scale (round half to even), keeping
/// the block's integer sum so the offset formats (Q4_0's −8, ternary's −1) cost one multiply per block.
/// </summary>
public static class ScalarQuant
{
    const int B = QuantFormat.BlockSize;

    /// <summary>ggml Q8_0: d = max|x|/127, q = round-half-away(x/d); stored scale is fp16(d).</summary>
    public static void QuantizeQ8_0(ReadOnlySpan<float> x, Span<byte> blocks)
    {
        long nb = QuantFormat.CheckedBlocks(x.Length);
        CheckBytes(blocks.Length, nb * QuantFormat.Q8_0BlockBytes, "QuantizeQ8_0");
        for (int b = 0; b < nb; b++)
        {
            var xb = x.Slice(b * B, B);
            var o = blocks.Slice(b * QuantFormat.Q8_0BlockBytes, QuantFormat.Q8_0BlockBytes);
            float amax = 0;
            for (int j = 0; j < B; j++) amax = MathF.Max(amax, MathF.Abs(xb[j]));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            BinaryPrimitives.WriteUInt16LittleEndian(o, QuantFormat.ToHalf(d));
            for (int j = 0; j < B; j++) o[2 + j] = (byte)(sbyte)MathF.Round(xb[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>x = fp16(d)·q per block.</summary>
    public static void DequantizeQ8_0(ReadOnlySpan<byte> blocks, Span<float> x)
    {
        long nb = QuantFormat.CheckedBlocks(x.Length);
        CheckBytes(blocks.Length, nb * QuantFormat.Q8_0BlockBytes, "DequantizeQ8_0");
        for (int b = 0; b < nb; b++)
        {
            var o = blocks.Slice(b * QuantFormat.Q8_0BlockBytes, QuantFormat.Q8_0BlockBytes);
            float d = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(o));
            for (int j = 0; j < B; j++) x[b * B + j] = d * (sbyte)o[2 + j];
        }
    }

    /// <summary>
    /// ggml Q4_0: m = the element of largest magnitude (with its sign), d = m/−8, q = min(15, trunc(x/d + 8.5)).
    /// The extreme element lands exactly on q = 0; the opposite end can reach q = 16, which is clamped to 15.
    /// </summary>
    public static void QuantizeQ4_0(ReadOnlySpan<float> x, Span<byte> blocks)
    {
        long nb = QuantFormat.CheckedBlocks(x.Length);
        CheckBytes(blocks.Length, nb * QuantFormat.Q4_0BlockBytes, "QuantizeQ4_0");
        for (int b = 0; b < nb; b++)
        {
            var xb = x.Slice(b * B, B);
            var o = blocks.Slice(b * QuantFormat.Q4_0BlockBytes, QuantFormat.Q4_0BlockBytes);
            float amax = 0, max = 0;
            for (int j = 0; j < B; j++)
                if (amax < MathF.Abs(xb[j])) { amax = MathF.Abs(xb[j]); max = xb[j]; }
            float d = max / -8f;
            float id = d != 0 ? 1f / d : 0f;
            BinaryPrimitives.WriteUInt16LittleEndian(o, QuantFormat.ToHalf(d));
            for (int j = 0; j < B / 2; j++)
            {
                int lo = Math.Min(15, (int)(sbyte)(xb[j] * id + 8.5f));
                int hi = Math.Min(15, (int)(sbyte)(xb[j + B / 2] * id + 8.5f));
                o[2 + j] = (byte)(lo | (hi << 4));
            }
        }
    }

    /// <summary>x = fp16(d)·(q − 8); low nibbles are elements 0..15, high nibbles 16..31.</summary>
    public static void DequantizeQ4_0(ReadOnlySpan<byte> blocks, Span<float> x)
    {
        long nb = QuantFormat.CheckedBlocks(x.Length);
        CheckBytes(blocks.Length, nb * QuantFormat.Q4_0BlockBytes, "DequantizeQ4_0");
        for (int b = 0; b < nb; b++)
        {
            var o = blocks.Slice(b * QuantFormat.Q4_0BlockBytes, QuantFormat.Q4_0BlockBytes);
            float d = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(o));
            for (int j = 0; j < B / 2; j++)
            {
                x[b * B + j] = d * ((o[2 + j] & 0x0F) - 8);
                x[b * B + j + B / 2] = d * ((o[2 + j] >> 4) - 8);
            }
        }
    }

    /// <summary>Bytes of one 32-weight block of ggml Q4_1 (fp16 d, fp16 m, 16 bytes of nibbles).</summary>
    public const int Q4_1BlockBytes = 4 + B / 2;
    /// <summary>Bytes of one 32-weight block of ggml Q5_0 (fp16 d, 4 bytes of fifth bits, 16 bytes of nibbles).</summary>
    public const int Q5_0BlockBytes = 2 + 4 + B / 2;
    /// <summary>Bytes of one 32-weight block of ggml Q5_1 (fp16 d, fp16 m, 4 bytes of fifth bits, 16 bytes of nibbles).</summary>
    public const int Q5_1BlockBytes = 4 + 4 + B / 2;
    /// <summary>Bytes of one 32-weight block of ggml IQ4_NL (fp16 d, 16 bytes of nibbles indexing <see cref="Iq4NlValues"/>).</summary>
    public const int Iq4NlBlockBytes = 2 + B / 2;

    /// <summary>IQ4_NL's 16 code values, a fact of the format (ggml's non-linear 4-bit grid): x = d·value[nibble].</summary>
    public static ReadOnlySpan<sbyte> Iq4NlValues => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    /// <summary>Writes the 32 integer codes of one block (whose first bytes are its fp16 scale) to <paramref name="codes"/>.</summary>
    delegate void BlockCodes(ReadOnlySpan<byte> block, Span<int> codes);

    /// <summary>
    /// Element j's nibble is the low half of byte j for j &lt; 16 and the high half of byte j − 16 otherwise; Q5_0/Q5_1 add
    /// bit j of a little-endian 32-bit word as a fifth bit. Q4_1: (d, m, nibbles); Q5_0: (d, fifth bits, nibbles) with
    /// codes q − 16; Q5_1: (d, m, fifth bits, nibbles); IQ4_NL: (d, nibbles) indexing <see cref="Iq4NlValues"/>.
    /// </summary>
    static void Nibbles(ReadOnlySpan<byte> qs, Span<int> codes)
    {
        for (int j = 0; j < B / 2; j++) { codes[j] = qs[j] & 0x0F; codes[j + B / 2] = qs[j] >> 4; }
    }

    static void FifthBits(ReadOnlySpan<byte> word, Span<int> codes, int offset)
    {
        uint qh = BinaryPrimitives.ReadUInt32LittleEndian(word);
        for (int j = 0; j < B; j++) codes[j] = (codes[j] | (int)((qh >> j) & 1) << 4) - offset;
    }

    static readonly BlockCodes Q4_1Codes = static (o, c) => Nibbles(o[4..], c);
    static readonly BlockCodes Q5_0Codes = static (o, c) => { Nibbles(o[6..], c); FifthBits(o[2..], c, 16); };
    static readonly BlockCodes Q5_1Codes = static (o, c) => { Nibbles(o[8..], c); FifthBits(o[4..], c, 0); };
    static readonly BlockCodes Iq4NlCodes = static (o, c) =>
    {
        Nibbles(o[2..], c);
        for (int j = 0; j < B; j++) c[j] = Iq4NlValues[c[j]];
    };

    /// <summary>ggml Q4_1: x = fp16(d)·q + fp16(m), q the 4-bit code.</summary>
    public static void DequantizeQ4_1(ReadOnlySpan<byte> blocks, Span<float> x) => Dequantize(blocks, Q4_1BlockBytes, true, x, Q4_1Codes, "DequantizeQ4_1");

    /// <summary>ggml Q5_0: x = fp16(d)·(q − 16), q the 5-bit code.</summary>
    public static void DequantizeQ5_0(ReadOnlySpan<byte> blocks, Span<float> x) => Dequantize(blocks, Q5_0BlockBytes, false, x, Q5_0Codes, "DequantizeQ5_0");

    /// <summary>ggml Q5_1: x = fp16(d)·q + fp16(m), q the 5-bit code.</summary>
    public static void DequantizeQ5_1(ReadOnlySpan<byte> blocks, Span<float> x) => Dequantize(blocks, Q5_1BlockBytes, true, x, Q5_1Codes, "DequantizeQ5_1");

    /// <summary>ggml IQ4_NL: x = fp16(d)·<see cref="Iq4NlValues"/>[q], q the 4-bit code.</summary>
    public static void DequantizeIq4Nl(ReadOnlySpan<byte> blocks, Span<float> x) => Dequantize(blocks, Iq4NlBlockBytes, false, x, Iq4NlCodes, "DequantizeIq4Nl");

    /// <summary>
    /// x = d·code per block, or with <paramref name="withMin"/> (an fp16 m after d) d·code + m. Without a minimum nothing is
    /// added, so a zero code under a negative scale stays −0 exactly as <see cref="DequantizeQ8_0"/> gives it.
    /// </summary>
    static void Dequantize(ReadOnlySpan<byte> blocks, int blockBytes, bool withMin, Span<float> x, BlockCodes codesOf, string op)
    {
        long nb = QuantFormat.CheckedBlocks(x.Length);
        CheckBytes(blocks.Length, nb * blockBytes, op);
        Span<int> codes = stackalloc int[B];
        for (int b = 0; b < nb; b++)
        {
            var o = blocks.Slice(b * blockBytes, blockBytes);
            codesOf(o, codes);
            float d = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(o));
            if (withMin)
            {
                float m = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(o[2..]));
                for (int j = 0; j < B; j++) x[b * B + j] = d * codes[j] + m;
            }
            else
                for (int j = 0; j < B; j++) x[b * B + j] = d * codes[j];
        }
    }

    /// <summary>
    /// Q5_0 blocks rewritten as Q8_0 blocks with the same fp16 scale and codes q − 16 (−16 … 15): the same values
    /// exactly (<see cref="DequantizeQ8_0"/> of the result equals <see cref="DequantizeQ5_0"/> of the input, bit for bit),
    /// so a Q5_0 tensor runs on the Q8_0 kernels at 34 bytes per 32 weights instead of 22.
    /// </summary>
    public static void Q5_0ToQ8_0(ReadOnlySpan<byte> q5, Span<byte> q8) => RewriteAsQ8_0(q5, Q5_0BlockBytes, q8, Q5_0Codes, "Q5_0ToQ8_0");

    /// <summary>IQ4_NL blocks rewritten as Q8_0 blocks with the same fp16 scale and the grid values as codes: the same
    /// values exactly, run on the Q8_0 kernels.</summary>
    public static void Iq4NlToQ8_0(ReadOnlySpan<byte> iq4, Span<byte> q8) => RewriteAsQ8_0(iq4, Iq4NlBlockBytes, q8, Iq4NlCodes, "Iq4NlToQ8_0");

    /// <summary>Blocks of an fp16 scale and 32 codes in −128 … 127 (no minimum), as Q8_0 blocks of the same values.</summary>
    static void RewriteAsQ8_0(ReadOnlySpan<byte> blocks, int blockBytes, Span<byte> q8, BlockCodes codesOf, string op)
    {
        long nb = blocks.Length / blockBytes;
        CheckBytes(blocks.Length, nb * blockBytes, op);
        CheckBytes(q8.Length, nb * QuantFormat.Q8_0BlockBytes, op + " output");
        Span<int> codes = stackalloc int[B];
        for (int b = 0; b < nb; b++)
        {
            var o = blocks.Slice(b * blockBytes, blockBytes);
            var t = q8.Slice(b * QuantFormat.Q8_0BlockBytes, QuantFormat.Q8_0BlockBytes);
            codesOf(o, codes);
            t[0] = o[0]; t[1] = o[1];   // the fp16 scale, unchanged
            for (int j = 0; j < B; j++) t[2 + j] = (byte)(sbyte)codes[j];
        }
    }

    /// <summary>
    /// BitNet b1.58 absmean ternary: per group of <paramref name="groupSize"/> consecutive weights,
    /// γ = fp16(mean|w|) and t = clamp(round(w/γ), −1, 1). Writes fp16 scale bits and packed 2-bit codes.
    /// A group size ≥ the tensor length gives one scale for the whole tensor.
    /// </summary>
    public static void QuantizeTernary(ReadOnlySpan<float> w, int groupSize, Span<byte> packed, Span<ushort> scales)
    {
        long nb = QuantFormat.CheckedBlocks(w.Length);
        long groups = QuantFormat.TernaryGroups(w.Length, groupSize);
        CheckBytes(packed.Length, nb * QuantFormat.TernaryBlockBytes, "QuantizeTernary");
        CheckBytes(scales.Length, groups, "QuantizeTernary scales");
        packed.Clear();
        for (int g = 0; g < groups; g++)
        {
            int start = g * groupSize, end = (int)Math.Min(w.Length, (long)start + groupSize);
            double sum = 0;
            for (int i = start; i < end; i++) sum += Math.Abs(w[i]);
            ushort bits = QuantFormat.ToHalf((float)(sum / (end - start)));
            scales[g] = bits;
            float gamma = QuantFormat.FromHalf(bits);
            float inv = gamma != 0 && float.IsFinite(gamma) ? 1f / gamma : 0f;
            for (int i = start; i < end; i++)
            {
                int t = (int)Math.Clamp(MathF.Round(w[i] * inv), -1f, 1f);
                SetTernary(packed, i, t);
            }
        }
    }

    /// <summary>w = γ_group · t.</summary>
    public static void DequantizeTernary(ReadOnlySpan<byte> packed, ReadOnlySpan<float> scales, int groupSize, Span<float> w)
    {
        long nb = QuantFormat.CheckedBlocks(w.Length);
        CheckBytes(packed.Length, nb * QuantFormat.TernaryBlockBytes, "DequantizeTernary");
        CheckBytes(scales.Length, QuantFormat.TernaryGroups(w.Length, groupSize), "DequantizeTernary scales");
        for (int i = 0; i < w.Length; i++) w[i] = scales[i / groupSize] * GetTernary(packed, i);
    }

    /// <summary>The ternary value (−1, 0, +1) of element <paramref name="i"/>.</summary>
    public static int GetTernary(ReadOnlySpan<byte> packed, int i)
    {
        int block = i / B, e = i % B;
        return ((packed[block * QuantFormat.TernaryBlockBytes + (e & 7)] >> (2 * (e >> 3))) & 3) - 1;
    }

    static void SetTernary(Span<byte> packed, int i, int t)
    {
        int block = i / B, e = i % B;
        packed[block * QuantFormat.TernaryBlockBytes + (e & 7)] |= (byte)((t + 1) << (2 * (e >> 3)));
    }

    /// <summary>
    /// Activation quantization, per 32-block: d = max|x|/127, q = round-half-even(x·(1/d)), and the block's
    /// integer sum Σq. <paramref name="x"/>'s length must be a multiple of 32.
    /// </summary>
    public static void QuantizeActivations(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> scales, Span<int> sums)
    {
        long nb = QuantFormat.CheckedBlocks(x.Length);
        CheckBytes(q.Length, x.Length, "QuantizeActivations q");
        CheckBytes(scales.Length, nb, "QuantizeActivations scales");
        CheckBytes(sums.Length, nb, "QuantizeActivations sums");
        for (int b = 0; b < nb; b++)
        {
            float amax = 0;
            for (int j = 0; j < B; j++) amax = MathF.Max(amax, MathF.Abs(x[b * B + j]));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            int sum = 0;
            for (int j = 0; j < B; j++)
            {
                int v = (int)MathF.Round(x[b * B + j] * id);
                q[b * B + j] = (sbyte)v;
                sum += v;
            }
            scales[b] = d;
            sums[b] = sum;
        }
    }

    /// <summary>y (n×rows) = x (n×cols) · Wᵀ with W in Q8_0 rows; activations quantized as above; double accumulation.</summary>
    public static void MatMulQ8_0(ReadOnlySpan<byte> w, int rows, int cols, ReadOnlySpan<float> x, int n, Span<float> y)
    {
        var (q, xs, _) = Activations(x, n, cols, y.Length, rows);
        int nb = cols / B;
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++)
            {
                double acc = 0;
                for (int b = 0; b < nb; b++)
                {
                    var blk = w.Slice((r * nb + b) * QuantFormat.Q8_0BlockBytes, QuantFormat.Q8_0BlockBytes);
                    int s = 0;
                    for (int j = 0; j < B; j++) s += (sbyte)blk[2 + j] * q[(i * nb + b) * B + j];
                    acc += (double)s * QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(blk)) * xs[i * nb + b];
                }
                y[i * rows + r] = (float)acc;
            }
    }

    /// <summary>y (n×rows) = x (n×cols) · Wᵀ with W in Q4_0 rows.</summary>
    public static void MatMulQ4_0(ReadOnlySpan<byte> w, int rows, int cols, ReadOnlySpan<float> x, int n, Span<float> y)
    {
        var (q, xs, _) = Activations(x, n, cols, y.Length, rows);
        int nb = cols / B;
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++)
            {
                double acc = 0;
                for (int b = 0; b < nb; b++)
                {
                    var blk = w.Slice((r * nb + b) * QuantFormat.Q4_0BlockBytes, QuantFormat.Q4_0BlockBytes);
                    int s = 0;
                    for (int j = 0; j < B / 2; j++)
                    {
                        s += ((blk[2 + j] & 0x0F) - 8) * q[(i * nb + b) * B + j];
                        s += ((blk[2 + j] >> 4) - 8) * q[(i * nb + b) * B + j + B / 2];
                    }
                    acc += (double)s * QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(blk)) * xs[i * nb + b];
                }
                y[i * rows + r] = (float)acc;
            }
    }

    /// <summary>y (n×rows) = x (n×cols) · Wᵀ with W ternary (packed codes + one scale per group of the flattened tensor).</summary>
    public static void MatMulTernary(ReadOnlySpan<byte> packed, ReadOnlySpan<float> scales, int groupSize, int rows, int cols,
        ReadOnlySpan<float> x, int n, Span<float> y)
    {
        var (q, xs, _) = Activations(x, n, cols, y.Length, rows);
        int nb = cols / B;
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++)
            {
                double acc = 0;
                for (int b = 0; b < nb; b++)
                {
                    int first = (r * nb + b) * B;
                    int s = 0;
                    for (int j = 0; j < B; j++) s += GetTernary(packed, first + j) * q[(i * nb + b) * B + j];
                    acc += (double)s * scales[first / groupSize] * xs[i * nb + b];
                }
                y[i * rows + r] = (float)acc;
            }
    }

    static (sbyte[] Q, float[] Scales, int[] Sums) Activations(ReadOnlySpan<float> x, int n, int cols, int yLength, int rows)
    {
        QuantFormat.CheckedBlocks(cols);
        if (n < 0 || x.Length != (long)n * cols) throw new ArgumentException($"Quantized matmul: x has {x.Length} floats, expected n·cols = {n}·{cols}.");
        if (yLength != (long)n * rows) throw new ArgumentException($"Quantized matmul: y has {yLength} floats, expected n·rows = {n}·{rows}.");
        var q = new sbyte[x.Length];
        var s = new float[x.Length / B];
        var sums = new int[x.Length / B];
        QuantizeActivations(x, q, s, sums);
        return (q, s, sums);
    }

    static void CheckBytes(long actual, long expected, string op)
    {
        if (actual != expected) throw new ArgumentException($"{op}: buffer holds {actual} items, expected {expected}.");
    }
}
