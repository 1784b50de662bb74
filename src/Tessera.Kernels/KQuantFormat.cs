namespace Tessera.Kernels;

/// <summary>The ggml "K-quant" types: 256-weight super-blocks with per-sub-block scales.</summary>
public enum KQuantType
{
    /// <summary>2-bit codes, 16 sub-blocks of 16 with 4-bit scale and min (84 bytes).</summary>
    Q2_K,
    /// <summary>3-bit codes (2 low bits + a high-bit mask), 16 signed 6-bit scales (110 bytes).</summary>
    Q3_K,
    /// <summary>4-bit codes, 8 sub-blocks of 32 with 6-bit scale and min (144 bytes).</summary>
    Q4_K,
    /// <summary>5-bit codes (4 low bits + one high bit), 6-bit scales and mins as Q4_K (176 bytes).</summary>
    Q5_K,
    /// <summary>6-bit codes (4 low + 2 high bits), 16 int8 scales (210 bytes).</summary>
    Q6_K,
}

/// <summary>
/// Byte layout of the ggml K-quant super-blocks (QK_K = 256), byte for byte as GGUF stores them:
/// <list type="bullet">
/// <item>Q4_K (144): fp16 d, fp16 dmin, 12 bytes of packed 6-bit (scale, min) pairs for the 8
/// sub-blocks of 32, then 128 bytes of nibbles. Each run of 64 weights uses 32 bytes: low nibbles are
/// weights 0..31 (sub-block 2c), high nibbles 32..63 (sub-block 2c+1); x = d·sc·q − dmin·m.</item>
/// <item>Q5_K (176): as Q4_K, then 32 bytes qh before the 128 bytes of nibbles; bit 2c of qh[l] is
/// the fifth bit of weight 64c + l, bit 2c+1 that of weight 64c + 32 + l.</item>
/// <item>Q6_K (210): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales (one per
/// 16 weights), fp16 d last; x = d·sc·(q − 32).</item>
/// <item>Q2_K (84): 16 bytes of 4-bit (scale | min &lt;&lt; 4), 64 bytes of 2-bit codes, fp16 d, fp16 dmin.</item>
/// <item>Q3_K (110): 32 bytes high-bit mask, 64 bytes of 2-bit codes, 12 bytes of packed 6-bit
/// scales (offset 32), fp16 d.</item>
/// </list>
/// The 6-bit (scale, min) pair j of Q4_K/Q5_K: for j &lt; 4, scales[j] &amp; 63 and scales[j+4] &amp; 63;
/// else the low 4 bits from scales[j+4] (low / high nibble) and the top 2 bits from the top bits of
/// scales[j−4] / scales[j]. The dequantized value is computed in fp32 exactly as ggml's
/// <c>dequantize_row_*</c> write it (a product, then a difference; no fused multiply-add), so
/// <see cref="KQuantExpand"/> and its twin <see cref="Reference.ScalarKQuant"/> agree bit for bit.
/// </summary>
public static class KQuantFormat
{
    /// <summary>Weights per super-block (ggml's QK_K).</summary>
    public const int SuperBlock = 256;

    /// <summary>Bytes of one super-block of <paramref name="type"/>.</summary>
    public static int BlockBytes(KQuantType type) => type switch
    {
        KQuantType.Q2_K => 84,
        KQuantType.Q3_K => 110,
        KQuantType.Q4_K => 144,
        KQuantType.Q5_K => 176,
        KQuantType.Q6_K => 210,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "KQuantFormat: unknown K-quant type."),
    };

    /// <summary>Number of super-blocks; throws for lengths that are not a multiple of 256.</summary>
    public static long CheckedSuperBlocks(long elements)
    {
        if (elements < 0 || elements % SuperBlock != 0)
            throw new ArgumentException($"K-quant formats need a length that is a multiple of {SuperBlock}; got {elements}.");
        return elements / SuperBlock;
    }

    /// <summary>Bytes of a <paramref name="type"/> tensor of <paramref name="elements"/> weights (a multiple of 256).</summary>
    public static long Bytes(KQuantType type, long elements) => CheckedSuperBlocks(elements) * BlockBytes(type);

    /// <summary>The 6-bit (scale, min) pair <paramref name="j"/> (0..7) of a Q4_K/Q5_K super-block's 12 packed bytes.</summary>
    public static (int Scale, int Min) ScaleMin(ReadOnlySpan<byte> packed, int j) => j < 4
        ? (packed[j] & 63, packed[j + 4] & 63)
        : ((packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4), (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
}
