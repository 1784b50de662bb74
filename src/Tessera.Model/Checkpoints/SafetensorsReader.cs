using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Tessera.Kernels.IO;

namespace Tessera.Model.Checkpoints;

/// <summary>One tensor's entry in a safetensors header; offsets are relative to the data buffer.</summary>
public sealed record SafetensorsEntry(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (1 for a scalar, 0 when a dimension is 0).</summary>
    public long ElementCount
    {
        get { long n = 1; foreach (long d in Shape) n *= d; return n; }
    }
}

/// <summary>
/// Reads a safetensors file (8-byte little-endian header length, a JSON header, then one
/// byte buffer), mapped through <see cref="MappedFile"/>. Everything a hostile file could lie about is checked before
/// use: the header length against the file, each dtype and shape against its byte range,
/// ranges inside the buffer, no duplicate names, and, as the format requires, a buffer that
/// is covered exactly with no holes or overlaps.
/// </summary>
public sealed class SafetensorsReader : IDisposable
{
    /// <summary>The format caps the JSON header at 100 MB so a header cannot exhaust memory.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    readonly MappedFile file;
    readonly unsafe byte* data;
    readonly long dataLength;
    readonly Dictionary<string, SafetensorsEntry> byName = new(StringComparer.Ordinal);
    bool disposed;

    /// <summary>The file path.</summary>
    public string Path { get; }
    /// <summary>Tensors in file order of their data.</summary>
    public IReadOnlyList<SafetensorsEntry> Entries { get; }
    /// <summary>The free-form <c>__metadata__</c> strings (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    unsafe SafetensorsReader(string path)
    {
        Path = path;
        file = MappedFile.OpenRead(path, "safetensors file");
        long fileLength = file.Length;
        try
        {
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file.Bytes(0, 8, "the 8-byte header length"));
            if (headerLength > MaxHeaderBytes) throw Bad($"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
            if ((long)headerLength > fileLength - 8) throw Bad($"header length {headerLength} runs past the end of the {fileLength}-byte file");
            var header = file.Bytes(8, (int)headerLength, "the JSON header");
            data = file.Pointer + 8 + (long)headerLength;
            dataLength = fileLength - 8 - (long)headerLength;
            (Entries, Metadata) = ParseHeader(header);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates a file; throws <see cref="InvalidDataException"/> naming it when malformed.</summary>
    public static SafetensorsReader Open(string path) => new(path);

    InvalidDataException Bad(string why) => file.Invalid(why);

    (IReadOnlyList<SafetensorsEntry>, IReadOnlyDictionary<string, string>) ParseHeader(ReadOnlySpan<byte> header)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<SafetensorsEntry>();
        // System.Text.Json checks UTF-8 inside strings only when they are read (and then throws
        // InvalidOperationException): check the whole header first, as the format requires UTF-8.
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw Bad("header is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw Bad($"header is not JSON ({e.Message})");
        }
        using (doc)
        try
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad("header is not a JSON object");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw Bad($"duplicate key '{prop.Name}'");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ must be an object of strings");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw Bad($"__metadata__ value '{m.Name}' is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(prop.Name, prop.Value));
            }
        }
        catch (InvalidOperationException e)
        {
            // A string with an unpaired surrogate escape ("\ud800") is valid JSON that no string can hold.
            throw Bad($"header has an undecodable string ({e.Message})");
        }
        entries.Sort((a, b) => a.Begin.CompareTo(b.Begin));
        long expected = 0;
        foreach (var e in entries)
        {
            if (e.Begin != expected) throw Bad($"tensor '{e.Name}' starts at {e.Begin}, expected {expected} (holes and overlaps are not allowed)");
            expected = e.End;
        }
        if (expected != dataLength) throw Bad($"tensors cover {expected} bytes but the data buffer has {dataLength}");
        foreach (var e in entries) byName[e.Name] = e;
        return (entries, metadata);
    }

    SafetensorsEntry ParseEntry(string name, JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.Object) throw Bad($"entry '{name}' is not an object");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Bad($"entry '{name}' has no dtype");
        var dtype = SafetensorsDTypes.Parse(dt.GetString()!) ?? throw Bad($"entry '{name}' has unknown dtype '{dt.GetString()}'");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw Bad($"entry '{name}' has no shape");
        var shape = new long[sh.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long n) || n < 0) throw Bad($"entry '{name}' has an invalid dimension");
            shape[i++] = n;
            count = n == 0 || count == 0 ? 0 : (count > long.MaxValue / n ? throw Bad($"entry '{name}' shape overflows") : count * n);
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad($"entry '{name}' has no data_offsets pair");
        if (off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number || !off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin || end > dataLength)
            throw Bad($"entry '{name}' data_offsets are outside the {dataLength}-byte buffer");
        int size = SafetensorsDTypes.Size(dtype);
        if (count > long.MaxValue / size || count * size != end - begin)
            throw Bad($"entry '{name}' is {dtype}{FormatShape(shape)} = {count} elements but spans {end - begin} bytes");
        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    static string FormatShape(long[] shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>The entry for <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> naming the file when absent.</summary>
    public SafetensorsEntry Entry(string name)
        => byName.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");

    /// <summary>True when the file holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => byName.ContainsKey(name);

    /// <summary>The raw little-endian bytes of a tensor (valid until this reader is disposed).</summary>
    public unsafe ReadOnlySpan<byte> Bytes(SafetensorsEntry e)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        long n = e.End - e.Begin;
        if (n > int.MaxValue) throw new NotSupportedException($"{Path}: tensor '{e.Name}' is over 2 GiB; read it in parts.");
        return new ReadOnlySpan<byte>(data + e.Begin, (int)n);
    }

    /// <summary>Reads a floating-point tensor converted to float32.</summary>
    public float[] ReadFloat32(string name)
    {
        var e = Entry(name);
        var result = new float[e.ElementCount];
        ReadFloat32(e, result);
        return result;
    }

    /// <summary>Converts a floating-point tensor (F16, BF16, F32, F64) into <paramref name="destination"/>.</summary>
    public void ReadFloat32(SafetensorsEntry e, Span<float> destination)
    {
        if (!SafetensorsDTypes.IsFloat(e.DType)) throw new InvalidDataException($"{Path}: tensor '{e.Name}' is {e.DType}, not a floating-point type.");
        if (destination.Length != e.ElementCount)
            throw new ArgumentException($"{Path}: tensor '{e.Name}' has {e.ElementCount} elements, destination holds {destination.Length}.");
        var bytes = Bytes(e);
        switch (e.DType)
        {
            case SafetensorsDType.F32:
                if (BitConverter.IsLittleEndian) MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
                else for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]);
                break;
            case SafetensorsDType.F64:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes[(i * 8)..]);
                break;
            case SafetensorsDType.F16:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(i * 2)..]);
                break;
            case SafetensorsDType.BF16:
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(i * 2)..]) << 16);
                break;
        }
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        file?.Dispose();
    }
}
