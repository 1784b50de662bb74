using System.Buffers.Binary;
using System.Text;
using Tessera.Kernels.IO;

namespace Tessera.Model.Checkpoints;

/// <summary>A tensor to write: name, ggml type, dimensions in ggml order (row length first) and its bytes.</summary>
public sealed record GgufTensor(string Name, GgmlType Type, long[] Dims, ReadOnlyMemory<byte> Data);

/// <summary>
/// Writes GGUF v3 files through <see cref="AtomicFile"/> (temporary file, fsync, rename). Metadata values keep their .NET
/// type: string, bool, byte, sbyte, ushort, short, uint, int, float, ulong, long, double and arrays of
/// string, float, int, uint, so what <see cref="GgufReader"/> returns writes back identically.
/// general.alignment is always written (default 32) and every tensor starts on it.
/// </summary>
public sealed class GgufWriter
{
    readonly List<KeyValuePair<string, object>> metadata = [];
    readonly List<GgufTensor> tensors = [];
    readonly HashSet<string> keys = new(StringComparer.Ordinal), names = new(StringComparer.Ordinal);

    /// <summary>Data alignment in bytes (a power of two ≥ 8).</summary>
    public int Alignment { get; init; } = 32;

    /// <summary>Adds a metadata key/value (keys must be unique; general.alignment is written from <see cref="Alignment"/>).</summary>
    public GgufWriter Set(string key, object value)
    {
        if (key == "general.alignment") throw new ArgumentException("Set general.alignment through GgufWriter.Alignment.");
        if (!keys.Add(key)) throw new ArgumentException($"GGUF: duplicate metadata key '{key}'.");
        _ = TypeOf(value, key);
        metadata.Add(new(key, value));
        return this;
    }

    /// <summary>Adds a tensor; its byte count is checked against its type and dimensions.</summary>
    public GgufWriter Add(GgufTensor t, int ternaryGroup = 0)
    {
        if (!names.Add(t.Name)) throw new ArgumentException($"GGUF: duplicate tensor name '{t.Name}'.");
        if (t.Dims.Length is < 1 or > GgufReader.MaxDims) throw new ArgumentException($"GGUF: tensor '{t.Name}' needs 1..{GgufReader.MaxDims} dimensions.");
        long elements = 1;
        foreach (long d in t.Dims)
        {
            if (d < 0) throw new ArgumentException($"GGUF: tensor '{t.Name}' has a negative dimension.");
            elements *= d;
        }
        long? bytes = GgmlTypes.ByteCount(t.Type, t.Dims[0], elements, ternaryGroup == 0 ? (int)Math.Max(32, elements) : ternaryGroup);
        if (bytes != t.Data.Length)
            throw new ArgumentException($"GGUF: tensor '{t.Name}' is {t.Type}[{string.Join(", ", t.Dims)}] = {bytes?.ToString() ?? "invalid"} bytes but {t.Data.Length} were given.");
        tensors.Add(t);
        return this;
    }

    /// <summary>Writes the file atomically; on failure the previous file is untouched.</summary>
    public void Write(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("GGUF writing assumes a little-endian machine.");
        if (Alignment < 8 || (Alignment & (Alignment - 1)) != 0) throw new ArgumentException($"GGUF alignment {Alignment} must be a power of two ≥ 8.");
        AtomicFile.Write(path, fs =>
        {
            using var w = new BinaryWriter(fs, Encoding.UTF8, leaveOpen: true);
            w.Write(0x46554747u);                       // "GGUF"
            w.Write(3u);
            w.Write((ulong)tensors.Count);
            w.Write((ulong)metadata.Count + 1);
            WriteString(w, "general.alignment");
            w.Write(4u);
            w.Write((uint)Alignment);
            foreach (var (k, v) in metadata)
            {
                WriteString(w, k);
                WriteValue(w, v, k);
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                WriteString(w, t.Name);
                w.Write((uint)t.Dims.Length);
                foreach (long d in t.Dims) w.Write((ulong)d);
                w.Write((uint)t.Type);
                w.Write((ulong)offset);
                offset = Align(offset + t.Data.Length);
            }
            w.Flush();
            Pad(fs);
            foreach (var t in tensors)
            {
                fs.Write(t.Data.Span);
                Pad(fs);
            }
        });
    }

    long Align(long offset) => offset + (Alignment - offset % Alignment) % Alignment;

    void Pad(Stream s)
    {
        long pad = Align(s.Position) - s.Position;
        for (long i = 0; i < pad; i++) s.WriteByte(0);
    }

    static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    static uint TypeOf(object v, string key) => v switch
    {
        byte => 0, sbyte => 1, ushort => 2, short => 3, uint => 4, int => 5, float => 6, bool => 7, string => 8,
        string[] or float[] or int[] or uint[] => 9, ulong => 10, long => 11, double => 12,
        _ => throw new ArgumentException($"GGUF: metadata '{key}' has unsupported type {v.GetType().Name}."),
    };

    static void WriteValue(BinaryWriter w, object v, string key)
    {
        w.Write(TypeOf(v, key));
        switch (v)
        {
            case byte b: w.Write(b); break;
            case sbyte sb: w.Write(sb); break;
            case ushort us: w.Write(us); break;
            case short s: w.Write(s); break;
            case uint u: w.Write(u); break;
            case int i: w.Write(i); break;
            case float f: w.Write(f); break;
            case bool b: w.Write((byte)(b ? 1 : 0)); break;
            case string s: WriteString(w, s); break;
            case ulong ul: w.Write(ul); break;
            case long l: w.Write(l); break;
            case double d: w.Write(d); break;
            case string[] a: w.Write(8u); w.Write((ulong)a.Length); foreach (var s in a) WriteString(w, s); break;
            case float[] a: w.Write(6u); w.Write((ulong)a.Length); foreach (var f in a) w.Write(f); break;
            // The CLR lets an int[] pass as uint[] and vice versa, so the element type is taken from GetType().
            case int[] a when v.GetType() == typeof(int[]): w.Write(5u); w.Write((ulong)a.Length); foreach (var i in a) w.Write(i); break;
            case uint[] a: w.Write(4u); w.Write((ulong)a.Length); foreach (var u in a) w.Write(u); break;
        }
    }
}
