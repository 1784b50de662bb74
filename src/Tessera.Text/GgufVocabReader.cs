using System.Buffers.Binary;
using System.Text;

namespace Tessera.Text;

/// <summary>
/// The one GGUF (v2/v3, little-endian) parser of the file header and the metadata key/value
/// section, used for tokenizer vocabularies here and, through <see cref="Read(Stream, string)"/>,
/// by the model reader in Tessera.Model, which continues with the tensor infos at
/// <see cref="GgufMetadata.End"/>. Every length is checked against the bytes left in the file before anything is
/// allocated, so hostile sizes fail with a clear message instead of exhausting memory.
/// </summary>
public sealed class GgufVocabReader
{
    private const uint Magic = 0x46554747; // "GGUF" little-endian

    private readonly Stream _stream;
    private readonly string _path;
    private readonly long _length;
    private readonly byte[] _buf = new byte[8];

    private GgufVocabReader(Stream stream, string path)
    {
        _stream = stream;
        _path = path;
        _length = stream.Length;
    }

    /// <summary>Reads the metadata of a GGUF file.</summary>
    /// <exception cref="FormatException">Not a GGUF file, unsupported version, or a bad size; the message names the file and offset.</exception>
    public static GgufMetadata Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"GGUF file not found: {path}", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return new GgufVocabReader(fs, path).ReadMetadata();
    }

    /// <summary>
    /// Reads the header and metadata from the start of <paramref name="stream"/> (positioned at 0) and leaves it
    /// at <see cref="GgufMetadata.End"/>, the first tensor info. <paramref name="path"/> names the file in errors.
    /// </summary>
    /// <exception cref="FormatException">Not a GGUF file, unsupported version, or a bad size.</exception>
    public static GgufMetadata Read(Stream stream, string path)
    {
        if (stream.Position != 0) throw new ArgumentException("The GGUF stream must be positioned at its start.", nameof(stream));
        return new GgufVocabReader(stream, path).ReadMetadata();
    }

    private GgufMetadata ReadMetadata()
    {
        if (_length < 24) Fail("file is too short to be GGUF");
        if (U32() != Magic) Fail("not a GGUF file (bad magic)");
        uint version = U32();
        if (version is not (2 or 3)) Fail($"unsupported GGUF version {version} (supported: 2, 3)");
        ulong tensorCount = U64();
        ulong kvCount = U64();
        // Each KV needs at least a key length (8), a type (4) and one byte of value.
        if (kvCount > (ulong)(_length - _stream.Position) / 13) Fail($"metadata count {kvCount} cannot fit in the file");
        var values = new Dictionary<string, object>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = Str();
            uint type = U32();
            var value = Value(type, key);
            if (!values.TryAdd(key, value)) Fail($"duplicate metadata key '{key}'");
        }
        return new GgufMetadata(_path, version, tensorCount, values) { End = _stream.Position };
    }

    private object Value(uint type, string key) => type switch
    {
        0 => Bytes(1)[0],
        1 => (sbyte)Bytes(1)[0],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2)),
        3 => BinaryPrimitives.ReadInt16LittleEndian(Bytes(2)),
        4 => U32(),
        5 => (int)U32(),
        6 => BitConverter.Int32BitsToSingle((int)U32()),
        7 => Bytes(1)[0] != 0,
        8 => Str(),
        9 => Array(key),
        10 => U64(),
        11 => (long)U64(),
        12 => BitConverter.Int64BitsToDouble((long)U64()),
        _ => Fail<object>($"metadata '{key}' has unknown value type {type}"),
    };

    private object Array(string key)
    {
        uint elemType = U32();
        ulong count = U64();
        long left = _length - _stream.Position;
        int minSize = elemType switch { 0 or 1 or 7 => 1, 2 or 3 => 2, 4 or 5 or 6 => 4, 8 => 8, 9 => 12, 10 or 11 or 12 => 8, _ => 1 };
        if (count > (ulong)left / (ulong)minSize || count > int.MaxValue)
            Fail($"array '{key}' claims {count} elements, more than the {left} bytes left can hold");
        int n = (int)count;
        switch (elemType)
        {
            case 8: { var a = new string[n]; for (int i = 0; i < n; i++) a[i] = Str(); return a; }
            case 6: { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = BitConverter.Int32BitsToSingle((int)U32()); return a; }
            case 5: { var a = new int[n]; for (int i = 0; i < n; i++) a[i] = (int)U32(); return a; }
            case 4: { var a = new uint[n]; for (int i = 0; i < n; i++) a[i] = U32(); return a; }
            case 0 or 1: { var a = new byte[n]; _stream.ReadExactly(a); return a; } // e.g. tokenizer.ggml.precompiled_charsmap
            default: { var a = new object[n]; for (int i = 0; i < n; i++) a[i] = Value(elemType, key); return a; }
        }
    }

    private string Str()
    {
        ulong len = U64();
        if (len > (ulong)(_length - _stream.Position)) Fail($"string length {len} runs past the end of the file");
        if (len > 1 << 24) Fail($"string length {len} is implausibly large");
        var bytes = new byte[(int)len];
        _stream.ReadExactly(bytes);
        return Encoding.UTF8.GetString(bytes);
    }

    private uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4));

    private ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8));

    private ReadOnlySpan<byte> Bytes(int n)
    {
        if (_stream.Position + n > _length) Fail("unexpected end of file");
        _stream.ReadExactly(_buf, 0, n);
        return _buf.AsSpan(0, n);
    }

    private void Fail(string message) => throw new FormatException($"{_path} (offset {_stream.Position}): {message}");

    private T Fail<T>(string message) { Fail(message); return default!; }
}

/// <summary>The metadata key/values of a GGUF file.</summary>
public sealed class GgufMetadata(string path, uint version, ulong tensorCount, IReadOnlyDictionary<string, object> values)
{
    /// <summary>The file it was read from.</summary>
    public string Path { get; } = path;

    /// <summary>GGUF format version.</summary>
    public uint Version { get; } = version;

    /// <summary>Number of tensors declared in the header.</summary>
    public ulong TensorCount { get; } = tensorCount;

    /// <summary>File offset just past the metadata, where the tensor infos begin.</summary>
    public long End { get; init; }

    /// <summary>All key/values; arrays of strings/floats/int32/uint32 are typed arrays, arrays of uint8 or int8 are byte[], others object[].</summary>
    public IReadOnlyDictionary<string, object> Values { get; } = values;

    /// <summary>A required value of type <typeparamref name="T"/>.</summary>
    /// <exception cref="FormatException">Missing or of another type; the message names file and key.</exception>
    public T Get<T>(string key) => Values.TryGetValue(key, out var v)
        ? v is T t ? t : throw new FormatException($"{Path}: metadata '{key}' is {v.GetType().Name}, expected {typeof(T).Name}")
        : throw new FormatException($"{Path}: metadata '{key}' is missing");

    /// <summary>An optional value, or <paramref name="fallback"/> when absent.</summary>
    public T GetOr<T>(string key, T fallback) => Values.ContainsKey(key) ? Get<T>(key) : fallback;

    /// <summary>An optional integer value (any integer type), or null.</summary>
    public long? GetInteger(string key) => Values.TryGetValue(key, out var v) ? v switch
    {
        byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint u => u, int i => i, ulong ul => (long)ul, long l => l,
        _ => throw new FormatException($"{Path}: metadata '{key}' is {v.GetType().Name}, expected an integer"),
    } : null;
}
