namespace Tessera.Kernels;

/// <summary>
/// Block geometry of the quantized weight formats. Q8_0 and Q4_0 are byte-for-byte the ggml/GGUF
/// blocks, so a row quantized here is a valid GGUF tensor row and a GGUF row can be used directly:
/// <list type="bullet">
/// <item>Q8_0: 32 weights → fp16 scale d, then 32 int8 q; x = d·q (34 bytes).</item>
/// <item>Q4_0: 32 weights → fp16 scale d, then 16 bytes whose low nibbles are elements 0..15 and
/// high nibbles elements 16..31; x = d·(q − 8) (18 bytes).</item>
/// <item>Ternary (Tessera's own): weights t ∈ {−1, 0, +1} stored as t+1 in 2 bits; each run of 32
/// weights is 8 bytes where byte j holds elements j, j+8, j+16, j+24 in bits 0-1, 2-3, 4-5, 6-7
/// (so one 64-bit load and four shifts unpack a block in order). One fp16 absmean scale per group
/// of G consecutive weights of the row-major tensor (G a multiple of 32; the last group may be short).</item>
/// </list>
/// </summary>
public static class QuantFormat
{
    /// <summary>Elements per Q8_0 / Q4_0 block and per ternary packing unit.</summary>
    public const int BlockSize = 32;

    /// <summary>Bytes of one Q8_0 block: fp16 scale + 32 int8.</summary>
    public const int Q8_0BlockBytes = 2 + BlockSize;

    /// <summary>Bytes of one Q4_0 block: fp16 scale + 16 bytes of nibbles.</summary>
    public const int Q4_0BlockBytes = 2 + BlockSize / 2;

    /// <summary>Packed bytes of 32 ternary weights (2 bits each).</summary>
    public const int TernaryBlockBytes = BlockSize / 4;

    /// <summary>Bytes of a Q8_0 tensor of <paramref name="elements"/> weights (a multiple of 32).</summary>
    public static long Q8_0Bytes(long elements) => CheckedBlocks(elements) * Q8_0BlockBytes;

    /// <summary>Bytes of a Q4_0 tensor of <paramref name="elements"/> weights (a multiple of 32).</summary>
    public static long Q4_0Bytes(long elements) => CheckedBlocks(elements) * Q4_0BlockBytes;

    /// <summary>Packed bytes of a ternary tensor (scales not included).</summary>
    public static long TernaryPackedBytes(long elements) => CheckedBlocks(elements) * TernaryBlockBytes;

    /// <summary>Number of scale groups of a ternary tensor: ⌈elements / groupSize⌉.</summary>
    public static long TernaryGroups(long elements, int groupSize)
    {
        CheckGroup(groupSize);
        return (elements + groupSize - 1) / groupSize;
    }

    /// <summary>Throws unless <paramref name="groupSize"/> is a positive multiple of 32.</summary>
    public static void CheckGroup(int groupSize)
    {
        if (groupSize <= 0 || groupSize % BlockSize != 0)
            throw new ArgumentException($"Ternary group size {groupSize} must be a positive multiple of {BlockSize}.");
    }

    /// <summary>Number of 32-blocks; throws for lengths the block formats cannot hold.</summary>
    public static long CheckedBlocks(long elements)
    {
        if (elements < 0 || elements % BlockSize != 0)
            throw new ArgumentException($"Quantized formats need a length that is a multiple of {BlockSize}; got {elements}.");
        return elements / BlockSize;
    }

    /// <summary>fp32 → bfloat16 bits with round-to-nearest-even; NaN stays a (quiet) NaN, as ggml does.</summary>
    public static ushort ToBFloat16(float x)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }

    /// <summary>bfloat16 bits → fp32 (exact).</summary>
    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>fp32 → IEEE half bits, round-to-nearest-even (the conversion F16C and ggml use).</summary>
    public static ushort ToHalf(float x) => BitConverter.HalfToUInt16Bits((Half)x);

    /// <summary>IEEE half bits → fp32 (exact).</summary>
    public static float FromHalf(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);
}
