namespace Tessera.Model.Checkpoints;

/// <summary>Element types a safetensors file may declare (the names are the format's own strings).</summary>
public enum SafetensorsDType
{
    /// <summary>One byte per boolean.</summary>
    BOOL,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Unsigned 16-bit integer.</summary>
    U16,
    /// <summary>IEEE half precision.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Unsigned 32-bit integer.</summary>
    U32,
    /// <summary>32-bit float.</summary>
    F32,
    /// <summary>64-bit float.</summary>
    F64,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Unsigned 64-bit integer.</summary>
    U64
}

/// <summary>Sizes and float conversion for <see cref="SafetensorsDType"/>.</summary>
public static class SafetensorsDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(SafetensorsDType t) => t switch
    {
        SafetensorsDType.BOOL or SafetensorsDType.U8 or SafetensorsDType.I8 => 1,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 4,
        _ => 8,
    };

    /// <summary>Parses the header's dtype string; null when unknown.</summary>
    public static SafetensorsDType? Parse(string s) => Enum.TryParse<SafetensorsDType>(s, ignoreCase: false, out var t) && Enum.IsDefined(t) ? t : null;

    /// <summary>True for the types <see cref="SafetensorsReader.ReadFloat32(string)"/> converts.</summary>
    public static bool IsFloat(SafetensorsDType t) => t is SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F32 or SafetensorsDType.F64;
}
