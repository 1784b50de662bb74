using System.Text;

namespace Tessera.Text;

/// <summary>
/// HF Unigram (SentencePiece unigram LM): the segmentation of a pre-token with the highest
/// total log-probability (Viterbi). A character no piece covers costs the unknown token's
/// score (the lowest piece score minus 10); consecutive unknowns are fused; with
/// <c>byte_fallback</c>, unknown spans become their UTF-8 <c>&lt;0xNN&gt;</c> tokens.
/// </summary>
internal sealed class HfUnigramModel : HfModel
{
    private const double UnkPenalty = 10.0;
    private readonly string[] _pieces;
    private readonly double[] _scores;
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _span;
    private readonly int _maxLen;
    private readonly int? _unk;
    private readonly double _unkScore;
    private readonly int[]? _byteFallback;

    // matchable: when given, only the pieces it accepts can match text (SentencePiece: normal and
    // user-defined pieces; the unknown, control and unused pieces are ids only), and only they set the
    // lowest score the unknown penalty starts from.
    public HfUnigramModel(List<(string Piece, double Score)> vocab, int? unkId, bool byteFallback, string where, Func<int, bool>? matchable = null)
    {
        _pieces = new string[vocab.Count];
        _scores = new double[vocab.Count];
        _vocab = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        var match = matchable is null ? _vocab : new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        double min = double.MaxValue;
        for (int i = 0; i < vocab.Count; i++)
        {
            _pieces[i] = vocab[i].Piece;
            _scores[i] = vocab[i].Score;
            if (!_vocab.TryAdd(vocab[i].Piece, i)) throw new FormatException($"{where}: model.vocab[{i}] '{vocab[i].Piece}' duplicates an earlier piece");
            if (matchable is not null)
            {
                if (!matchable(i)) continue;
                match.Add(vocab[i].Piece, i);
            }
            _maxLen = Math.Max(_maxLen, vocab[i].Piece.Length);
            min = Math.Min(min, vocab[i].Score);
        }
        _span = match.GetAlternateLookup<ReadOnlySpan<char>>();
        if (unkId is int u && (u < 0 || u >= vocab.Count)) throw new FormatException($"{where}: model.unk_id {u} is outside the vocabulary (size {vocab.Count})");
        _unk = unkId;
        _unkScore = (min == double.MaxValue ? 0 : min) - UnkPenalty;
        if (byteFallback)
            _byteFallback = FindByteTokens(t => _vocab.TryGetValue(t, out int id) ? id : null)
                ?? throw new FormatException($"{where}: model.byte_fallback is set but the vocabulary lacks some of the 256 <0xNN> byte tokens");
    }

    public override int Size => _pieces.Length;
    public override int? UnkId => _unk;
    public override int[]? ByteFallbackIds => _byteFallback;
    public override string? IdToToken(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] : null;
    public override bool TryTokenToId(string token, out int id) => _vocab.TryGetValue(token, out id);

    public override void Encode(string piece, bool byteLevel, List<int> output)
    {
        if (byteLevel) throw new NotSupportedException("Unigram model after a ByteLevel pre-tokenizer is not supported");
        int n = piece.Length;
        if (n == 0) return;
        var bestScore = new double[n + 1];
        var bestStart = new int[n + 1];
        var bestId = new int[n + 1];
        Array.Fill(bestStart, -1);
        bestStart[0] = 0;
        for (int start = 0; start < n;)
        {
            int charLen = char.IsHighSurrogate(piece[start]) && start + 1 < n && char.IsLowSurrogate(piece[start + 1]) ? 2 : 1;
            if (bestStart[start] < 0 && start > 0) { start += charLen; continue; }
            double baseScore = bestScore[start];
            bool single = false;
            for (int len = 1; len <= _maxLen && start + len <= n; len++)
            {
                if (!_span.TryGetValue(piece.AsSpan(start, len), out int id)) continue;
                if (len == charLen) single = true;
                int end = start + len;
                double s = baseScore + _scores[id];
                if (bestStart[end] < 0 || s > bestScore[end]) { bestScore[end] = s; bestStart[end] = start; bestId[end] = id; }
            }
            if (!single)
            {
                int end = start + charLen;
                double s = baseScore + _unkScore;
                if (bestStart[end] < 0 || s > bestScore[end]) { bestScore[end] = s; bestStart[end] = start; bestId[end] = -1; }
            }
            start += charLen;
        }
        // Backtrack; fuse consecutive unknown spans.
        var spans = new List<(int Start, int End, int Id)>();
        for (int end = n; end > 0;)
        {
            int s = bestStart[end];
            int id = bestId[end];
            if (id < 0 && spans.Count > 0 && spans[^1].Id < 0) spans[^1] = (s, spans[^1].End, -1);
            else spans.Add((s, end, id));
            end = s;
        }
        spans.Reverse();
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var (s, e, id) in spans)
        {
            if (id >= 0) { output.Add(id); continue; }
            if (_byteFallback is not null)
            {
                foreach (byte b in Encoding.UTF8.GetBytes(piece[s..e])) output.Add(_byteFallback[b]);
                continue;
            }
            if (_unk is int u) output.Add(u);
        }
    }
}
