namespace Tessera.Data;

/// <summary>Where a <see cref="BatchReader"/> is: enough to resume exactly.</summary>
public readonly record struct DataCursor(long Epoch, long Position);

/// <summary>
/// Yields (inputs, targets) batches of shape (B, T) from packed token shards. The stream is cut
/// into non-overlapping windows of T + 1 tokens (inputs = first T, targets = last T); each
/// epoch visits every window once in an order drawn from (seed, epoch). The reader's whole
/// state is the <see cref="DataCursor"/>, so a run that saves it resumes bit-exactly.
/// With document alignment a window starts at every document instead (its BOS first), running on
/// into the documents after it; a document with fewer than T + 1 tokens left in its shard has none.
/// </summary>
public sealed class BatchReader
{
    readonly TokenShard[] shards;
    readonly long[] windowStarts;   // cumulative window counts per shard
    readonly ulong seed;
    readonly bool shuffle;
    long[] order = [];
    long orderEpoch = -1;
    readonly int[] window;
    readonly byte[]? mask;
    readonly bool alignDocuments;

    /// <summary>Batch size B.</summary>
    public int BatchSize { get; }
    /// <summary>Sequence length T.</summary>
    public int SequenceLength { get; }
    /// <summary>Windows of T + 1 tokens across all shards (one epoch).</summary>
    public long WindowCount { get; }
    /// <summary>
    /// True when the reader applies the shards' loss masks: every target whose token is context only
    /// (<see cref="TokenShard.ReadLossMask"/> = 0) is written as <see cref="IgnoredTarget"/>, which
    /// the cross-entropy skips, so the loss is the mean over the trained tokens alone.
    /// </summary>
    public bool AppliesLossMask => mask is not null;
    /// <summary>The target id of a position that carries no loss (the cross-entropy's ignore index).</summary>
    public const int IgnoredTarget = -100;
    /// <summary>The position to resume from.</summary>
    public DataCursor Cursor { get; private set; }

    /// <summary>
    /// Reads windows of <paramref name="sequenceLength"/> + 1 tokens from <paramref name="shards"/>,
    /// <paramref name="batchSize"/> at a time, in a seeded shuffled (or sequential) order starting at
    /// <paramref name="cursor"/>. With <paramref name="lossMask"/>, shards that carry a loss mask mark
    /// their context-only targets ignored (<see cref="AppliesLossMask"/>); without one, or when no shard
    /// has a mask, targets are the plain next tokens.
    /// </summary>
    /// <remarks>
    /// With <paramref name="alignDocuments"/> the windows start at document starts (see the class
    /// summary): for prompt/completion data whose prompt must be seen whole by its answer.
    /// </remarks>
    public BatchReader(IReadOnlyList<TokenShard> shards, int batchSize, int sequenceLength, ulong seed, bool shuffle = true, DataCursor cursor = default,
        bool lossMask = false, bool alignDocuments = false)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batch size must be at least 1.");
        if (sequenceLength < 1) throw new ArgumentOutOfRangeException(nameof(sequenceLength), sequenceLength, "Sequence length must be at least 1.");
        if (shards.Count == 0) throw new ArgumentException("A batch reader needs at least one shard.", nameof(shards));
        this.shards = [.. shards];
        windowStarts = new long[shards.Count + 1];
        long tokens = 0;
        for (int i = 0; i < shards.Count; i++)
        {
            windowStarts[i + 1] = windowStarts[i] + (alignDocuments ? AlignedWindows(shards[i], sequenceLength) : Math.Max(0, (shards[i].TokenCount - 1) / sequenceLength));
            tokens += shards[i].TokenCount;
        }
        WindowCount = windowStarts[^1];
        if (WindowCount < 1)
            throw new ArgumentException(alignDocuments
                ? $"Document-aligned windows of {sequenceLength} + 1 tokens: no document of the data has that many tokens from its start to the end of its shard ({tokens} tokens in total)."
                : $"Context length {sequenceLength} needs at least {sequenceLength + 1} tokens in one shard, but the data has {tokens} tokens in total.");
        this.alignDocuments = alignDocuments;
        if (cursor.Epoch < 0 || cursor.Position < 0 || cursor.Position > WindowCount)
            throw new ArgumentOutOfRangeException(nameof(cursor), cursor, $"Data cursor is outside this data ({WindowCount} windows per epoch).");
        BatchSize = batchSize;
        SequenceLength = sequenceLength;
        this.seed = seed;
        this.shuffle = shuffle;
        Cursor = cursor;
        window = new int[sequenceLength + 1];
        if (lossMask && shards.Any(s => s.HasLossMask)) mask = new byte[sequenceLength + 1];
    }

    /// <summary>Fills inputs and targets (each B·T ids, row-major (B, T); masked targets are <see cref="IgnoredTarget"/>) and advances the cursor; wraps to the next epoch.</summary>
    public void Next(Span<int> inputs, Span<int> targets) => Next(inputs, targets, default);

    /// <summary>
    /// As <see cref="Next(Span{int}, Span{int})"/>, and also writes the index (in [0, WindowCount),
    /// file order) of the window behind each of the B rows into <paramref name="windows"/> (empty = skip),
    /// so per-window side data such as cached teacher logits can be looked up.
    /// </summary>
    public void Next(Span<int> inputs, Span<int> targets, Span<long> windows)
    {
        int T = SequenceLength;
        if (inputs.Length < BatchSize * T || targets.Length < BatchSize * T)
            throw new ArgumentException($"BatchReader.Next: inputs/targets need (B={BatchSize}, T={T}) = {BatchSize * T} ids, got {inputs.Length}/{targets.Length}.");
        if (!windows.IsEmpty && windows.Length < BatchSize)
            throw new ArgumentException($"BatchReader.Next: windows needs B={BatchSize} entries, got {windows.Length}.");
        for (int b = 0; b < BatchSize; b++)
        {
            var c = Cursor;
            if (c.Position >= WindowCount) c = new DataCursor(c.Epoch + 1, 0);
            long w = WindowAt(c.Epoch, c.Position);
            if (!windows.IsEmpty) windows[b] = w;
            int s = ShardOf(w);
            long start = alignDocuments ? shards[s].DocumentStart((int)(w - windowStarts[s])) : (w - windowStarts[s]) * T;
            shards[s].Read(start, window);
            window.AsSpan(0, T).CopyTo(inputs.Slice(b * T, T));
            window.AsSpan(1, T).CopyTo(targets.Slice(b * T, T));
            if (mask is not null)
            {
                shards[s].ReadLossMask(start, mask);
                var row = targets.Slice(b * T, T);
                for (int i = 0; i < T; i++) if (mask[i + 1] == 0) row[i] = IgnoredTarget;
            }
            Cursor = new DataCursor(c.Epoch, c.Position + 1);
        }
    }

    /// <summary>Documents of <paramref name="shard"/> that have T + 1 tokens from their start to its end (a prefix of them).</summary>
    static long AlignedWindows(TokenShard shard, int T)
    {
        int lo = 0, hi = shard.DocumentCount;   // binary search for the first document that starts too late
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (shard.DocumentStart(mid) + T + 1 <= shard.TokenCount) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    long WindowAt(long epoch, long position)
    {
        if (!shuffle) return position;
        if (orderEpoch != epoch)
        {
            if (order.Length != WindowCount) order = new long[WindowCount];
            for (long i = 0; i < order.Length; i++) order[i] = i;
            // Fisher–Yates with a SplitMix64 stream seeded by (seed, epoch).
            ulong state = seed ^ ((ulong)epoch * 0xD1B54A32D192ED03UL);
            for (long i = order.Length - 1; i > 0; i--)
            {
                state += 0x9E3779B97F4A7C15UL;
                ulong z = state;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                z ^= z >> 31;
                long j = (long)(z % (ulong)(i + 1));
                (order[i], order[j]) = (order[j], order[i]);
            }
            orderEpoch = epoch;
        }
        return order[position];
    }

    int ShardOf(long window)
    {
        int s = Array.BinarySearch(windowStarts, window);
        if (s < 0) s = ~s - 1;
        while (s + 1 < windowStarts.Length - 1 && windowStarts[s + 1] <= window) s++;
        return s;
    }
}
