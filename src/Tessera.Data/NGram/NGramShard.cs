using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;

namespace Tessera.Data.NGram;

/// <summary>
/// One shard of the ∞-gram store: a token array and its suffix array in one memory-mapped file.
/// Layout, little-endian:
/// <code>
///   0  8  magic "TSNGRAM1"
///   8  4  format version (1)
///  12  4  bytes per token (2 when the vocabulary fits in 16 bits, else 4)
///  16  4  bytes per suffix-array entry (the fewest that hold N − 1)
///  20  4  reserved (zero)
///  24  8  token count N
///  32  8  document count M
///  40  8  global id of the shard's first document
///  48  8  tokens of that document that lie in earlier shards (0 unless a document was split)
///  56  8  reserved (zero)
///  64     N tokens, zero-padded to 8 bytes
///         N suffix-array entries (start positions, sorted by suffix), then 8 zero bytes so an
///         entry can be read with one unaligned 64-bit load, zero-padded to 8 bytes
///         M int64 document start offsets into the token array
/// </code>
/// Suffixes are ordered as if the shard ended with a sentinel below every token. A query never
/// matches across two shards. The file's integrity is checked by the store (SHA-256 in index.json).
/// </summary>
public sealed unsafe class NGramShard : IDisposable
{
    /// <summary>The 8-byte magic at the start of every shard file.</summary>
    public static ReadOnlySpan<byte> Magic => "TSNGRAM1"u8;
    const int HeaderBytes = 64;
    const int Version = 1;

    readonly MemoryMappedFile? map;
    readonly MemoryMappedViewAccessor? view;
    readonly byte* tokens;
    readonly byte* sa;
    readonly long* docStarts;
    readonly ulong pointerMask;
    readonly object tableLock = new();
    int vocab;
    long[]? firstStarts;    // firstStarts[t]: first rank whose suffix starts with a token ≥ t
    bool disposed;

    /// <summary>Path the shard was opened from.</summary>
    public string Path { get; }
    /// <summary>Tokens in the shard.</summary>
    public long TokenCount { get; }
    /// <summary>Documents (or document pieces) in the shard.</summary>
    public long DocumentCount { get; }
    /// <summary>2 or 4.</summary>
    public int TokenBytes { get; }
    /// <summary>Bytes per suffix-array entry.</summary>
    public int PointerBytes { get; }
    /// <summary>Global id of the shard's first document.</summary>
    public long FirstDocument { get; }
    /// <summary>Tokens of the first document that lie in earlier shards.</summary>
    public long FirstDocumentOffset { get; }
    /// <summary>Size of the file in bytes.</summary>
    public long FileBytes { get; }

    NGramShard(string path)
    {
        Path = path;
        FileBytes = new FileInfo(path).Length;
        if (FileBytes < HeaderBytes)
            throw new InvalidDataException($"{path}: not an n-gram shard (only {FileBytes} bytes, the header needs {HeaderBytes}).");
        map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        p += view.PointerOffset;
        try
        {
            var h = new ReadOnlySpan<byte>(p, HeaderBytes);
            if (!h[..8].SequenceEqual(Magic)) throw new InvalidDataException($"{path}: not an n-gram shard (bad magic).");
            int version = BinaryPrimitives.ReadInt32LittleEndian(h[8..]);
            if (version != Version) throw new InvalidDataException($"{path}: n-gram shard version {version} is not supported (expected {Version}).");
            TokenBytes = BinaryPrimitives.ReadInt32LittleEndian(h[12..]);
            PointerBytes = BinaryPrimitives.ReadInt32LittleEndian(h[16..]);
            TokenCount = BinaryPrimitives.ReadInt64LittleEndian(h[24..]);
            DocumentCount = BinaryPrimitives.ReadInt64LittleEndian(h[32..]);
            FirstDocument = BinaryPrimitives.ReadInt64LittleEndian(h[40..]);
            FirstDocumentOffset = BinaryPrimitives.ReadInt64LittleEndian(h[48..]);
            if (TokenBytes is not (2 or 4) || PointerBytes is < 1 or > 8 || TokenCount < 0 || DocumentCount < 0 || FirstDocument < 0 || FirstDocumentOffset < 0)
                throw new InvalidDataException($"{path}: corrupt header (token bytes {TokenBytes}, pointer bytes {PointerBytes}, tokens {TokenCount}, documents {DocumentCount}).");
            if (FileBytes != ExpectedSize(TokenCount, DocumentCount, TokenBytes, PointerBytes))
                throw new InvalidDataException($"{path}: truncated or padded (expected {ExpectedSize(TokenCount, DocumentCount, TokenBytes, PointerBytes)} bytes, found {FileBytes}).");
            tokens = p + HeaderBytes;
            sa = tokens + Pad(TokenCount * TokenBytes);
            docStarts = (long*)(sa + Pad(TokenCount * PointerBytes + 8));
            pointerMask = PointerBytes == 8 ? ulong.MaxValue : (1UL << (8 * PointerBytes)) - 1;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    static long Pad(long bytes) => (bytes + 7) & ~7L;

    static long ExpectedSize(long n, long docs, int tokenBytes, int pointerBytes)
        => HeaderBytes + Pad(n * tokenBytes) + Pad(n * pointerBytes + 8) + docs * 8;

    /// <summary>The fewest bytes that hold every start position of an <paramref name="n"/>-token shard.</summary>
    public static int PointerBytesFor(long n)
    {
        int bytes = 1;
        while (bytes < 8 && (ulong)Math.Max(0, n - 1) >> (8 * bytes) != 0) bytes++;
        return bytes;
    }

    /// <summary>Opens a shard file and checks its header against its size.</summary>
    public static NGramShard Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"n-gram shard not found: {path}", path);
        return new NGramShard(path);
    }

    /// <summary>
    /// Writes a shard: the tokens, the suffix array <paramref name="suffixArray"/> of them and the
    /// document starts. The caller writes into a temporary folder that is renamed when complete.
    /// </summary>
    public static void Write(string path, ReadOnlySpan<int> text, ReadOnlySpan<int> suffixArray, ReadOnlySpan<long> documentStarts,
        int tokenBytes, long firstDocument, long firstDocumentOffset)
    {
        if (suffixArray.Length != text.Length) throw new ArgumentException($"{path}: {text.Length} tokens but {suffixArray.Length} suffix-array entries.");
        int pointerBytes = PointerBytesFor(text.Length);
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        var header = new byte[HeaderBytes];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), Version);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), tokenBytes);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16), pointerBytes);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(24), text.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(32), documentStarts.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(40), firstDocument);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(48), firstDocumentOffset);
        fs.Write(header);

        var buf = new byte[1 << 16];
        int used = 0;
        void Put(ulong value, int bytes)
        {
            if (used + 8 > buf.Length) { fs.Write(buf, 0, used); used = 0; }
            BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(used), value);
            used += bytes;
        }
        void Flush(long written)
        {
            for (long pad = Pad(written) - written; pad > 0; pad--) Put(0, 1);
            fs.Write(buf, 0, used);
            used = 0;
        }
        foreach (int t in text) Put((uint)t, tokenBytes);
        Flush((long)text.Length * tokenBytes);
        foreach (int r in suffixArray) Put((uint)r, pointerBytes);
        Put(0, 8);
        Flush((long)text.Length * pointerBytes + 8);
        foreach (long d in documentStarts) Put((ulong)d, 8);
        Flush(documentStarts.Length * 8L);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Token at position <paramref name="pos"/> (no bounds check: callers stay inside).</summary>
    public int Token(long pos) => TokenBytes == 2 ? ((ushort*)tokens)[pos] : ((int*)tokens)[pos];

    /// <summary>Start position of the suffix of rank <paramref name="rank"/>.</summary>
    public long Suffix(long rank) => (long)(*(ulong*)(sa + rank * PointerBytes) & pointerMask);

    /// <summary>Copies tokens [start, start + destination.Length) out.</summary>
    public void Read(long start, Span<int> destination)
    {
        if (start < 0 || start + destination.Length > TokenCount)
            throw new ArgumentOutOfRangeException(nameof(start), $"{Path}: read of {destination.Length} tokens at {start} is outside [0, {TokenCount}).");
        for (int i = 0; i < destination.Length; i++) destination[i] = Token(start + i);
    }

    /// <summary>The token that follows a suffix of rank <paramref name="rank"/> after <paramref name="depth"/> tokens, or −1 when it ends first.</summary>
    public int KeyAt(long rank, int depth)
    {
        long pos = Suffix(rank) + depth;
        return pos < TokenCount ? Token(pos) : -1;
    }

    /// <summary>
    /// Narrows <paramref name="range"/> (suffixes sharing their first <paramref name="depth"/> tokens)
    /// to those whose next token is <paramref name="token"/>: two binary searches on one token column.
    /// </summary>
    public SaRange Narrow(SaRange range, int depth, int token)
    {
        // The first step of every search would be two binary searches over the whole array (the
        // slowest, cache-missing ones); a table of where each first token's block starts answers it.
        if (depth == 0 && range.Lo == 0 && range.Hi == TokenCount && (uint)token < (uint)vocab)
        {
            var f = FirstTokenStarts();
            return new SaRange(f[token], f[token + 1]);
        }
        long lo = range.Lo, hi = range.Hi;
        // First rank whose key ≥ token.
        long a = lo, b = hi;
        while (a < b)
        {
            long mid = (a + b) >>> 1;
            if (KeyAt(mid, depth) < token) a = mid + 1; else b = mid;
        }
        long start = a;
        b = hi;
        while (a < b)
        {
            long mid = (a + b) >>> 1;
            if (KeyAt(mid, depth) <= token) a = mid + 1; else b = mid;
        }
        return new SaRange(start, a);
    }

    /// <summary>Enables the first-token table (built on first use: one binary search per vocabulary id).</summary>
    public void IndexFirstTokens(int vocabularySize) => vocab = vocabularySize;

    long[] FirstTokenStarts()
    {
        if (Volatile.Read(ref firstStarts) is { } ready) return ready;
        lock (tableLock)
        {
            if (firstStarts is { } built) return built;
            var f = new long[vocab + 1];
            for (int t = 0; t < vocab; t++)
            {
                long a = t == 0 ? 0 : f[t - 1], b = TokenCount;
                while (a < b)
                {
                    long mid = (a + b) >>> 1;
                    if (Token(Suffix(mid)) < t) a = mid + 1; else b = mid;
                }
                f[t] = a;
            }
            f[vocab] = TokenCount;
            Volatile.Write(ref firstStarts, f);
            return f;
        }
    }

    /// <summary>The whole suffix array (the range of the empty pattern).</summary>
    public SaRange All => new(0, TokenCount);

    /// <summary>The range of suffixes starting with <paramref name="pattern"/>.</summary>
    public SaRange Find(ReadOnlySpan<int> pattern)
    {
        var r = All;
        for (int k = 0; k < pattern.Length && !r.IsEmpty; k++) r = Narrow(r, k, pattern[k]);
        return r;
    }

    /// <summary>
    /// Occurrences in <paramref name="range"/> (at <paramref name="depth"/>) that a token follows: all but
    /// the one suffix, if any, that ends exactly there (it sorts first in the range).
    /// </summary>
    public long Continuations(SaRange range, int depth)
        => range.IsEmpty ? 0 : range.Count - (Suffix(range.Lo) + depth == TokenCount ? 1 : 0);

    /// <summary>
    /// Adds (next token, count) for every distinct continuation of <paramref name="range"/> at
    /// <paramref name="depth"/>: equal next tokens are adjacent in suffix order, so each group's end
    /// is found by a galloping search, O(distinct · log range).
    /// </summary>
    public void AddContinuations(SaRange range, int depth, Dictionary<int, long> counts)
    {
        long i = range.Lo;
        while (i < range.Hi)
        {
            int key = KeyAt(i, depth);
            long step = 1, lo = i, hi = i + 1;
            while (hi < range.Hi && KeyAt(hi, depth) == key) { lo = hi; step <<= 1; hi = Math.Min(range.Hi, i + step); }
            // KeyAt(lo) == key; the group ends in (lo, hi].
            while (lo + 1 < hi)
            {
                long mid = (lo + hi) >>> 1;
                if (KeyAt(mid, depth) == key) lo = mid; else hi = mid;
            }
            if (key >= 0) counts[key] = counts.GetValueOrDefault(key) + (hi - i);
            i = hi;
        }
    }

    /// <summary>Local document index holding <paramref name="pos"/> (binary search on document starts).</summary>
    public long DocumentOf(long pos)
    {
        long a = 0, b = DocumentCount;   // last start ≤ pos
        while (b - a > 1)
        {
            long mid = (a + b) >>> 1;
            if (docStarts[mid] <= pos) a = mid; else b = mid;
        }
        return a;
    }

    /// <summary>Start offset of local document <paramref name="index"/>.</summary>
    public long DocumentStart(long index) => docStarts[index];

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        view?.SafeMemoryMappedViewHandle.ReleasePointer();
        view?.Dispose();
        map?.Dispose();
    }
}

/// <summary>A half-open range [<see cref="Lo"/>, <see cref="Hi"/>) of suffix-array ranks.</summary>
public readonly record struct SaRange(long Lo, long Hi)
{
    /// <summary>Suffixes in the range.</summary>
    public long Count => Hi - Lo;
    /// <summary>True when no suffix is in the range.</summary>
    public bool IsEmpty => Hi <= Lo;
}
