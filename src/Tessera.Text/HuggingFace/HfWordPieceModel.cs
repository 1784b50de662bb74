namespace Tessera.Text;

/// <summary>
/// HF WordPiece (BERT): greedy longest-match-first over each pre-token; pieces after the first
/// carry <c>continuing_subword_prefix</c> (<c>##</c>). A word with a position no piece covers,
/// or longer than <c>max_input_chars_per_word</c> characters, becomes the unknown token.
/// </summary>
internal sealed class HfWordPieceModel : HfModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _idToToken;
    private readonly int _unk;
    private readonly string _prefix;
    private readonly int _maxChars;

    public HfWordPieceModel(Dictionary<string, int> vocab, string unkToken, string prefix, int maxChars, string where)
    {
        _vocab = vocab;
        int max = -1;
        foreach (var (_, id) in vocab) max = Math.Max(max, id);
        _idToToken = new string?[max + 1];
        foreach (var (t, id) in vocab)
        {
            if (_idToToken[id] is not null) throw new FormatException($"{where}: model.vocab gives id {id} to both '{_idToToken[id]}' and '{t}'");
            _idToToken[id] = t;
        }
        if (!vocab.TryGetValue(unkToken, out _unk)) throw new FormatException($"{where}: model.unk_token '{unkToken}' is not in the vocabulary");
        _prefix = prefix;
        _maxChars = maxChars;
    }

    public string Prefix => _prefix;
    public override int Size => _idToToken.Length;
    public override int? UnkId => _unk;
    public override int[]? ByteFallbackIds => null;
    public override string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;
    public override bool TryTokenToId(string token, out int id) => _vocab.TryGetValue(token, out id);

    public override void Encode(string piece, bool byteLevel, List<int> output)
    {
        if (byteLevel) throw new NotSupportedException("WordPiece model after a ByteLevel pre-tokenizer is not supported");
        if (piece.Length == 0) return;
        int chars = 0;
        for (int i = 0; i < piece.Length; i++) if (!char.IsLowSurrogate(piece[i])) chars++;
        if (chars > _maxChars) { output.Add(_unk); return; }
        int mark = output.Count;
        for (int start = 0; start < piece.Length;)
        {
            int end = piece.Length, found = -1;
            while (end > start)
            {
                string sub = start > 0 ? _prefix + piece[start..end] : piece[start..end];
                if (_vocab.TryGetValue(sub, out int id)) { found = id; break; }
                end--;
                if (end > start && char.IsLowSurrogate(piece[end])) end--;
            }
            if (found < 0) { output.RemoveRange(mark, output.Count - mark); output.Add(_unk); return; }
            output.Add(found);
            start = end;
        }
    }
}
