using System.Collections.Concurrent;
using System.Text;

namespace Tessera.Text;

/// <summary>
/// HF BPE: merges are pairs of tokens with a priority (their line in the merge list); the
/// lowest-priority adjacent pair merges first, leftmost on ties, until none applies. Symbols
/// start as characters (with <c>continuing_subword_prefix</c>/<c>end_of_word_suffix</c>,
/// unknown characters as <c>&lt;0xNN&gt;</c> byte tokens under <c>byte_fallback</c>, else the
/// unknown token, fused when <c>fuse_unk</c>) or, after a ByteLevel pre-tokenizer, as the
/// GPT-2-mapped bytes. <c>ignore_merges</c>: a pre-token that is a token is emitted whole.
/// </summary>
internal sealed class HfBpeModel : HfModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabSpan;
    private readonly string?[] _idToToken;
    private readonly Dictionary<long, (int Rank, int Id)> _merges;
    private readonly int[] _byteLevelIds = new int[256];
    private readonly int[]? _byteFallback;
    private readonly int? _unk;
    private readonly bool _fuseUnk, _ignoreMerges;
    private readonly string? _prefix, _suffix;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private const int CacheCapacity = 50_000, CacheMaxChars = 256, CutMinChars = 64; // HF caches words up to 256 characters too
    private int _cacheCount;

    public HfBpeModel(Dictionary<string, int> vocab, List<(string Left, string Right)> merges, string? unkToken, bool byteFallback, bool fuseUnk,
        bool ignoreMerges, string? prefix, string? suffix, string where)
    {
        _vocab = vocab;
        _vocabSpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        int max = -1;
        foreach (var (_, id) in vocab) max = Math.Max(max, id);
        _idToToken = new string?[max + 1];
        foreach (var (t, id) in vocab)
        {
            if (_idToToken[id] is not null) throw new FormatException($"{where}: model.vocab gives id {id} to both '{_idToToken[id]}' and '{t}'");
            _idToToken[id] = t;
        }
        _merges = new Dictionary<long, (int, int)>(merges.Count, PairKeyComparer.Instance);
        for (int k = 0; k < merges.Count; k++)
        {
            var (l, r) = merges[k];
            if (!vocab.TryGetValue(l, out int a)) throw new FormatException($"{where}: model.merges[{k}] '{l} {r}': '{l}' is not in the vocabulary");
            if (!vocab.TryGetValue(r, out int b)) throw new FormatException($"{where}: model.merges[{k}] '{l} {r}': '{r}' is not in the vocabulary");
            string m = (prefix is { Length: > 0 } && r.StartsWith(prefix, StringComparison.Ordinal)) ? l + r[prefix.Length..] : l + r;
            if (!vocab.TryGetValue(m, out int c)) throw new FormatException($"{where}: model.merges[{k}] '{l} {r}': the merged token '{m}' is not in the vocabulary");
            _merges.TryAdd(((long)a << 32) | (uint)b, (k, c));
        }
        if (unkToken is not null)
        {
            if (!vocab.TryGetValue(unkToken, out int u)) throw new FormatException($"{where}: model.unk_token '{unkToken}' is not in the vocabulary");
            _unk = u;
        }
        if (byteFallback)
            _byteFallback = FindByteTokens(t => vocab.TryGetValue(t, out int id) ? id : null)
                ?? throw new FormatException($"{where}: model.byte_fallback is set but the vocabulary lacks some of the 256 <0xNN> byte tokens");
        for (int b = 0; b < 256; b++) _byteLevelIds[b] = vocab.TryGetValue(Gpt2ByteMap.ToText([(byte)b]), out int id) ? id : -1;
        _fuseUnk = fuseUnk;
        _ignoreMerges = ignoreMerges;
        _prefix = string.IsNullOrEmpty(prefix) ? null : prefix;
        _suffix = string.IsNullOrEmpty(suffix) ? null : suffix;
        // SentencePiece-style vocabularies put the word marker ▁ only at the start of pieces. When
        // no merge result has ▁ after another character, no merge can join across such a point, so
        // a long piece may be cut there and each word merged (and cached) alone: same ids, far
        // less work (one line of text is one pre-token for llama2 and gemma3).
        // Characters that some merge result has right before a ▁ (gemma3: only '>', from ">▁</")
        // are not cut after.
        _cutBeforeMarker = _prefix is null && _suffix is null;
        foreach (var (_, (_, id)) in _merges)
        {
            string t = _idToToken[id]!;
            for (int i = 1; i < t.Length; i++) if (t[i] == Marker && t[i - 1] != Marker) _noCutAfter.Add(t[i - 1]);
        }
    }

    private const char Marker = '\u2581';
    private readonly bool _cutBeforeMarker;
    private readonly HashSet<char> _noCutAfter = [];

    // A cut before the ▁ at i is exact when the character before it is a vocabulary symbol of its own
    // (not a byte-fallback or unknown piece) that no merge result has in front of a ▁.
    private bool CanCutBefore(string piece, int i)
    {
        char c = piece[i - 1];
        return piece[i] == Marker && c != Marker && !char.IsSurrogate(c) && !_noCutAfter.Contains(c) && _vocabSpan.ContainsKey(piece.AsSpan(i - 1, 1));
    }

    public override int Size => _idToToken.Length;
    public override int? UnkId => _unk;
    public override int[]? ByteFallbackIds => _byteFallback;
    public int[] ByteLevelIds => _byteLevelIds;
    public override string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;
    public override bool TryTokenToId(string token, out int id) => _vocab.TryGetValue(token, out id);

    public override void Encode(string piece, bool byteLevel, List<int> output)
    {
        if (piece.Length == 0) return;
        if (!byteLevel && _cutBeforeMarker && piece.Length > CutMinChars && !(_ignoreMerges && _vocab.ContainsKey(piece)))
        {
            int start = 0;
            for (int i = 1; i < piece.Length; i++)
            {
                if (!CanCutBefore(piece, i)) continue;
                EncodeCached(piece[start..i], false, output);
                start = i;
            }
            EncodeCached(start == 0 ? piece : piece[start..], false, output);
            return;
        }
        EncodeCached(piece, byteLevel, output);
    }

    private void EncodeCached(string piece, bool byteLevel, List<int> output)
    {
        if (piece.Length <= CacheMaxChars && _cache.TryGetValue(piece, out var cached)) { output.AddRange(cached); return; }
        int start = output.Count;
        if (byteLevel) EncodeBytes(piece, output);
        else EncodeChars(piece, output);
        // ConcurrentDictionary.Count takes every lock; a separate counter bounds the cache instead.
        if (piece.Length <= CacheMaxChars && Volatile.Read(ref _cacheCount) < CacheCapacity && _cache.TryAdd(piece, output.GetRange(start, output.Count - start).ToArray()))
            Interlocked.Increment(ref _cacheCount);
    }

    private void EncodeBytes(string piece, List<int> output)
    {
        Span<byte> stack = stackalloc byte[256];
        int max = Encoding.UTF8.GetMaxByteCount(piece.Length);
        byte[]? rented = max > stack.Length ? new byte[max] : null;
        Span<byte> bytes = rented ?? stack;
        int n = Encoding.UTF8.GetBytes(piece, bytes);
        bytes = bytes[..n];
        if (_ignoreMerges)
        {
            Span<char> mapped = n <= 256 ? stackalloc char[n] : new char[n];
            for (int i = 0; i < n; i++) mapped[i] = Gpt2ByteMap.CharOf(bytes[i]);
            if (_vocabSpan.TryGetValue(mapped, out int whole)) { output.Add(whole); return; }
        }
        var syms = new List<int>(n);
        foreach (byte b in bytes)
        {
            int id = _byteLevelIds[b];
            if (id >= 0) syms.Add(id);
            else AddUnk(syms);
        }
        Merge(syms, output);
    }

    private void EncodeChars(string piece, List<int> output)
    {
        if (_ignoreMerges && _vocab.TryGetValue(piece, out int whole)) { output.Add(whole); return; }
        var syms = new List<int>(piece.Length);
        Span<char> buf = stackalloc char[64];
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < piece.Length;)
        {
            int n = char.IsHighSurrogate(piece[i]) && i + 1 < piece.Length && char.IsLowSurrogate(piece[i + 1]) ? 2 : 1;
            var ch = piece.AsSpan(i, n);
            int id;
            bool found;
            if ((_prefix is not null && i > 0) || (_suffix is not null && i + n == piece.Length))
            {
                string s = (i > 0 && _prefix is not null ? _prefix : "") + ch.ToString() + (i + n == piece.Length && _suffix is not null ? _suffix : "");
                found = _vocab.TryGetValue(s, out id);
            }
            else found = _vocabSpan.TryGetValue(ch, out id);
            if (found) syms.Add(id);
            else if (_byteFallback is not null)
            {
                int k = Encoding.UTF8.GetBytes(ch, utf8);
                for (int j = 0; j < k; j++) syms.Add(_byteFallback[utf8[j]]);
            }
            else AddUnk(syms);
            i += n;
        }
        Merge(syms, output);
    }

    private void AddUnk(List<int> syms)
    {
        if (_unk is not int u) return; // HF drops characters it cannot represent when there is no unknown token
        if (_fuseUnk && syms.Count > 0 && syms[^1] == u) return;
        syms.Add(u);
    }

    /// <summary>Applies merges to <paramref name="syms"/> and appends the result.</summary>
    private void Merge(List<int> syms, List<int> output)
    {
        int n = syms.Count;
        if (n <= 1) { output.AddRange(syms); return; }
        if (n <= 128) { MergeScan(syms, output); return; }
        MergeHeap(syms, output);
    }

    // Quadratic scan over a compact array: fastest for the short pieces that dominate text.
    private void MergeScan(List<int> syms, List<int> output)
    {
        int n = syms.Count;
        Span<int> ids = stackalloc int[n];
        Span<int> ranks = stackalloc int[n];
        Span<int> merged = stackalloc int[n];
        for (int i = 0; i < n; i++) ids[i] = syms[i];
        for (int i = 0; i < n - 1; i++) ranks[i] = PairRank(ids[i], ids[i + 1], out merged[i]);
        ranks[n - 1] = int.MaxValue;
        while (true)
        {
            int best = int.MaxValue, at = -1;
            for (int i = 0; i < n - 1; i++) if (ranks[i] < best) { best = ranks[i]; at = i; }
            if (at < 0) break;
            ids[at] = merged[at];
            for (int i = at + 1; i < n - 1; i++) { ids[i] = ids[i + 1]; ranks[i] = ranks[i + 1]; merged[i] = merged[i + 1]; }
            n--;
            ranks[n - 1] = int.MaxValue;
            if (at + 1 < n) ranks[at] = PairRank(ids[at], ids[at + 1], out merged[at]); else ranks[at] = int.MaxValue;
            if (at > 0) ranks[at - 1] = PairRank(ids[at - 1], ids[at], out merged[at - 1]);
        }
        for (int i = 0; i < n; i++) output.Add(ids[i]);
    }

    // Linked list + priority queue ordered by (rank, position): O(n log n) for long pieces.
    private void MergeHeap(List<int> syms, List<int> output)
    {
        int n = syms.Count;
        var ids = syms.ToArray();
        var prev = new int[n];
        var next = new int[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
        var queue = new PriorityQueue<(int Pos, int Left, int Right), (int Rank, int Pos)>();
        for (int i = 0; i < n - 1; i++)
        {
            int r = PairRank(ids[i], ids[i + 1], out _);
            if (r != int.MaxValue) queue.Enqueue((i, ids[i], ids[i + 1]), (r, i));
        }
        while (queue.TryDequeue(out var e, out var pr))
        {
            int i = e.Pos, j = next[i];
            if (ids[i] != e.Left || j < 0 || ids[j] != e.Right) continue; // stale
            PairRank(ids[i], ids[j], out int m);
            ids[i] = m;
            ids[j] = -1;
            next[i] = next[j];
            if (next[j] >= 0) prev[next[j]] = i;
            if (prev[i] >= 0)
            {
                int r = PairRank(ids[prev[i]], ids[i], out _);
                if (r != int.MaxValue) queue.Enqueue((prev[i], ids[prev[i]], ids[i]), (r, prev[i]));
            }
            if (next[i] >= 0)
            {
                int r = PairRank(ids[i], ids[next[i]], out _);
                if (r != int.MaxValue) queue.Enqueue((i, ids[i], ids[next[i]]), (r, i));
            }
        }
        for (int i = 0; i >= 0; i = next[i]) output.Add(ids[i]);
    }

    private int PairRank(int a, int b, out int merged)
    {
        if (_merges.TryGetValue(((long)a << 32) | (uint)b, out var m)) { merged = m.Id; return m.Rank; }
        merged = -1;
        return int.MaxValue;
    }
}
