namespace Tessera.Model.Checkpoints;

/// <summary>Element types a safetensors file may declare (the names are the format's own strings).</summary>
public enum SafetensorsDType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 }

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
