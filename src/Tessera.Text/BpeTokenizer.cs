using System.Buffers;
using System.Text;
using Tessera.Kernels;

namespace Tessera.Text;

/// <summary>
/// Byte-level BPE tokenizer (tiktoken semantics): regex pre-tokenization, then rank-based
/// merging of each pre-token's UTF-8 bytes. Serves tiktoken rank files, GGUF <c>gpt2</c>
/// vocabularies, Hugging Face byte-level BPE and Tessera's own trained vocabularies.
/// </summary>
public sealed class BpeTokenizer : ITokenizer
{
    private readonly ByteRankTable _table;
    private readonly int[] _byteIds = new int[256];
    private readonly byte[] _arena;      // bytes of every token, by id
    private readonly int[] _offsets;     // token id → arena range [_offsets[id], _offsets[id+1]); -1 = unassigned
    private readonly int[] _lengths;
    private readonly PreTokenizer _pre;
    private readonly bool _wholePieceLookup;
    private readonly bool _specialHasLineFeed;  // a special token could then straddle a safe cut

    /// <summary>Builds a tokenizer from token byte strings and their merge ranks.</summary>
    /// <param name="name">Name for messages.</param>
    /// <param name="tokens">Token bytes by id; null entries are unassigned ids.</param>
    /// <param name="ranks">Merge rank per id (<see cref="ByteRankTable.NoMerge"/> = never merged into); null means rank = id (tiktoken).</param>
    /// <param name="pattern">Pre-tokenizer regex (Rust/PCRE dialect).</param>
    /// <param name="specials">Special tokens; their ids must not collide with <paramref name="tokens"/>.</param>
    /// <param name="wholePieceLookup">Emit a pre-token directly when it is a token (tiktoken, HF <c>ignore_merges</c>).</param>
    public BpeTokenizer(string name, IReadOnlyList<byte[]?> tokens, IReadOnlyList<int>? ranks, string pattern,
        SpecialTokenSet specials, bool wholePieceLookup = true)
    {
        Name = name;
        _pre = new PreTokenizer(pattern);
        _cacheLookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        _wholePieceLookup = wholePieceLookup;
        SpecialTokens = specials;
        foreach (var (text, _) in specials.ById) _specialHasLineFeed |= text.Contains('\n');
        int maxId = tokens.Count - 1;
        foreach (var (_, id) in specials.ById) maxId = Math.Max(maxId, id);
        VocabSize = maxId + 1;

        _table = new ByteRankTable(tokens.Count);
        Array.Fill(_byteIds, -1);
        long total = 0;
        for (int id = 0; id < tokens.Count; id++) total += tokens[id]?.Length ?? 0;
        foreach (var (text, _) in specials.ById) total += Encoding.UTF8.GetByteCount(text);
        _arena = new byte[total];
        _offsets = new int[VocabSize];
        _lengths = new int[VocabSize];
        Array.Fill(_offsets, -1);
        int used = 0;
        for (int id = 0; id < tokens.Count; id++)
        {
            var t = tokens[id];
            if (t is null) continue;
            if (t.Length == 0) throw new FormatException($"{name}: token {id} is empty");
            if (specials.IsSpecial(id)) throw new FormatException($"{name}: special token '{specials.TextOf(id)}' reuses ordinary token id {id}");
            int rank = ranks is null ? id : ranks[id];
            if (!_table.Add(t, rank, id)) throw new FormatException($"{name}: token {id} duplicates the bytes of an earlier token");
            if (t.Length == 1) _byteIds[t[0]] = id;
            t.CopyTo(_arena, used);
            _offsets[id] = used; _lengths[id] = t.Length;
            used += t.Length;
        }
        for (int b = 0; b < 256; b++)
            if (_byteIds[b] < 0) throw new FormatException($"{name}: byte 0x{b:X2} has no token, so some inputs could not be encoded");
        foreach (var (text, id) in specials.ById)
        {
            int n = Encoding.UTF8.GetBytes(text, _arena.AsSpan(used));
            _offsets[id] = used; _lengths[id] = n;
            used += n;
        }
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public int VocabSize { get; }

    /// <inheritdoc/>
    public SpecialTokenSet SpecialTokens { get; }

    /// <summary>The pre-tokenizer pattern (Rust/PCRE dialect).</summary>
    public string Pattern => _pre.Pattern;

    /// <summary>Whether a pre-token that is itself a token is emitted whole (tiktoken, GGUF <c>llama-bpe</c>).</summary>
    public bool WholePieceLookup => _wholePieceLookup;

    /// <summary>
    /// Looks up an ordinary token by its bytes: its id and merge rank (lower merges first;
    /// <see cref="ByteRankTable.NoMerge"/> for tokens no merge produces).
    /// </summary>
    public bool TryGetToken(ReadOnlySpan<byte> bytes, out int id, out int rank) => _table.TryGet(bytes, out rank, out id);

    /// <summary>Whether <paramref name="id"/> is an assigned token.</summary>
    public bool IsAssigned(int id) => (uint)id < (uint)VocabSize && _offsets[id] >= 0;

    /// <summary>The bytes of one token (special tokens: their UTF-8 text).</summary>
    public ReadOnlySpan<byte> TokenBytes(int id)
    {
        CheckId(id);
        return _arena.AsSpan(_offsets[id], _lengths[id]);
    }

    /// <inheritdoc/>
    public List<int> Encode(string text, bool allowSpecial = false)
    {
        var output = new List<int>(text.Length / 3 + 4);
        EncodeInto(text, allowSpecial, output);
        return output;
    }

    /// <summary>
    /// Encodes on the shared worker pool (<see cref="WorkerPool.Shared"/>, sized by <c>TESSERA_THREADS</c>)
    /// and returns exactly the ids of <see cref="Encode"/>. <paramref name="threads"/> sets how finely the
    /// text is cut (four pieces per thread; 0 = all cores) and 1 encodes on the calling thread alone.
    /// The text is cut only at points where pre-tokenization
    /// is known to break (<see cref="PreTokenizer.IsSafeCut"/>). Short texts, custom
    /// pre-tokenizer patterns, and special tokens containing a line feed (with
    /// <paramref name="allowSpecial"/>) run on the calling thread.
    /// </summary>
    public List<int> EncodeParallel(string text, int threads = 0, bool allowSpecial = false)
    {
        if (threads <= 0) threads = Environment.ProcessorCount;
        // Several pieces per thread so a slow piece does not leave a core idle at the end.
        int parts = Math.Min(threads * 4, text.Length / MinParallelChars);
        if (threads == 1 || parts < 2 || !_pre.IsSplittable || (allowSpecial && _specialHasLineFeed)) return Encode(text, allowSpecial);
        var cuts = _pre.SafeCuts(text, parts);
        var pieces = new List<int>[cuts.Count - 1];
        // One piece per claimed chunk on the shared pool: a slow piece does not hold up the others.
        WorkerPool.Shared.For(pieces.Length, pieces.Length, (first, end) =>
        {
            for (int k = first; k < end; k++)
            {
                var ids = new List<int>((cuts[k + 1] - cuts[k]) / 3 + 4);
                EncodeInto(text.AsSpan(cuts[k], cuts[k + 1] - cuts[k]), allowSpecial, ids);
                pieces[k] = ids;
            }
        });
        int total = 0;
        foreach (var p in pieces) total += p.Count;
        var output = new List<int>(total);
        foreach (var p in pieces) output.AddRange(p);
        return output;
    }

    /// <summary>Texts shorter than this many chars per piece are not worth a thread hand-off.</summary>
    public const int MinParallelChars = 16 * 1024;

    private void EncodeInto(ReadOnlySpan<char> text, bool allowSpecial, List<int> output)
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(256);
        try
        {
            if (!allowSpecial || SpecialTokens.Count == 0) { EncodeOrdinary(text, output, ref scratch); return; }
            int pos = 0;
            while (pos < text.Length)
            {
                int at = SpecialTokens.FindNext(text, pos, out int len, out int id);
                int end = at < 0 ? text.Length : at;
                EncodeOrdinary(text.Slice(pos, end - pos), output, ref scratch);
                if (at < 0) break;
                output.Add(id);
                pos = at + len;
            }
        }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    /// <inheritdoc/>
    public List<int> EncodeBytes(ReadOnlySpan<byte> bytes)
    {
        var output = new List<int>(bytes.Length / 3 + 4);
        Utf8Segments.Walk(bytes, s => output.AddRange(Encode(s)), b => output.Add(_byteIds[b]));
        return output;
    }

    private void EncodeOrdinary(ReadOnlySpan<char> text, List<int> output, ref byte[] scratch)
    {
        foreach (var m in _pre.Split(text))
        {
            var piece = text.Slice(m.Index, m.Length);
            // Long pre-tokens (CJK, Thai and other scripts without spaces; long identifiers) cost a
            // quadratic merge each, and non-ASCII ones start from several bytes per character: their
            // ids are cached by text. Short ASCII ones merge faster than a lookup.
            bool cacheable = piece.Length <= CacheMaxChars && (piece.Length >= CacheMinChars || (piece.Length >= 2 && !System.Text.Ascii.IsValid(piece)));
            if (cacheable && _cacheLookup.TryGetValue(piece, out var cached)) { output.AddRange(cached); continue; }
            int max = Encoding.UTF8.GetMaxByteCount(piece.Length);
            if (max > scratch.Length)
            {
                ArrayPool<byte>.Shared.Return(scratch);
                scratch = ArrayPool<byte>.Shared.Rent(max);
            }
            int n = Encoding.UTF8.GetBytes(piece, scratch);
            int start = output.Count;
            EncodePiece(scratch.AsSpan(0, n), output);
            // ConcurrentDictionary.Count takes every lock; a separate counter bounds the cache instead.
            if (cacheable && Volatile.Read(ref _cacheCount) < CacheCapacity && _cache.TryAdd(piece.ToString(), output.GetRange(start, output.Count - start).ToArray()))
                Interlocked.Increment(ref _cacheCount);
        }
    }

    private const int CacheMinChars = 6, CacheMaxChars = 128, CacheCapacity = 1 << 16;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheLookup;
    private int _cacheCount;

    /// <summary>Merges one pre-token's bytes and appends the ids.</summary>
    public void EncodePiece(ReadOnlySpan<byte> piece, List<int> output)
    {
        if (_wholePieceLookup && piece.Length > 1 && _table.TryGet(piece, out _, out int id)) { output.Add(id); return; }
        BytePairMerge.Encode(piece, _table, _byteIds, output);
    }

    /// <inheritdoc/>
    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        long n = 0;
        foreach (int id in ids) { CheckId(id); n += _lengths[id]; }
        var result = new byte[n];
        int at = 0;
        foreach (int id in ids)
        {
            _arena.AsSpan(_offsets[id], _lengths[id]).CopyTo(result.AsSpan(at));
            at += _lengths[id];
        }
        return result;
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    private void CheckId(int id)
    {
        if ((uint)id >= (uint)VocabSize)
            throw new ArgumentOutOfRangeException(null, $"{Name}: token id {id} is out of range [0, {VocabSize})");
        if (_offsets[id] < 0)
            throw new ArgumentOutOfRangeException(null, $"{Name}: token id {id} is not assigned in this vocabulary");
    }
}
