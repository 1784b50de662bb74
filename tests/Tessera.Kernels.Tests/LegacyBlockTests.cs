using System.Buffers.Binary;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// ggml's 32-weight block formats beyond Q8_0/Q4_0 (Q4_1, Q5_0, Q5_1, IQ4_NL), which llama.cpp writes for whole files
/// and, in its Q4_K_M/Q5_K_M files, for every tensor whose rows are not whole 256-weight super-blocks. Each test builds
/// blocks from chosen codes with its own encoder, written from the format's definition (scale(s), then the fifth bits
/// as one little-endian word, then byte j holding element j in its low nibble and element j + 16 in its high one), and
/// checks the decoded values against the definition's formula evaluated in the same fp32 operations.
/// </summary>
public class LegacyBlockTests
{
    const int B = 32;

    static ushort Half(float v) => BitConverter.HalfToUInt16Bits((Half)v);
    static float FromHalf(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>Block bytes for codes q[0..31] (4 or 5 bits each) after the given header bytes.</summary>
    static byte[] Block(byte[] header, int[] q, bool fifthBits)
    {
        var block = new List<byte>(header);
        if (fifthBits)
        {
            uint qh = 0;
            for (int j = 0; j < B; j++) if ((q[j] & 16) != 0) qh |= 1u << j;
            var word = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(word, qh);
            block.AddRange(word);
        }
        for (int j = 0; j < B / 2; j++) block.Add((byte)((q[j] & 15) | (q[j + B / 2] & 15) << 4));
        return [.. block];
    }

    static int[] Codes(TestRandom rng, int max) => Enumerable.Range(0, B).Select(_ => rng.Next(max)).ToArray();

    [Fact]
    public void Q5_0IsScaleTimesCodeMinus16()
    {
        var rng = new TestRandom(50);
        for (int t = 0; t < 40; t++)
        {
            var q = Codes(rng, 32);
            if (t == 0) { q[0] = 0; q[31] = 31; }   // both ends of the code range
            ushort d = Half(rng.Uniform(-0.1f, 0.1f));
            var block = Block(BitConverter.GetBytes(d), q, fifthBits: true);
            Assert.Equal(ScalarQuant.Q5_0BlockBytes, block.Length);
            var x = new float[B];
            ScalarQuant.DequantizeQ5_0(block, x);
            for (int j = 0; j < B; j++) Assert.Equal(FromHalf(d) * (q[j] - 16), x[j]);
        }
    }

    [Fact]
    public void Q5_1AndQ4_1AreScaleTimesCodePlusMin()
    {
        var rng = new TestRandom(51);
        for (int t = 0; t < 40; t++)
        {
            ushort d = Half(rng.Uniform(0f, 0.1f)), m = Half(rng.Uniform(-1f, 0f));
            byte[] header = [.. BitConverter.GetBytes(d), .. BitConverter.GetBytes(m)];
            var q5 = Codes(rng, 32);
            var x = new float[B];
            ScalarQuant.DequantizeQ5_1(Block(header, q5, fifthBits: true), x);
            for (int j = 0; j < B; j++) Assert.Equal(FromHalf(d) * q5[j] + FromHalf(m), x[j]);
            var q4 = Codes(rng, 16);
            var block = Block(header, q4, fifthBits: false);
            Assert.Equal(ScalarQuant.Q4_1BlockBytes, block.Length);
            ScalarQuant.DequantizeQ4_1(block, x);
            for (int j = 0; j < B; j++) Assert.Equal(FromHalf(d) * q4[j] + FromHalf(m), x[j]);
        }
    }

    [Fact]
    public void Iq4NlIndexesItsGrid()
    {
        int[] grid = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
        var rng = new TestRandom(52);
        for (int t = 0; t < 40; t++)
        {
            var q = Codes(rng, 16);
            ushort d = Half(rng.Uniform(-0.01f, 0.01f));
            var block = Block(BitConverter.GetBytes(d), q, fifthBits: false);
            Assert.Equal(ScalarQuant.Iq4NlBlockBytes, block.Length);
            var x = new float[B];
            ScalarQuant.DequantizeIq4Nl(block, x);
            for (int j = 0; j < B; j++) Assert.Equal(FromHalf(d) * grid[q[j]], x[j]);
        }
    }

    /// <summary>Q5_0 and IQ4_NL rewritten as Q8_0 decode to the same floats, bit for bit, over many random blocks
    /// (every code, scales of both signs, and a zero scale).</summary>
    [Fact]
    public void Q5_0AndIq4NlBecomeTheSameQ8_0Values()
    {
        var rng = new TestRandom(53);
        const int blocks = 257;
        var q5 = new byte[blocks * ScalarQuant.Q5_0BlockBytes];
        var iq4 = new byte[blocks * ScalarQuant.Iq4NlBlockBytes];
        for (int b = 0; b < blocks; b++)
        {
            ushort d = b == 0 ? (ushort)0 : Half(rng.Uniform(-1f, 1f));
            Block(BitConverter.GetBytes(d), Codes(rng, 32), fifthBits: true).CopyTo(q5, b * ScalarQuant.Q5_0BlockBytes);
            Block(BitConverter.GetBytes(d), Codes(rng, 16), fifthBits: false).CopyTo(iq4, b * ScalarQuant.Iq4NlBlockBytes);
        }
        var q8 = new byte[blocks * QuantFormat.Q8_0BlockBytes];
        float[] direct = new float[blocks * B], viaQ8 = new float[blocks * B];

        ScalarQuant.Q5_0ToQ8_0(q5, q8);
        ScalarQuant.DequantizeQ5_0(q5, direct);
        ScalarQuant.DequantizeQ8_0(q8, viaQ8);
        for (int i = 0; i < direct.Length; i++) Assert.Equal(BitConverter.SingleToInt32Bits(direct[i]), BitConverter.SingleToInt32Bits(viaQ8[i]));

        ScalarQuant.Iq4NlToQ8_0(iq4, q8);
        ScalarQuant.DequantizeIq4Nl(iq4, direct);
        ScalarQuant.DequantizeQ8_0(q8, viaQ8);
        for (int i = 0; i < direct.Length; i++) Assert.Equal(BitConverter.SingleToInt32Bits(direct[i]), BitConverter.SingleToInt32Bits(viaQ8[i]));
    }

    [Fact]
    public void WrongSizesAreRefused()
    {
        Assert.Throws<ArgumentException>(() => ScalarQuant.DequantizeQ5_0(new byte[ScalarQuant.Q5_0BlockBytes - 1], new float[B]));
        Assert.Throws<ArgumentException>(() => ScalarQuant.Q5_0ToQ8_0(new byte[ScalarQuant.Q5_0BlockBytes + 1], new byte[QuantFormat.Q8_0BlockBytes]));
        Assert.Throws<ArgumentException>(() => ScalarQuant.Iq4NlToQ8_0(new byte[ScalarQuant.Iq4NlBlockBytes], new byte[QuantFormat.Q8_0BlockBytes - 1]));
    }
}
