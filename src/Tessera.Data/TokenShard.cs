using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tessera.Kernels.IO;

namespace Tessera.Data;

/// <summary>
/// A token shard on disk: a packed token stream (each document preceded by BOS when one is
/// given) plus the start offset of every document, so both windows and whole documents can be
/// read back. Layout, little-endian:
/// <code>
///   0  8  magic "TSSHARD1"
///   8  4  format version (1)
///  12  4  bytes per token (2 = uint16, 4 = uint32)
///  16  8  token count N
///  24  8  document count M
///  32  4  vocabulary size
///  36 28  reserved (zero)
///  64     N tokens, then (M + 1) int64 document offsets into the token stream
/// </code>
/// Files are written through <see cref="AtomicFile"/>, so a crash never leaves a half shard.
/// Reading maps the file through <see cref="MappedFile"/> and validates every size against its length.
/// <para>
/// An optional companion file (<see cref="MaskPath"/>, e.g. <c>train.mask</c> beside <c>train.bin</c>)
/// holds a per-token loss mask: 1 where the token is a training target, 0 where it is context only
/// (a prompt). Layout: magic <c>TSMASK01</c>, int64 token count N (equal to the shard's), then N
/// bytes of 0 or 1. A shard without one trains on every token.
/// </para>
/// </summary>
public sealed class TokenShard : IDisposable
{
    /// <summary>The 8-byte magic at the start of every shard.</summary>
    public static ReadOnlySpan<byte> Magic => "TSSHARD1"u8;
    const int HeaderBytes = 64;
    const int Version = 1;

    const string Kind = "token shard";
    /// <summary>The 8-byte magic at the start of every loss-mask file.</summary>
    public static ReadOnlySpan<byte> MaskMagic => "TSMASK01"u8;
    const int MaskHeaderBytes = 16;
    readonly MappedFile file;
    readonly MappedFile? maskFile;
    readonly unsafe byte* basePtr;
    readonly long[] docOffsets = [];
    bool disposed;

    /// <summary>Path the shard was opened from.</summary>
    public string Path { get; }
    /// <summary>Tokens in the packed stream (BOS separators included).</summary>
    public long TokenCount { get; }
    /// <summary>Documents in the shard.</summary>
    public int DocumentCount => docOffsets.Length - 1;
    /// <summary>True when a loss-mask file accompanies the shard (<see cref="ReadLossMask"/>).</summary>
    public bool HasLossMask => maskFile is not null;
    /// <summary>2 for uint16 storage, 4 for uint32.</summary>
    public int BytesPerToken { get; }
    /// <summary>Vocabulary size the tokens were written for.</summary>
    public int VocabSize { get; }

    unsafe TokenShard(string path)
    {
        Path = path;
        file = MappedFile.OpenRead(path, Kind);
        long length = file.Length;
        basePtr = file.Pointer;
        try
        {
            var header = file.Bytes(0, HeaderBytes, "the header");
            if (!header[..8].SequenceEqual(Magic))
                throw new InvalidDataException($"{path}: not a token shard (bad magic).");
            int version = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
            if (version != Version)
                throw new InvalidDataException($"{path}: shard format version {version} is not supported (expected {Version}).");
            BytesPerToken = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
            if (BytesPerToken is not (2 or 4))
                throw new InvalidDataException($"{path}: bytes per token must be 2 or 4, header says {BytesPerToken}.");
            TokenCount = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
            long docs = BinaryPrimitives.ReadInt64LittleEndian(header[24..]);
            VocabSize = BinaryPrimitives.ReadInt32LittleEndian(header[32..]);
            if (TokenCount < 0 || docs < 0 || docs > int.MaxValue - 1 || VocabSize <= 0)
                throw new InvalidDataException($"{path}: corrupt header (tokens={TokenCount}, documents={docs}, vocab={VocabSize}).");
            // Overflow-safe size check: each term is bounded before multiplying.
            if (TokenCount > (length - HeaderBytes) / BytesPerToken)
                throw new InvalidDataException($"{path}: truncated (header promises {TokenCount} tokens, file has {length} bytes).");
            long offsetsStart = HeaderBytes + TokenCount * BytesPerToken;
            if ((docs + 1) * 8 != length - offsetsStart)
                throw new InvalidDataException($"{path}: truncated or padded (expected {(docs + 1) * 8} bytes of document offsets, found {length - offsetsStart}).");
            docOffsets = new long[docs + 1];
            var raw = new ReadOnlySpan<byte>(basePtr + offsetsStart, (int)((docs + 1) * 8));
            for (int i = 0; i <= docs; i++)
            {
                docOffsets[i] = BinaryPrimitives.ReadInt64LittleEndian(raw[(i * 8)..]);
                if (docOffsets[i] < 0 || docOffsets[i] > TokenCount || (i > 0 && docOffsets[i] < docOffsets[i - 1]))
                    throw new InvalidDataException($"{path}: corrupt document offset {docOffsets[i]} at index {i}.");
            }
            if (docOffsets[0] != 0 || docOffsets[docs] != TokenCount)
                throw new InvalidDataException($"{path}: document offsets do not cover the token stream.");
            string maskPath = MaskPath(path);
            if (File.Exists(maskPath))
            {
                maskFile = MappedFile.OpenRead(maskPath, "loss mask");
                var mh = maskFile.Bytes(0, MaskHeaderBytes, "the header");
                if (!mh[..8].SequenceEqual(MaskMagic)) throw maskFile.Invalid("bad magic (expected TSMASK01)");
                long n = BinaryPrimitives.ReadInt64LittleEndian(mh[8..]);
                if (n != TokenCount || maskFile.Length - MaskHeaderBytes != TokenCount)
                    throw maskFile.Invalid($"it covers {n} tokens in {maskFile.Length - MaskHeaderBytes} bytes, expected {TokenCount} (the tokens of {path})");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates a shard; throws <see cref="InvalidDataException"/> naming the file when it is corrupt.</summary>
    public static TokenShard Open(string path) => new(path);

    /// <summary>Reads tokens [start, start + destination.Length) of the packed stream.</summary>
    public unsafe void Read(long start, Span<int> destination)
    {
        if (start < 0 || start + destination.Length > TokenCount)
            throw new ArgumentOutOfRangeException(nameof(start), $"{Path}: read of {destination.Length} tokens at {start} is past the end ({TokenCount}).");
        byte* p = basePtr + HeaderBytes + start * BytesPerToken;
        if (BytesPerToken == 2)
        {
            var src = new ReadOnlySpan<ushort>(p, destination.Length);
            for (int i = 0; i < src.Length; i++) destination[i] = src[i];
        }
        else
        {
            MemoryMarshal.Cast<byte, int>(new ReadOnlySpan<byte>(p, destination.Length * 4)).CopyTo(destination);
        }
        // A damaged shard must not hand out ids the model has no row for (found by fuzzing the reader).
        if (BytesPerToken == 2 && VocabSize >= 65536) return;
        for (int i = 0; i < destination.Length; i++)
            if ((uint)destination[i] >= (uint)VocabSize)
                throw new InvalidDataException($"{Path}: token {destination[i]} at position {start + i} is outside the shard's vocabulary of {VocabSize}; the shard is corrupt.");
    }

    /// <summary>Where document <paramref name="index"/> starts in the packed stream (at its BOS separator when the shard has them).</summary>
    public long DocumentStart(int index)
    {
        if ((uint)index >= (uint)DocumentCount)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{Path}: document index out of range [0, {DocumentCount}).");
        return docOffsets[index];
    }

    /// <summary>The loss-mask file that belongs to the shard at <paramref name="shardPath"/>: the same name with the extension <c>.mask</c>.</summary>
    public static string MaskPath(string shardPath) => System.IO.Path.ChangeExtension(shardPath, ".mask");

    /// <summary>
    /// Reads the loss mask of tokens [start, start + destination.Length): 1 = a training target, 0 =
    /// context only. A shard without a mask file gives all ones.
    /// </summary>
    public unsafe void ReadLossMask(long start, Span<byte> destination)
    {
        if (start < 0 || start + destination.Length > TokenCount)
            throw new ArgumentOutOfRangeException(nameof(start), $"{Path}: loss-mask read of {destination.Length} tokens at {start} is past the end ({TokenCount}).");
        if (maskFile is null) { destination.Fill(1); return; }
        new ReadOnlySpan<byte>(maskFile.Pointer + MaskHeaderBytes + start, destination.Length).CopyTo(destination);
        for (int i = 0; i < destination.Length; i++)
            if (destination[i] > 1)
                throw new InvalidDataException($"{maskFile.Path}: mask byte {destination[i]} at token {start + i} is neither 0 nor 1; the mask is corrupt.");
    }

    /// <summary>
    /// Writes the loss mask of the shard at <paramref name="shardPath"/> (to <see cref="MaskPath"/>,
    /// atomically): one entry per token of its packed stream, BOS separators included, each 0 or 1.
    /// </summary>
    public static void WriteLossMask(string shardPath, ReadOnlySpan<byte> mask)
    {
        foreach (byte b in mask)
            if (b > 1) throw new ArgumentException($"Loss-mask entries must be 0 or 1, found {b}.", nameof(mask));
        var bytes = new byte[MaskHeaderBytes + mask.Length];
        MaskMagic.CopyTo(bytes);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8), mask.Length);
        mask.CopyTo(bytes.AsSpan(MaskHeaderBytes));
        AtomicFile.WriteAllBytes(MaskPath(shardPath), bytes);
    }

    /// <summary>The tokens of document <paramref name="index"/> (its BOS separator included when the shard has one).</summary>
    public int[] ReadDocument(int index)
    {
        if ((uint)index >= (uint)DocumentCount)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{Path}: document index out of range [0, {DocumentCount}).");
        var result = new int[docOffsets[index + 1] - docOffsets[index]];
        Read(docOffsets[index], result);
        return result;
    }

    /// <summary>
    /// Writes documents to <paramref name="path"/> atomically. When <paramref name="bosId"/> is
    /// non-negative it precedes every document, so the stream is packed with separators.
    /// uint16 storage is chosen when every id fits.
    /// </summary>
    public static void Write(string path, IEnumerable<int[]> documents, int vocabSize, int bosId = -1)
    {
        if (vocabSize <= 0) throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, "Vocabulary size must be positive.");
        int bytesPerToken = vocabSize <= 65536 ? 2 : 4;
        if (bosId >= vocabSize) throw new ArgumentOutOfRangeException(nameof(bosId), bosId, $"BOS id is outside the vocabulary of {vocabSize}.");
        AtomicFile.Write(path, fs =>
        {
            var offsets = new List<long> { 0 };
            long tokens = 0;
            fs.Write(new byte[HeaderBytes]);
            var buf = new byte[4];
            foreach (var doc in documents)
            {
                if (bosId >= 0) { WriteToken(fs, buf, bosId, bytesPerToken); tokens++; }
                for (int i = 0; i < doc.Length; i++)
                {
                    if ((uint)doc[i] >= (uint)vocabSize)
                        throw new ArgumentOutOfRangeException(nameof(documents), doc[i], $"Token id {doc[i]} in document {offsets.Count - 1} is outside the vocabulary of {vocabSize}.");
                    WriteToken(fs, buf, doc[i], bytesPerToken);
                }
                tokens += doc.Length;
                offsets.Add(tokens);
            }
            var off = new byte[8];
            foreach (long o in offsets) { BinaryPrimitives.WriteInt64LittleEndian(off, o); fs.Write(off); }
            var header = new byte[HeaderBytes];
            Magic.CopyTo(header);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), Version);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), bytesPerToken);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16), tokens);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(24), offsets.Count - 1);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(32), vocabSize);
            fs.Position = 0;
            fs.Write(header);
        });
    }

    static void WriteToken(FileStream fs, byte[] buf, int id, int bytesPerToken)
    {
        if (bytesPerToken == 2) { BinaryPrimitives.WriteUInt16LittleEndian(buf, (ushort)id); fs.Write(buf, 0, 2); }
        else { BinaryPrimitives.WriteInt32LittleEndian(buf, id); fs.Write(buf, 0, 4); }
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        file?.Dispose();
        maskFile?.Dispose();
    }
}
