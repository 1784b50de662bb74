using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Tessera.Kernels;
using Tessera.Kernels.IO;
using Tessera.Kernels.Reference;
using Tessera.Text;

namespace Tessera.Model.Checkpoints;

/// <summary>
/// One tensor of a GGUF file. <see cref="Dims"/> are in ggml order (Dims[0] is the row length, the
/// fastest-varying axis), so a PyTorch (out, in) matrix appears as [in, out]. <see cref="Offset"/> is
/// absolute in the file.
/// </summary>
public sealed record GgufTensorInfo(string Name, GgmlType Type, long[] Dims, long Offset, long Bytes, int TernaryGroup)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount
    {
        get { long n = 1; foreach (long d in Dims) n *= d; return n; }
    }

    /// <summary>The shape in PyTorch order (slowest axis first).</summary>
    public long[] TorchShape
    {
        get { var s = (long[])Dims.Clone(); Array.Reverse(s); return s; }
    }
}

/// <summary>
/// Reads a GGUF file: header and metadata through Tessera.Text's <see cref="GgufVocabReader"/> (the
/// one metadata parser), then the tensor infos, then the data, mapped through <see cref="MappedFile"/>. Everything a hostile
/// file could lie about is checked before use: counts against the bytes left, names, the number and
/// size of dimensions (no overflow), the type and that rows are whole blocks, the alignment, that every
/// offset is aligned and every tensor lies inside the file, and that tensors do not overlap. Failures
/// are one <see cref="InvalidDataException"/> naming the file.
/// </summary>
public sealed class GgufReader : IDisposable
{
    /// <summary>ggml's limit on tensor dimensions.</summary>
    public const int MaxDims = 4;

    readonly MappedFile? file;
    readonly unsafe byte* basePtr;
    readonly Dictionary<string, GgufTensorInfo> byName = new(StringComparer.Ordinal);
    bool disposed;

    /// <summary>The file path.</summary>
    public string Path { get; }

    /// <summary>The metadata key/values.</summary>
    public GgufMetadata Metadata { get; }

    /// <summary>general.alignment (32 when absent).</summary>
    public int Alignment { get; }

    /// <summary>File offset of the tensor data section.</summary>
    public long DataOffset { get; }

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    unsafe GgufReader(string path)
    {
        Path = path;
        long fileLength = new FileInfo(path).Length;
        var infos = new List<GgufTensorInfo>();
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
        {
            try { Metadata = GgufVocabReader.Read(fs, path); }
            catch (FormatException e) { throw new InvalidDataException($"{path}: not a valid GGUF file: {e.Message}", e); }
            Alignment = ReadAlignment();
            int ternaryGroup = TernaryGroupSize();
            var br = new BinaryReader(fs, Encoding.UTF8, leaveOpen: true);
            // Each info needs at least a name length (8), a dimension count (4), a type (4) and an offset (8).
            if (Metadata.TensorCount > (ulong)(fileLength - fs.Position) / 24) throw Bad($"tensor count {Metadata.TensorCount} cannot fit in the file");
            for (ulong i = 0; i < Metadata.TensorCount; i++) infos.Add(ReadInfo(fs, br, fileLength, ternaryGroup));
            DataOffset = Align(fs.Position, Alignment);
        }
        if (DataOffset > fileLength && infos.Count > 0) throw Bad($"tensor data would start at {DataOffset}, past the end of the {fileLength}-byte file");
        var checkedInfos = new List<GgufTensorInfo>(infos.Count);
        foreach (var t in infos)
        {
            if (t.Offset % Alignment != 0) throw Bad($"tensor '{t.Name}' data offset {t.Offset} is not a multiple of the alignment {Alignment}");
            if (t.Offset > fileLength - DataOffset || t.Bytes > fileLength - DataOffset - t.Offset)
                throw Bad($"tensor '{t.Name}' ({t.Bytes} bytes at data offset {t.Offset}) runs past the end of the {fileLength}-byte file");
            var abs = t with { Offset = DataOffset + t.Offset };
            if (!byName.TryAdd(t.Name, abs)) throw Bad($"duplicate tensor name '{t.Name}'");
            checkedInfos.Add(abs);
        }
        var sorted = checkedInfos.OrderBy(t => t.Offset).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Offset < sorted[i - 1].Offset + sorted[i - 1].Bytes)
                throw Bad($"tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap");
        Tensors = checkedInfos;
        file = MappedFile.OpenRead(path, Kind);
        basePtr = file.Pointer;
    }

    /// <summary>Opens and validates a GGUF file.</summary>
    /// <exception cref="InvalidDataException">The file is malformed; the message names it and the problem.</exception>
    public static GgufReader Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"GGUF file not found: {path}", path);
        return new GgufReader(path);
    }

    const string Kind = "GGUF file";

    InvalidDataException Bad(string why) => new($"{Path}: not a valid {Kind}: {why}.");

    int ReadAlignment()
    {
        long? a;
        try { a = Metadata.GetInteger("general.alignment"); }
        catch (FormatException e) { throw Bad(e.Message); }
        if (a is null) return 32;
        if (a < 8 || a > 1 << 20 || (a & (a - 1)) != 0) throw Bad($"general.alignment {a} must be a power of two between 8 and 2^20");
        return (int)a;
    }

    int TernaryGroupSize()
    {
        long? g;
        try { g = Metadata.GetInteger("tessera.ternary.group_size"); }
        catch (FormatException e) { throw Bad(e.Message); }
        if (g is null) return -1;
        if (g < 0 || g > int.MaxValue || g % 32 != 0) throw Bad($"tessera.ternary.group_size {g} must be 0 (per tensor) or a positive multiple of 32");
        return (int)g;
    }

    GgufTensorInfo ReadInfo(FileStream fs, BinaryReader br, long fileLength, int ternaryGroup)
    {
        long Need(int n)
        {
            if (fs.Position + n > fileLength) throw Bad($"tensor infos run past the end of the file (offset {fs.Position})");
            return n;
        }
        Need(8);
        ulong nameLength = br.ReadUInt64();
        if (nameLength > 1024) throw Bad($"tensor name length {nameLength} at offset {fs.Position - 8} exceeds 1024 bytes");
        Need((int)nameLength);
        string name = Encoding.UTF8.GetString(br.ReadBytes((int)nameLength));
        Need(4);
        uint nDims = br.ReadUInt32();
        if (nDims < 1 || nDims > MaxDims) throw Bad($"tensor '{name}' has {nDims} dimensions (1..{MaxDims} allowed)");
        Need(8 * (int)nDims + 12);
        var dims = new long[nDims];
        long elements = 1;
        for (int d = 0; d < nDims; d++)
        {
            ulong v = br.ReadUInt64();
            if (v > long.MaxValue) throw Bad($"tensor '{name}' dimension {d} = {v} is too large");
            dims[d] = (long)v;
            if (dims[d] != 0 && elements > long.MaxValue / dims[d]) throw Bad($"tensor '{name}' has too many elements");
            elements *= dims[d];
        }
        uint rawType = br.ReadUInt32();
        var type = (GgmlType)rawType;
        ulong offset = br.ReadUInt64();
        if (offset > long.MaxValue) throw Bad($"tensor '{name}' data offset {offset} is too large");
        int group = ternaryGroup == 0 ? (int)Math.Min(int.MaxValue / 2, Math.Max(32, elements)) : ternaryGroup;
        if (type == GgmlType.TesseraTernary && ternaryGroup < 0) throw Bad($"tensor '{name}' is ternary but tessera.ternary.group_size is missing");
        long? bytes = GgmlTypes.ByteCount(type, dims[0], elements, group);
        if (bytes is null)
            throw Bad(GgmlTypes.Geometry(type) is null && type != GgmlType.TesseraTernary
                ? $"tensor '{name}' has ggml type {rawType} ({GgmlTypes.Name(rawType)}), which Tessera does not read (readable: {GgmlTypes.ReadableList})"
                : $"tensor '{name}' of type {type} has rows of {dims[0]} elements, not a whole number of blocks");
        return new GgufTensorInfo(name, type, dims, (long)offset, bytes.Value, type == GgmlType.TesseraTernary ? group : 0);
    }

    static long Align(long offset, int alignment) => offset + (alignment - offset % alignment) % alignment;

    /// <summary>The entry for <paramref name="name"/>; throws naming the file when absent.</summary>
    public GgufTensorInfo Tensor(string name)
        => byName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");

    /// <summary>True when the file holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => byName.ContainsKey(name);

    /// <summary>The raw bytes of a tensor (valid until this reader is disposed).</summary>
    public unsafe ReadOnlySpan<byte> Bytes(GgufTensorInfo t)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (t.Bytes > int.MaxValue) throw new NotSupportedException($"{Path}: tensor '{t.Name}' is over 2 GiB; read it in parts.");
        return t.Bytes == 0 ? default : new ReadOnlySpan<byte>(basePtr + t.Offset, (int)t.Bytes);
    }

    /// <summary>Reads a tensor converted (dequantized) to fp32, in ggml order (row-major with rows of Dims[0]).</summary>
    public float[] ReadFloat32(GgufTensorInfo t)
    {
        if (!GgmlTypes.IsReadable(t.Type)) throw new NotSupportedException($"{Path}: tensor '{t.Name}' has type {t.Type}, which Tessera cannot convert (supported: {GgmlTypes.ReadableList}).");
        var result = new float[t.ElementCount];
        var bytes = Bytes(t);
        switch (t.Type)
        {
            case GgmlType.F32:
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(result);
                break;
            case GgmlType.F16:
                for (int i = 0; i < result.Length; i++) result[i] = QuantFormat.FromHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]));
                break;
            case GgmlType.BF16:
                for (int i = 0; i < result.Length; i++) result[i] = QuantFormat.FromBFloat16(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]));
                break;
            case GgmlType.Q8_0: ScalarQuant.DequantizeQ8_0(bytes, result); break;
            case GgmlType.Q4_0: ScalarQuant.DequantizeQ4_0(bytes, result); break;
            case GgmlType.Q4_1: ScalarQuant.DequantizeQ4_1(bytes, result); break;
            case GgmlType.Q5_0: ScalarQuant.DequantizeQ5_0(bytes, result); break;
            case GgmlType.Q5_1: ScalarQuant.DequantizeQ5_1(bytes, result); break;
            case GgmlType.IQ4_NL: ScalarQuant.DequantizeIq4Nl(bytes, result); break;
            case GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K:
                ScalarKQuant.Dequantize(GgmlTypes.KQuant(t.Type)!.Value, bytes, result);
                break;
            case GgmlType.TesseraTernary:
            {
                var scales = SplitTernary(t, bytes, out var codes);
                ScalarQuant.DequantizeTernary(codes, Array.ConvertAll(scales, QuantFormat.FromHalf), t.TernaryGroup, result);
                break;
            }
        }
        return result;
    }

    /// <summary>The fp16 scale bits of a ternary tensor; <paramref name="codes"/> gets its packed codes.</summary>
    public static ushort[] SplitTernary(GgufTensorInfo t, ReadOnlySpan<byte> bytes, out ReadOnlySpan<byte> codes)
    {
        long groups = QuantFormat.TernaryGroups(t.ElementCount, t.TernaryGroup);
        codes = bytes[(int)(2 * groups)..];
        return MemoryMarshal.Cast<byte, ushort>(bytes[..(int)(2 * groups)]).ToArray();
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        file?.Dispose();
    }
}
