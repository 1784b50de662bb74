using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Tessera.Kernels.IO;

namespace Tessera.Model.Checkpoints;

/// <summary>A tensor to write: name, element type, shape and its little-endian bytes.</summary>
public sealed record SafetensorsTensor(string Name, SafetensorsDType DType, long[] Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>A float32 tensor.</summary>
    public static SafetensorsTensor F32(string name, long[] shape, ReadOnlySpan<float> values)
        => new(name, SafetensorsDType.F32, shape, MemoryMarshal.AsBytes(values).ToArray());
}

/// <summary>
/// Writes safetensors files through <see cref="AtomicFile"/> (temporary file, fsync, rename): a crash mid-write
/// never leaves a partial file under the final name, and the previous file survives. The
/// header is padded with spaces to a multiple of 8 bytes so the data buffer stays aligned.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (and optional string <paramref name="metadata"/> under <c>__metadata__</c>) to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Safetensors writing assumes a little-endian machine.");
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                if (t.Name == "__metadata__" || !names.Add(t.Name)) throw new ArgumentException($"Safetensors: duplicate or reserved tensor name '{t.Name}'.");
                long count = 1;
                foreach (long d in t.Shape)
                {
                    if (d < 0) throw new ArgumentException($"Safetensors: tensor '{t.Name}' has a negative dimension.");
                    count *= d;
                }
                long bytes = count * SafetensorsDTypes.Size(t.DType);
                if (bytes != t.Data.Length)
                    throw new ArgumentException($"Safetensors: tensor '{t.Name}' is {t.DType}[{string.Join(", ", t.Shape)}] = {bytes} bytes but {t.Data.Length} were given.");
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.ToString());
                json.WriteStartArray("shape");
                foreach (long d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        var header = headerStream.ToArray();
        int padded = (header.Length + 7) / 8 * 8;

        AtomicFile.Write(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
            fs.Write(len);
            fs.Write(header);
            for (int i = header.Length; i < padded; i++) fs.WriteByte((byte)' ');
            foreach (var t in tensors) fs.Write(t.Data.Span);
        });
    }
}
