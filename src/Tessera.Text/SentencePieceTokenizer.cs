using System.Buffers;
using System.Text;

namespace Tessera.Text;

/// <summary>
/// SentencePiece BPE as llama.cpp runs it for <c>tokenizer.ggml.model = llama</c>: spaces
/// become U+2581 (▁), a dummy ▁ is prepended, the text is split into UTF-8 characters and
/// adjacent symbols are merged highest-score first (leftmost on ties) while the merged text
/// is a vocabulary entry. Characters left outside the vocabulary fall back to
/// <c>&lt;0xNN&gt;</c> byte tokens.
/// </summary>
public sealed class SentencePieceTokenizer : ITokenizer
{
    /// <summary>GGUF token types.</summary>
    public const int TypeNormal = 1, TypeUnknown = 2, TypeControl = 3, TypeUserDefined = 4, TypeByte = 6;

    private static readonly byte[] SpaceMarker = "\u2581"u8.ToArray();

    private readonly ByteRankTable _lookup;
    private readonly float[] _scores;
    private readonly int[] _types;
    private readonly byte[][] _decoded;   // bytes each token decodes to
    private readonly int[] _byteIds = new int[256];
    private readonly int _unkId;

    /// <summary>Builds the tokenizer from GGUF-style arrays (token text, score, type).</summary>
    public SentencePieceTokenizer(string name, string[] tokens, float[] scores, int[] types, bool addSpacePrefix, int unkId)
    {
        if (scores.Length != tokens.Length || types.Length != tokens.Length)
            throw new FormatException($"{name}: {tokens.Length} tokens but {scores.Length} scores and {types.Length} types");
        Name = name;
        AddSpacePrefix = addSpacePrefix;
        _scores = scores;
        _types = types;
        _unkId = unkId;
        _lookup = new ByteRankTable(tokens.Length);
        _decoded = new byte[tokens.Length][];
        Array.Fill(_byteIds, -1);
        var specials = new Dictionary<string, int>();
        for (int id = 0; id < tokens.Length; id++)
        {
            var text = tokens[id];
            _lookup.Add(Encoding.UTF8.GetBytes(text), ByteRankTable.NoMerge, id);
            if (types[id] == TypeByte)
            {
                if (text.Length != 6 || !text.StartsWith("<0x", StringComparison.Ordinal) || !byte.TryParse(text.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
                    throw new FormatException($"{name}: byte token {id} has text '{text}', expected <0xNN>");
                _byteIds[b] = id;
                _decoded[id] = [b];
            }
            else
            {
                _decoded[id] = Encoding.UTF8.GetBytes(text.Replace('\u2581', ' '));
                if (types[id] is TypeControl or TypeUserDefined) specials[text] = id;
            }
        }
        SpecialTokens = new SpecialTokenSet(specials);
        VocabSize = tokens.Length;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public int VocabSize { get; }

    /// <inheritdoc/>
    public SpecialTokenSet SpecialTokens { get; }

    /// <summary>Whether a ▁ is prepended to the text (and stripped again when decoding).</summary>
    public bool AddSpacePrefix { get; }

    /// <inheritdoc/>
    public List<int> Encode(string text, bool allowSpecial = false)
    {
        var output = new List<int>(text.Length / 3 + 4);
        if (!allowSpecial || SpecialTokens.Count == 0)
        {
            EncodeFragment(Encoding.UTF8.GetBytes(text), AddSpacePrefix, output);
            return output;
        }
        // Like llama.cpp: a text fragment gets the dummy prefix when it follows a special token or starts the text.
        int pos = 0;
        bool prevSpecial = true;
        while (pos < text.Length)
        {
            int at = SpecialTokens.FindNext(text, pos, out int len, out int id);
            int end = at < 0 ? text.Length : at;
            if (end > pos)
            {
                EncodeFragment(Encoding.UTF8.GetBytes(text[pos..end]), AddSpacePrefix && prevSpecial, output);
                prevSpecial = false;
            }
            if (at < 0) break;
            output.Add(id);
            prevSpecial = true;
            pos = at + len;
        }
        return output;
    }

    /// <inheritdoc/>
    public List<int> EncodeBytes(ReadOnlySpan<byte> bytes)
    {
        var output = new List<int>(bytes.Length / 3 + 4);
        EncodeFragment(bytes, AddSpacePrefix, output);
        return output;
    }

    private void EncodeFragment(ReadOnlySpan<byte> raw, bool prefix, List<int> output)
    {
        if (raw.IsEmpty) return;
        // Escape: ' ' → ▁, plus the dummy prefix.
        int spaces = raw.Count((byte)' ');
        int n = raw.Length + spaces * 2 + (prefix ? 3 : 0);
        byte[] text = ArrayPool<byte>.Shared.Rent(n);
        try
        {
            int w = 0;
            if (prefix) { SpaceMarker.CopyTo(text, 0); w = 3; }
            foreach (byte b in raw)
            {
                if (b == (byte)' ') { SpaceMarker.CopyTo(text, w); w += 3; }
                else text[w++] = b;
            }
            Merge(text.AsSpan(0, w), output);
        }
        finally { ArrayPool<byte>.Shared.Return(text); }
    }

    private struct Symbol { public int Start, Length, Prev, Next; }

    private readonly record struct Bigram(int Left, int Right, int Size);

    private readonly record struct Priority(float Score, int Left) : IComparable<Priority>
    {
        // Highest score first, then leftmost.
        public int CompareTo(Priority other) => Score != other.Score ? other.Score.CompareTo(Score) : Left.CompareTo(other.Left);
    }

    private void Merge(ReadOnlySpan<byte> text, List<int> output)
    {
        // Symbols: one per UTF-8 character; each ill-formed byte is a symbol of its own.
        var symbols = new List<Symbol>(text.Length);
        for (int i = 0; i < text.Length;)
        {
            int len = Rune.DecodeFromUtf8(text[i..], out _, out int used) == OperationStatus.Done ? used : 1;
            symbols.Add(new Symbol { Start = i, Length = len, Prev = symbols.Count - 1, Next = symbols.Count + 1 });
            i += len;
        }
        var sym = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(symbols);
        sym[^1].Next = -1;

        var queue = new PriorityQueue<Bigram, Priority>();
        for (int i = 1; i < sym.Length; i++) TryAddBigram(text, sym, i - 1, i, queue);
        while (queue.TryDequeue(out var bg, out _))
        {
            ref var left = ref sym[bg.Left];
            ref var right = ref sym[bg.Right];
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != bg.Size) continue;
            left.Length += right.Length;
            right.Length = 0;
            left.Next = right.Next;
            if (right.Next >= 0) sym[right.Next].Prev = bg.Left;
            TryAddBigram(text, sym, left.Prev, bg.Left, queue);
            TryAddBigram(text, sym, bg.Left, left.Next, queue);
        }

        for (int i = 0; i >= 0; i = sym[i].Next)
        {
            var piece = text.Slice(sym[i].Start, sym[i].Length);
            if (_lookup.TryGet(piece, out _, out int id)) { output.Add(id); continue; }
            foreach (byte b in piece) output.Add(_byteIds[b] >= 0 ? _byteIds[b] : _unkId);
        }
    }

    private void TryAddBigram(ReadOnlySpan<byte> text, Span<Symbol> sym, int left, int right, PriorityQueue<Bigram, Priority> queue)
    {
        if (left < 0 || right < 0) return;
        int size = sym[left].Length + sym[right].Length;
        if (!_lookup.TryGet(text.Slice(sym[left].Start, size), out _, out int id)) return;
        queue.Enqueue(new Bigram(left, right, size), new Priority(_scores[id], left));
    }

    /// <inheritdoc/>
    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var result = new List<byte>(ids.Length * 4);
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(null, $"{Name}: token id {id} is out of range [0, {VocabSize})");
            var bytes = _decoded[id];
            // The dummy prefix added by Encode comes back as the first token's leading space.
            if (i == 0 && AddSpacePrefix && _types[id] != TypeByte && bytes.Length > 0 && bytes[0] == (byte)' ')
                bytes = bytes[1..];
            result.AddRange(bytes);
        }
        return result.ToArray();
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));
}
