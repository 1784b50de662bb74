using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Training;

/// <summary>
/// The teacher's top-k logits for every position of the training windows a student reads, kept
/// in one memory-mapped file so the student can take any number of steps or epochs without
/// running the teacher again. Windows are numbered as <see cref="BatchReader"/> numbers them
/// (file order, T + 1 tokens, non-overlapping), so a student's batch finds its rows by the
/// window ids the reader reports, whatever the shuffle.
/// <code>
/// header (128 B): "TSDCACH1", version, T, k, vocab, id bytes, window count, 32-byte key, temperature, slot capacity
/// slot[window count] (int32: 1 + the record's slot, 0 = not stored), padded to 64 B
/// per slot: T·k logits (fp16), then T·k ids (uint16 when vocab ≤ 65536, else uint32),
///             position-major, each position's k entries in descending logit order;
///             then T tail masses (fp32): the teacher's probability at the cache's temperature
///             on every token outside that position's top k (computed from the full fp32 logits)
/// </code>
/// The key is a SHA-256 of the teacher's config and weights, the training tokens, T, k and the
/// temperature: a file
/// made for anything else is rebuilt rather than trusted. Records are appended in slots as windows
/// are filled, so the file holds only the windows a run reads (it grows when a later run needs
/// more). A window's slot entry is written only after its record is flushed, so an interrupted
/// build resumes with the windows it finished.
/// </summary>
public sealed unsafe class DistillCache : IDisposable
{
    static ReadOnlySpan<byte> Magic => "TSDCACH1"u8;
    const int Version = 3;
    const int HeaderBytes = 128;

    const string Kind = "distillation cache";
    MappedFile file = null!;
    byte* basePtr;
    long capacity;
    readonly long dataOffset;
    readonly int idBytes;
    bool disposed;

    /// <summary>The cache file.</summary>
    public string Path { get; }
    /// <summary>Positions per window (the student's sequence length T).</summary>
    public int SequenceLength { get; }
    /// <summary>Teacher logits kept per position.</summary>
    public int TopK { get; }
    /// <summary>Temperature the tail masses were computed at.</summary>
    public float Temperature { get; }
    /// <summary>Vocabulary the ids index.</summary>
    public int VocabSize { get; }
    /// <summary>Windows in one epoch of the training data.</summary>
    public long WindowCount { get; }
    /// <summary>Windows whose teacher logits are stored.</summary>
    public long FilledWindows { get; private set; }
    /// <summary>Bytes of the file.</summary>
    public long FileBytes => dataOffset + capacity * WindowBytes;

    long WindowBytes => (long)SequenceLength * TopK * (2 + idBytes) + 4L * SequenceLength;

    DistillCache(string path, int seq, int k, float temperature, int vocab, long windows, ReadOnlySpan<byte> key)
    {
        Path = path;
        SequenceLength = seq; TopK = k; Temperature = temperature; VocabSize = vocab; WindowCount = windows;
        idBytes = vocab <= 65536 ? 2 : 4;
        dataOffset = (HeaderBytes + 4 * windows + 63) / 64 * 64;
        bool fresh = !Matches(path, key, dataOffset, WindowBytes, out capacity);
        if (!fresh && !SlotsInRange(path, dataOffset, windows, capacity))
            fresh = true;   // a damaged slot table would point reads outside the file: rebuild rather than trust it
        if (fresh)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
            var h = new byte[dataOffset];                          // header and an empty slot table
            Magic.CopyTo(h);
            BinaryPrimitives.WriteInt32LittleEndian(h.AsSpan(8), Version);
            BinaryPrimitives.WriteInt32LittleEndian(h.AsSpan(12), seq);
            BinaryPrimitives.WriteInt32LittleEndian(h.AsSpan(16), k);
            BinaryPrimitives.WriteInt32LittleEndian(h.AsSpan(20), vocab);
            BinaryPrimitives.WriteInt32LittleEndian(h.AsSpan(24), idBytes);
            BinaryPrimitives.WriteInt64LittleEndian(h.AsSpan(32), windows);
            key.CopyTo(h.AsSpan(40));
            BinaryPrimitives.WriteSingleLittleEndian(h.AsSpan(72), temperature);
            AtomicFile.WriteAllBytes(path, h);
            capacity = 0;
        }
        Map();
        foreach (int slot in Slots) if (slot != 0) FilledWindows++;
    }

    Span<int> Slots => new(basePtr + HeaderBytes, checked((int)WindowCount));

    void Map()
    {
        file = MappedFile.OpenReadWrite(Path, Kind, FileBytes);
        basePtr = file.Pointer;
    }

    void Unmap()
    {
        file.Dispose();
        basePtr = null;
    }

    /// <summary>Grows the file to hold <paramref name="slots"/> records (remapping it, which extends the file with zeros).</summary>
    void EnsureCapacity(long slots)
    {
        if (slots <= capacity) return;
        file.Flush();
        Unmap();
        capacity = slots;
        Map();
        BinaryPrimitives.WriteInt64LittleEndian(file.WritableBytes(80, 8, "the slot capacity"), capacity);
    }

    static bool Matches(string path, ReadOnlySpan<byte> key, long dataOffset, long windowBytes, out long capacity)
    {
        capacity = 0;
        if (!File.Exists(path) || new FileInfo(path).Length < dataOffset) return false;
        Span<byte> h = stackalloc byte[HeaderBytes];
        using (var f = File.OpenRead(path)) f.ReadExactly(h);
        if (!h[..8].SequenceEqual(Magic) || BinaryPrimitives.ReadInt32LittleEndian(h[8..]) != Version || !h.Slice(40, 32).SequenceEqual(key)) return false;
        capacity = BinaryPrimitives.ReadInt64LittleEndian(h[80..]);
        // Divide rather than multiply: a capacity near 2^62 made capacity × windowBytes wrap to the
        // file's own length, and reads went past the mapping (found by fuzzing).
        long length = new FileInfo(path).Length;
        return capacity >= 0 && capacity <= (length - dataOffset) / windowBytes && length == dataOffset + capacity * windowBytes;
    }

    /// <summary>Whether every slot entry is 0 (empty) or names one of the file's <paramref name="capacity"/> records.</summary>
    static bool SlotsInRange(string path, long dataOffset, long windows, long capacity)
    {
        var table = new byte[dataOffset - HeaderBytes];
        using (var f = File.OpenRead(path))
        {
            f.Position = HeaderBytes;
            f.ReadExactly(table);
        }
        for (long w = 0; w < windows; w++)
        {
            int slot = BinaryPrimitives.ReadInt32LittleEndian(table.AsSpan((int)(4 * w)));
            if (slot < 0 || slot > capacity) return false;
        }
        return true;
    }

    /// <summary>
    /// Opens the cache at <paramref name="path"/> for this teacher, data, T, k and temperature (reusing what a
    /// matching file already holds, rebuilding any other file) and runs the teacher over every
    /// window of <paramref name="windows"/> (null: all) not yet stored, <paramref name="batch"/>
    /// windows per forward pass. <paramref name="progress"/> gets (windows done, windows to do).
    /// </summary>
    public static DistillCache Build(string path, Transformer teacher, IReadOnlyList<TokenShard> train, int sequenceLength, int topK, float temperature,
        IReadOnlyCollection<long>? windows = null, int batch = 16, Action<long, long>? progress = null)
    {
        var c = teacher.Config;
        if (sequenceLength > c.ContextLength)
            throw new ArgumentException($"Distillation: the student's sequence length {sequenceLength} exceeds the teacher's context length {c.ContextLength}.");
        if (topK < 1 || topK > c.VocabSize)
            throw new ArgumentException($"Distillation: top-k {topK} must be in [1, teacher vocabulary {c.VocabSize}].");
        if (!(temperature > 0) || !float.IsFinite(temperature)) throw new ArgumentException($"Distillation: temperature {temperature} must be positive.");
        if (batch < 1) throw new ArgumentException($"Distillation: teacher batch {batch} must be at least 1.");
        // A one-window reader numbers the windows exactly as the student's reader does.
        long count = new BatchReader(train, 1, sequenceLength, 0, shuffle: false).WindowCount;
        var cache = new DistillCache(path, sequenceLength, topK, temperature, c.VocabSize, count, Key(teacher, train, sequenceLength, topK, temperature));
        try
        {
            cache.Fill(teacher, train, windows, batch, progress);
            return cache;
        }
        catch
        {
            cache.Dispose();
            throw;
        }
    }

    /// <summary>The distinct windows a run with these options will read, in first-visit order.</summary>
    public static IReadOnlyCollection<long> PlannedWindows(IReadOnlyList<TokenShard> train, TrainOptions options)
    {
        var reader = new BatchReader(train, options.BatchSize, options.SequenceLength, options.Seed, options.ShuffleData);
        var ids = new int[options.BatchSize * options.SequenceLength];
        var tgt = new int[ids.Length];
        var w = new long[options.BatchSize];
        var seen = new HashSet<long>();
        var order = new List<long>();
        long reads = options.Steps * options.GradAccumulation;
        for (long i = 0; i < reads && seen.Count < reader.WindowCount; i++)
        {
            reader.Next(ids, tgt, w);
            foreach (long x in w) if (seen.Add(x)) order.Add(x);
        }
        return order;
    }

    void Fill(Transformer teacher, IReadOnlyList<TokenShard> train, IReadOnlyCollection<long>? windows, int batch, Action<long, long>? progress)
    {
        var todo = new List<long>();
        var slots = Slots;
        if (windows is null) { for (long w = 0; w < WindowCount; w++) if (slots[(int)w] == 0) todo.Add(w); }
        else
        {
            foreach (long w in windows)
            {
                if ((ulong)w >= (ulong)WindowCount) throw new ArgumentOutOfRangeException(nameof(windows), w, $"Window {w} is outside the data's {WindowCount} windows.");
                if (slots[(int)w] == 0) todo.Add(w);
            }
            todo.Sort();
            for (int i = todo.Count - 1; i > 0; i--) if (todo[i] == todo[i - 1]) todo.RemoveAt(i);
        }
        EnsureCapacity(FilledWindows + todo.Count);
        int T = SequenceLength, k = TopK, V = VocabSize;
        var ids = new int[batch * T];
        var window = new int[T];
        var target = new int[T];
        var topIds = new int[batch * T * k];
        var topValues = new float[batch * T * k];
        var tails = new float[batch * T];
        var row = new float[V];
        for (int start = 0; start < todo.Count; start += batch)
        {
            int b = Math.Min(batch, todo.Count - start);
            for (int i = 0; i < b; i++)
            {
                // Reading from a cursor at the window in file order yields exactly that window.
                new BatchReader(train, 1, T, 0, shuffle: false, new DataCursor(0, todo[start + i])).Next(window, target);
                window.CopyTo(ids, i * T);
            }
            using (var g = new Graph(recordGradients: false))
            {
                var logits = teacher.Forward(g, ids.AsSpan(0, b * T), b, T).Logits;      // (b·T, V)
                var all = logits.AsSpan("DistillCache");
                Kernels.TopK.Select(all, b * T, V, k, topIds.AsSpan(0, b * T * k), topValues.AsSpan(0, b * T * k));
                for (int r = 0; r < b * T; r++) tails[r] = TailMass(all.Slice(r * V, V), topIds.AsSpan(r * k, k), topValues[r * k], Temperature, row);
            }
            for (int i = 0; i < b; i++)
                Store(FilledWindows + i, topIds.AsSpan(i * T * k, T * k), topValues.AsSpan(i * T * k, T * k), tails.AsSpan(i * T, T));
            file.Flush();
            for (int i = 0; i < b; i++) Slots[(int)todo[start + i]] = (int)(FilledWindows + i + 1);
            FilledWindows += b;
            progress?.Invoke(start + b, todo.Count);
        }
        file.Flush();
    }

    /// <summary>
    /// softmax(logits/T) summed over the columns not in <paramref name="top"/>, summed directly
    /// (1 − top mass would cancel for a confident teacher). <paramref name="max"/> is the row maximum.
    /// </summary>
    static float TailMass(ReadOnlySpan<float> logits, ReadOnlySpan<int> top, float max, float temperature, float[] scratch)
    {
        var e = scratch.AsSpan(0, logits.Length);
        System.Numerics.Tensors.TensorPrimitives.Subtract(logits, max, e);
        System.Numerics.Tensors.TensorPrimitives.Multiply(e, 1f / temperature, e);
        System.Numerics.Tensors.TensorPrimitives.Exp(e, e);
        double all = System.Numerics.Tensors.TensorPrimitives.Sum(e);
        foreach (int c in top) e[c] = 0f;
        return (float)Math.Min(System.Numerics.Tensors.TensorPrimitives.Sum(e) / all, 1.0 - 1e-6);
    }

    void Store(long slot, ReadOnlySpan<int> ids, ReadOnlySpan<float> values, ReadOnlySpan<float> tails)
    {
        byte* rec = basePtr + dataOffset + slot * WindowBytes;
        var v = new Span<Half>(rec, ids.Length);
        for (int i = 0; i < v.Length; i++) v[i] = (Half)values[i];
        if (idBytes == 2)
        {
            var d = new Span<ushort>(rec + 2L * ids.Length, ids.Length);
            for (int i = 0; i < d.Length; i++) d[i] = (ushort)ids[i];
        }
        else ids.CopyTo(new Span<int>(rec + 2L * ids.Length, ids.Length));
        tails.CopyTo(new Span<float>(rec + (2L + idBytes) * ids.Length, tails.Length));
    }

    /// <summary>Whether the teacher's logits for window <paramref name="window"/> are stored.</summary>
    public bool Contains(long window) => (ulong)window < (ulong)WindowCount && Slots[(int)window] != 0;

    /// <summary>
    /// Writes the stored top-k ids and logits of each window in <paramref name="windows"/> into
    /// rows (B·T, k) of <paramref name="ids"/> and <paramref name="values"/>, and the tail masses
    /// into (B·T) <paramref name="tails"/>, in the windows' order. Throws when a window was never
    /// filled (the student read past what the cache was built for).
    /// </summary>
    public void Read(ReadOnlySpan<long> windows, Span<int> ids, Span<float> values, Span<float> tails)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        int per = SequenceLength * TopK, T = SequenceLength;
        if (ids.Length != windows.Length * per || values.Length != windows.Length * per || tails.Length != windows.Length * T)
            throw new ArgumentException($"DistillCache.Read: {windows.Length} windows need {windows.Length * per} ids and logits and {windows.Length * T} tail masses, got {ids.Length}/{values.Length}/{tails.Length}.");
        for (int b = 0; b < windows.Length; b++)
        {
            long w = windows[b];
            if (!Contains(w))
                throw new InvalidOperationException($"{Path}: window {w} has no teacher logits; build the cache for the run's planned windows (or all of them).");
            byte* rec = basePtr + dataOffset + (Slots[(int)w] - 1L) * WindowBytes;
            var v = new ReadOnlySpan<Half>(rec, per);
            var dv = values.Slice(b * per, per);
            for (int i = 0; i < per; i++) dv[i] = (float)v[i];
            var di = ids.Slice(b * per, per);
            if (idBytes == 2)
            {
                var s = new ReadOnlySpan<ushort>(rec + 2L * per, per);
                for (int i = 0; i < per; i++) di[i] = s[i];
            }
            else new ReadOnlySpan<int>(rec + 2L * per, per).CopyTo(di);
            // The ids index the student's logits: one outside the vocabulary means a damaged record.
            foreach (int id in di)
                if ((uint)id >= (uint)VocabSize)
                    throw new InvalidDataException($"{Path}: window {w} holds token id {id}, outside the vocabulary of {VocabSize}; the cache is damaged (delete it to rebuild).");
            new ReadOnlySpan<float>(rec + (2L + idBytes) * per, T).CopyTo(tails.Slice(b * T, T));
        }
    }

    /// <summary>SHA-256 of everything the stored logits depend on.</summary>
    static byte[] Key(Transformer teacher, IReadOnlyList<TokenShard> train, int seq, int k, float temperature)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(System.Text.Encoding.UTF8.GetBytes(teacher.Config.ToHuggingFaceJson()));
        foreach (var p in teacher.Parameters.All) h.AppendData(MemoryMarshal.AsBytes(p.AsSpan("DistillCache")));
        var chunk = new int[1 << 16];
        foreach (var s in train)
            for (long at = 0; at < s.TokenCount; at += chunk.Length)
            {
                var part = chunk.AsSpan(0, (int)Math.Min(chunk.Length, s.TokenCount - at));
                s.Read(at, part);
                h.AppendData(MemoryMarshal.AsBytes(part));
            }
        Span<byte> tail = stackalloc byte[12];
        BinaryPrimitives.WriteInt32LittleEndian(tail, seq);
        BinaryPrimitives.WriteInt32LittleEndian(tail[4..], k);
        BinaryPrimitives.WriteSingleLittleEndian(tail[8..], temperature);
        h.AppendData(tail);
        return h.GetHashAndReset();
    }

    /// <summary>Unmaps the file (it stays on disk for later runs).</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Unmap();
    }
}
