namespace Tessera.Model.Checkpoints;

/// <summary>
/// ggml tensor types (the ids GGUF stores). Tessera reads and writes F32, F16, BF16, Q8_0 and Q4_0,
/// reads the K-quants Q2_K, Q3_K, Q4_K, Q5_K and Q6_K (what Q4_K_M / Q5_K_M files hold), and knows the block geometry of the other common types so it can bounds-check files holding them.
/// <see cref="TesseraTernary"/> is Tessera's own id (outside ggml's range, so llama.cpp rejects it
/// instead of misreading it): per tensor, ⌈n/G⌉ fp16 absmean scales followed by n/4 bytes of 2-bit codes,
/// with G from the <c>tessera.ternary.group_size</c> metadata key.
/// </summary>
public enum GgmlType : uint
{
    /// <summary>32-bit floats.</summary>
    F32 = 0,
    /// <summary>IEEE half precision.</summary>
    F16 = 1,
    /// <summary>Blocks of 32 4-bit values with an fp16 scale: x = d·(q − 8).</summary>
    Q4_0 = 2,
    /// <summary>Blocks of 32 4-bit values with an fp16 scale and minimum: x = d·q + m.</summary>
    Q4_1 = 3,
    /// <summary>Blocks of 32 5-bit values with an fp16 scale.</summary>
    Q5_0 = 6,
    /// <summary>Blocks of 32 5-bit values with an fp16 scale and minimum.</summary>
    Q5_1 = 7,
    /// <summary>Blocks of 32 int8 values with an fp16 scale: x = d·q.</summary>
    Q8_0 = 8,
    /// <summary>Blocks of 32 int8 values with a scale and the block sum (ggml's activation format).</summary>
    Q8_1 = 9,
    /// <summary>K-quant: 256-weight super-blocks of 2-bit values with 4-bit sub-block scales.</summary>
    Q2_K = 10,
    /// <summary>K-quant: 256-weight super-blocks of 3-bit values.</summary>
    Q3_K = 11,
    /// <summary>K-quant: 256-weight super-blocks of 4-bit values with 6-bit sub-block scales and minimums.</summary>
    Q4_K = 12,
    /// <summary>K-quant: 256-weight super-blocks of 5-bit values.</summary>
    Q5_K = 13,
    /// <summary>K-quant: 256-weight super-blocks of 6-bit values with 8-bit sub-block scales.</summary>
    Q6_K = 14,
    /// <summary>K-quant: 256-weight super-blocks of int8 values (intermediate format).</summary>
    Q8_K = 15,
    /// <summary>Blocks of 32 4-bit indices into a fixed non-linear grid of 16 values, with an fp16 scale.</summary>
    IQ4_NL = 20,
    /// <summary>Signed 8-bit integers.</summary>
    I8 = 24,
    /// <summary>Signed 16-bit integers.</summary>
    I16 = 25,
    /// <summary>Signed 32-bit integers.</summary>
    I32 = 26,
    /// <summary>Signed 64-bit integers.</summary>
    I64 = 27,
    /// <summary>64-bit floats.</summary>
    F64 = 28,
    /// <summary>bfloat16.</summary>
    BF16 = 30,
    /// <summary>ggml ternary packed at about 1.69 bits per weight.</summary>
    TQ1_0 = 34,
    /// <summary>ggml ternary packed at 2 bits per weight.</summary>
    TQ2_0 = 35,
    /// <summary>Tessera ternary with per-group scales (not a ggml type).</summary>
    TesseraTernary = 1024,
}

/// <summary>Block sizes and byte counts of <see cref="GgmlType"/>.</summary>
public static class GgmlTypes
{
    /// <summary>(elements per block, bytes per block); null for unknown ids and for <see cref="GgmlType.TesseraTernary"/>.</summary>
    public static (int Block, int Bytes)? Geometry(GgmlType t) => t switch
    {
        GgmlType.F32 => (1, 4), GgmlType.F16 => (1, 2), GgmlType.BF16 => (1, 2),
        GgmlType.Q4_0 => (32, 18), GgmlType.Q4_1 => (32, 20), GgmlType.Q5_0 => (32, 22), GgmlType.Q5_1 => (32, 24),
        GgmlType.Q8_0 => (32, 34), GgmlType.Q8_1 => (32, 36), GgmlType.IQ4_NL => (32, 18),
        GgmlType.Q2_K => (256, 84), GgmlType.Q3_K => (256, 110), GgmlType.Q4_K => (256, 144),
        GgmlType.Q5_K => (256, 176), GgmlType.Q6_K => (256, 210), GgmlType.Q8_K => (256, 292),
        GgmlType.I8 => (1, 1), GgmlType.I16 => (1, 2), GgmlType.I32 => (1, 4), GgmlType.I64 => (1, 8), GgmlType.F64 => (1, 8),
        GgmlType.TQ1_0 => (256, 54), GgmlType.TQ2_0 => (256, 66),
        _ => null,
    };

    /// <summary>
    /// Bytes of a tensor of <paramref name="elements"/> whose rows have <paramref name="rowLength"/> elements
    /// (ggml's ne[0]); null when the type is unknown or the row is not a whole number of blocks.
    /// <paramref name="ternaryGroup"/> is the group size for <see cref="GgmlType.TesseraTernary"/>.
    /// </summary>
    public static long? ByteCount(GgmlType t, long rowLength, long elements, int ternaryGroup = 0)
    {
        if (t == GgmlType.TesseraTernary)
        {
            if (ternaryGroup <= 0 || ternaryGroup % 32 != 0 || rowLength % 32 != 0) return null;
            return (elements + ternaryGroup - 1) / ternaryGroup * 2 + elements / 4;
        }
        if (Geometry(t) is not var (block, bytes)) return null;
        if (rowLength % block != 0) return null;
        long blocks = elements / block;
        return blocks > long.MaxValue / bytes ? null : blocks * bytes;
    }

    /// <summary>True for the types <see cref="GgufReader.ReadFloat32(GgufTensorInfo)"/> converts.</summary>
    public static bool IsReadable(GgmlType t) => t is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.Q4_0
        or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.IQ4_NL or GgmlType.TesseraTernary
        || KQuant(t) is not null;

    /// <summary>ggml's name for a type id, known to Tessera or not (e.g. 23 → IQ4_XS), for error messages.</summary>
    public static string Name(uint id) => id switch
    {
        16 => "IQ2_XXS", 17 => "IQ2_XS", 18 => "IQ3_XXS", 19 => "IQ1_S", 21 => "IQ3_S", 22 => "IQ2_S", 23 => "IQ4_XS", 29 => "IQ1_M",
        _ => Enum.IsDefined((GgmlType)id) ? ((GgmlType)id).ToString() : $"type {id}",
    };

    /// <summary>The readable types, for error messages.</summary>
    public const string ReadableList = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, ternary";

    /// <summary>
    /// Whether a tensor of type <paramref name="t"/> holds exactly Q8_0 values once rewritten (<see cref="ToQ8_0"/>): Q5_0
    /// (codes −16 … 15) and IQ4_NL (its grid is int8) keep their fp16 scale, so they run on the Q8_0 kernels losslessly.
    /// llama.cpp's Q4_K_M writes Q5_0 (and Q5_K_M Q5_1) for tensors whose rows are not whole 256-weight super-blocks
    /// (hidden sizes such as 896 or 640), so small real models hold many of them.
    /// </summary>
    public static bool RunsAsQ8_0(GgmlType t) => t is GgmlType.Q8_0 or GgmlType.Q5_0 or GgmlType.IQ4_NL;

    /// <summary>A Q5_0 or IQ4_NL tensor's blocks rewritten as Q8_0 blocks of the same values.</summary>
    public static byte[] ToQ8_0(GgmlType t, ReadOnlySpan<byte> bytes)
    {
        if (t is not (GgmlType.Q5_0 or GgmlType.IQ4_NL)) throw new ArgumentException($"{t} is not rewritten as Q8_0 (Q5_0 and IQ4_NL are).");
        var q8 = new byte[bytes.Length / Geometry(t)!.Value.Bytes * Tessera.Kernels.QuantFormat.Q8_0BlockBytes];
        if (t == GgmlType.Q5_0) Tessera.Kernels.Reference.ScalarQuant.Q5_0ToQ8_0(bytes, q8);
        else Tessera.Kernels.Reference.ScalarQuant.Iq4NlToQ8_0(bytes, q8);
        return q8;
    }

    /// <summary>The Tessera.Kernels K-quant type of a ggml K-quant id (Q2_K..Q6_K); null for the others.</summary>
    public static Tessera.Kernels.KQuantType? KQuant(GgmlType t) => t switch
    {
        GgmlType.Q2_K => Tessera.Kernels.KQuantType.Q2_K,
        GgmlType.Q3_K => Tessera.Kernels.KQuantType.Q3_K,
        GgmlType.Q4_K => Tessera.Kernels.KQuantType.Q4_K,
        GgmlType.Q5_K => Tessera.Kernels.KQuantType.Q5_K,
        GgmlType.Q6_K => Tessera.Kernels.KQuantType.Q6_K,
        _ => null,
    };
}
