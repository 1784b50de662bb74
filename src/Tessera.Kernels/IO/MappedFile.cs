using System.IO.MemoryMappedFiles;

namespace Tessera.Kernels.IO;

/// <summary>
/// The one memory-mapped file reader: token shards, safetensors, GGUF and the distillation cache
/// all map their files through it. It owns the mapping and one pinned base pointer, and turns any
/// read past the end into one <see cref="InvalidDataException"/> that names the file, what was
/// being read and the byte range it needed, so a truncated file is reported the same way by
/// every format.
/// </summary>
public sealed unsafe class MappedFile : IDisposable
{
    readonly MemoryMappedFile? map;
    readonly MemoryMappedViewAccessor? view;
    bool disposed;

    /// <summary>The file path.</summary>
    public string Path { get; }
    /// <summary>What the file holds, for messages ("token shard", "GGUF file", …).</summary>
    public string Kind { get; }
    /// <summary>Mapped bytes (the file length for read-only maps).</summary>
    public long Length { get; }
    /// <summary>True when the map is writable.</summary>
    public bool Writable { get; }

    /// <summary>First byte of the map; null for an empty file.</summary>
    public byte* Pointer { get; }

    MappedFile(string path, string kind, long length, bool writable)
    {
        Path = path;
        Kind = kind;
        Length = length;
        Writable = writable;
        // A zero-length file cannot be mapped; callers see Length == 0 and report it as truncated.
        if (length == 0) return;
        var access = writable ? MemoryMappedFileAccess.ReadWrite : MemoryMappedFileAccess.Read;
        map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, writable ? length : 0, access);
        try
        {
            view = map.CreateViewAccessor(0, writable ? length : 0, access);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            Pointer = p + view.PointerOffset;
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>Maps an existing file read-only; <paramref name="kind"/> names the format in messages.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist (the message names it).</exception>
    public static MappedFile OpenRead(string path, string kind)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{Capitalized(kind)} not found: {path}", path);
        return new MappedFile(path, kind, new FileInfo(path).Length, writable: false);
    }

    /// <summary>
    /// Maps the first <paramref name="length"/> bytes of an existing file for reading and writing;
    /// a shorter file is extended with zeros. Remap (dispose and open again) to grow it.
    /// </summary>
    public static MappedFile OpenReadWrite(string path, string kind, long length)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{Capitalized(kind)} not found: {path}", path);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return new MappedFile(path, kind, length, writable: true);
    }

    static string Capitalized(string kind) => kind.Length == 0 ? kind : char.ToUpperInvariant(kind[0]) + kind[1..];

    /// <summary>The error for a file that is not what <see cref="Kind"/> says: "{path}: not a valid {kind}: {why}."</summary>
    public InvalidDataException Invalid(string why) => new($"{Path}: not a valid {Kind}: {why}.");

    /// <summary>
    /// Throws the truncation error unless bytes [<paramref name="offset"/>, offset + <paramref name="count"/>)
    /// lie inside the map; <paramref name="what"/> names the part being read.
    /// </summary>
    public void Require(long offset, long count, string what)
    {
        if (offset < 0 || count < 0 || offset > Length || count > Length - offset)
            throw new InvalidDataException(
                $"{Path}: truncated {Kind}: {what} needs bytes [{offset}, {offset + count}) but the file has {Length} bytes.");
    }

    /// <summary>Bytes [offset, offset + count) after <see cref="Require"/>; valid until disposal.</summary>
    public ReadOnlySpan<byte> Bytes(long offset, int count, string what)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        Require(offset, count, what);
        return count == 0 ? default : new ReadOnlySpan<byte>(Pointer + offset, count);
    }

    /// <summary>Writable bytes [offset, offset + count) of a read-write map.</summary>
    public Span<byte> WritableBytes(long offset, int count, string what)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (!Writable) throw new InvalidOperationException($"{Path}: mapped read-only.");
        Require(offset, count, what);
        return count == 0 ? default : new Span<byte>(Pointer + offset, count);
    }

    /// <summary>Writes dirty pages of a read-write map back to the file.</summary>
    public void Flush()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        view?.Flush();
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (view is not null)
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
            view.Dispose();
        }
        map?.Dispose();
    }
}
