namespace Tessera.Text;

/// <summary>
/// Rank-based byte-pair merging of one pre-token (tiktoken semantics): repeatedly merge the
/// adjacent pair whose concatenated bytes have the lowest rank, leftmost first on ties,
/// until no adjacent pair is a mergeable token. Short pieces use tiktoken's array scan
/// (quadratic, but tiny and cache-friendly); long pieces use a heap over a linked list so a
/// single multi-megabyte "word" stays O(n log n).
/// </summary>
public static class BytePairMerge
{
    /// <summary>Pieces up to this many bytes use the array scan; longer ones the heap.</summary>
    public const int ScanLimit = 96;

    /// <summary>Appends the token ids for <paramref name="piece"/> to <paramref name="output"/>; <paramref name="byteIds"/> maps each byte to its token id.</summary>
    public static void Encode(ReadOnlySpan<byte> piece, ByteRankTable table, int[] byteIds, List<int> output)
    {
        if (piece.Length == 0) return;
        if (piece.Length == 1) { output.Add(byteIds[piece[0]]); return; }
        if (piece.Length <= ScanLimit) EncodeScan(piece, table, byteIds, output);
        else EncodeHeap(piece, table, byteIds, output);
    }

    /// <summary>tiktoken's array algorithm; also the slow twin the heap version is tested against.</summary>
    public static void EncodeScan(ReadOnlySpan<byte> piece, ByteRankTable table, int[] byteIds, List<int> output)
    {
        int n = piece.Length;
        if (n == 0) return;
        if (n == 1) { output.Add(byteIds[piece[0]]); return; }
        // parts[i] = start offset of part i; ranks[i] = rank of merging part i with part i+1.
        Span<int> starts = n + 1 <= 256 ? stackalloc int[n + 1] : new int[n + 1];
        Span<int> ranks = n + 1 <= 256 ? stackalloc int[n + 1] : new int[n + 1];
        int len = n + 1;
        for (int i = 0; i <= n; i++) starts[i] = i;
        for (int i = 0; i < n - 1; i++) ranks[i] = table.Rank(piece.Slice(i, 2));
        ranks[n - 1] = ByteRankTable.NoMerge;
        ranks[n] = ByteRankTable.NoMerge;

        while (true)
        {
            int minRank = ByteRankTable.NoMerge, at = -1;
            for (int i = 0; i < len - 1; i++)
                if (ranks[i] < minRank) { minRank = ranks[i]; at = i; }
            if (at < 0) break;
            // Remove boundary at+1, then refresh the two ranks that involve the merged part.
            for (int i = at + 1; i < len - 1; i++) { starts[i] = starts[i + 1]; ranks[i] = ranks[i + 1]; }
            len--;
            ranks[at] = PairRank(piece, starts, len, at, table);
            if (at > 0) ranks[at - 1] = PairRank(piece, starts, len, at - 1, table);
        }

        for (int i = 0; i < len - 1; i++)
        {
            var bytes = piece[starts[i]..starts[i + 1]];
            output.Add(TokenId(bytes, table, byteIds));
        }
    }

    private static int PairRank(ReadOnlySpan<byte> piece, Span<int> starts, int len, int i, ByteRankTable table) =>
        i + 2 < len ? table.Rank(piece[starts[i]..starts[i + 2]]) : ByteRankTable.NoMerge;

    private static int TokenId(ReadOnlySpan<byte> bytes, ByteRankTable table, int[] byteIds)
    {
        if (bytes.Length == 1) return byteIds[bytes[0]];
        if (!table.TryGet(bytes, out _, out int id))
            throw new InvalidOperationException("BPE produced a byte string that is not in the vocabulary (corrupt rank table).");
        return id;
    }

    /// <summary>Heap-driven merge with the same result as <see cref="EncodeScan"/>, in O(n log n).</summary>
    public static void EncodeHeap(ReadOnlySpan<byte> piece, ByteRankTable table, int[] byteIds, List<int> output)
    {
        int n = piece.Length;
        if (n == 0) return;
        // Node i is the part starting at byte i; next/prev link live parts; end(i) = next[i].
        // Heap entries are keys (rank << 32 | start), so the start is recovered from the key.
        var next = new int[n];
        var prev = new int[n];
        var rank = new int[n];
        var heap = new KeyHeap(n);
        for (int i = 0; i < n; i++) { next[i] = i + 1; prev[i] = i - 1; }
        for (int i = 0; i + 1 < n; i++)
        {
            rank[i] = table.Rank(piece.Slice(i, 2));
            if (rank[i] != ByteRankTable.NoMerge) heap.AddUnordered(Key(rank[i], i));
        }
        rank[n - 1] = ByteRankTable.NoMerge;
        heap.Heapify();

        while (heap.TryPop(out long key))
        {
            int i = (int)(uint)key;
            // Stale entries: the part was absorbed (next = -1) or its pair changed since the push.
            if (next[i] < 0 || Key(rank[i], i) != key) continue;
            int j = next[i];
            int k = next[j];
            next[i] = k;
            next[j] = -1;
            if (k < n) prev[k] = i;
            rank[i] = k < n ? table.Rank(piece[i..next[k]]) : ByteRankTable.NoMerge;
            if (rank[i] != ByteRankTable.NoMerge) heap.Push(Key(rank[i], i));
            int p = prev[i];
            if (p >= 0)
            {
                rank[p] = table.Rank(piece[p..next[i]]);
                if (rank[p] != ByteRankTable.NoMerge) heap.Push(Key(rank[p], p));
            }
        }

        for (int i = 0; i < n; i = next[i]) output.Add(TokenId(piece[i..next[i]], table, byteIds));
    }

    /// <summary>Binary min-heap of 64-bit keys: half the memory traffic of PriorityQueue&lt;int, long&gt;.</summary>
    private struct KeyHeap(int capacity)
    {
        private long[] _a = new long[Math.Max(capacity, 4)];
        private int _n;

        public void AddUnordered(long key)
        {
            if (_n == _a.Length) Array.Resize(ref _a, _a.Length * 2);
            _a[_n++] = key;
        }

        public void Heapify()
        {
            for (int i = _n / 2 - 1; i >= 0; i--) SiftDown(i);
        }

        public void Push(long key)
        {
            if (_n == _a.Length) Array.Resize(ref _a, _a.Length * 2);
            int i = _n++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (_a[parent] <= key) break;
                _a[i] = _a[parent];
                i = parent;
            }
            _a[i] = key;
        }

        public bool TryPop(out long key)
        {
            if (_n == 0) { key = 0; return false; }
            key = _a[0];
            _a[0] = _a[--_n];
            if (_n > 0) SiftDown(0);
            return true;
        }

        private void SiftDown(int i)
        {
            long x = _a[i];
            int n = _n;
            while (true)
            {
                int c = 2 * i + 1;
                if (c >= n) break;
                if (c + 1 < n && _a[c + 1] < _a[c]) c++;
                if (_a[c] >= x) break;
                _a[i] = _a[c];
                i = c;
            }
            _a[i] = x;
        }
    }

    // Lowest rank first, then leftmost start: exactly tiktoken's selection order.
    private static long Key(int rank, int start) => ((long)rank << 32) | (uint)start;
}
