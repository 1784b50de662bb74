using System.Text;

namespace Tessera.Text;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> run as the <c>tokenizers</c> library runs it: added
/// tokens split out (those marked <c>normalized</c> after normalization), then normalizer,
/// pre-tokenizer, model (BPE, Unigram, WordPiece), and on request the post-processor's special
/// tokens; decoding goes through the decoder chain. Loaded by <see cref="HfTokenizerLoader"/>;
/// a component it does not implement is a load error naming it, never a silent difference.
/// </summary>
/// <remarks>
/// As everywhere in Tessera, <see cref="Encode(string, bool)"/> leaves special-token text as
/// text unless asked (<c>allowSpecial</c>); non-special added tokens are always recognised, as
/// in HF. Round trips (<see cref="ITokenizer"/>) hold only for lossless pipelines (byte-level
/// BPE without normalizer); normalizers, unknown tokens and decoders that strip are lossy by design.
/// Lone surrogates in input are read as U+FFFD.
/// </remarks>
public sealed class HfTokenizer : ITokenizer
{
    private readonly HfNormalizer? _normalizer;
    private readonly HfPreTokenizer? _pre;
    private readonly HfModel _model;
    private readonly HfPostProcessor _post;
    private readonly HfDecoder? _decoder;
    private readonly bool _byteLevel;
    private readonly Dictionary<int, HfAddedToken> _addedById = [];
    private readonly AddedTokenMatcher _rawAll, _rawPlain, _normAll, _normPlain;

    internal HfTokenizer(string name, HfNormalizer? normalizer, HfPreTokenizer? pre, bool byteLevel, HfModel model, HfPostProcessor post,
        HfDecoder? decoder, IReadOnlyList<HfAddedToken> added)
    {
        Name = name;
        _normalizer = normalizer;
        _pre = pre;
        _byteLevel = byteLevel;
        _model = model;
        _post = post;
        _decoder = decoder;
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        int max = model.Size - 1;
        foreach (var a in added)
        {
            _addedById[a.Id] = a;
            max = Math.Max(max, a.Id);
            if (a.Special && !specials.ContainsKey(a.Content)) specials[a.Content] = a.Id;
        }
        VocabSize = max + 1;
        SpecialTokens = new SpecialTokenSet(specials);
        AddedTokens = added;
        var raw = added.Where(a => !a.Normalized).ToList();
        var norm = added.Where(a => a.Normalized).ToList();
        _rawAll = new AddedTokenMatcher(raw, raw.ConvertAll(a => a.Content));
        _rawPlain = new AddedTokenMatcher(raw.Where(a => !a.Special).ToList(), raw.Where(a => !a.Special).Select(a => a.Content).ToList());
        string N(string s) => normalizer is null ? s : normalizer.Normalize(s);
        _normAll = new AddedTokenMatcher(norm, norm.ConvertAll(a => N(a.Content)));
        _normPlain = new AddedTokenMatcher(norm.Where(a => !a.Special).ToList(), norm.Where(a => !a.Special).Select(a => N(a.Content)).ToList());
    }

    /// <summary>
    /// Loads a tokenizer.json (see <see cref="HfTokenizerLoader.Load"/>); a tokenizer_config.json
    /// beside it with a <c>chat_template</c> is attached (<see cref="Templates.ModelChatTemplate.Of"/>).
    /// </summary>
    public static HfTokenizer Load(string path)
    {
        var tok = HfTokenizerLoader.Load(path);
        string config = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "tokenizer_config.json");
        if (File.Exists(config) && Templates.ModelChatTemplate.FromTokenizerConfig(config) is { } template) Templates.ModelChatTemplate.Attach(tok, template);
        return tok;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public int VocabSize { get; }

    /// <inheritdoc/>
    public SpecialTokenSet SpecialTokens { get; }

    internal IReadOnlyList<HfAddedToken> AddedTokens { get; }

    /// <summary>Ids the post-processor puts before a sequence when special tokens are added (e.g. BOS).</summary>
    public IReadOnlyList<int> SpecialPrefix => _post.Prefix;

    /// <summary>Ids the post-processor puts after a sequence when special tokens are added (e.g. EOS).</summary>
    public IReadOnlyList<int> SpecialSuffix => _post.Suffix;

    /// <summary>The id of a token string (added tokens first, then the model's vocabulary), or null.</summary>
    public int? TokenToId(string token)
    {
        foreach (var (id, a) in _addedById) if (a.Content == token) return id;
        return _model.TryTokenToId(token, out int m) ? m : null;
    }

    /// <summary>The token string of an id (added tokens first), or null.</summary>
    public string? IdToToken(int id) => _addedById.TryGetValue(id, out var a) ? a.Content : _model.IdToToken(id);

    /// <inheritdoc/>
    public List<int> Encode(string text, bool allowSpecial = false) => Encode(text, allowSpecial, addSpecialTokens: false);

    /// <summary>
    /// Encodes text; <paramref name="addSpecialTokens"/> applies the post-processor (HF's
    /// <c>add_special_tokens</c>), e.g. a leading BOS.
    /// </summary>
    public List<int> Encode(string text, bool allowSpecial, bool addSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = ReplaceLoneSurrogates(text);
        var output = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) output.AddRange(_post.Prefix);
        var raw = allowSpecial ? _rawAll : _rawPlain;
        var norm = allowSpecial ? _normAll : _normPlain;
        var pieces = new List<HfPiece>();
        foreach (var (s, e, tok) in raw.Split(text))
        {
            if (tok >= 0) { output.Add(raw.Token(tok).Id); continue; }
            string section = s == 0 && e == text.Length ? text : text[s..e];
            string normalized = _normalizer is null ? section : _normalizer.Normalize(section);
            foreach (var (ns, ne, ntok) in norm.Split(normalized))
            {
                if (ntok >= 0) { output.Add(norm.Token(ntok).Id); continue; }
                var piece = new HfPiece(ns == 0 && ne == normalized.Length ? normalized : normalized[ns..ne], s == 0 && ns == 0);
                pieces.Clear();
                if (_pre is null) pieces.Add(piece);
                else _pre.Split(piece, pieces);
                foreach (var p in pieces) _model.Encode(p.Text, _byteLevel, output);
            }
        }
        if (addSpecialTokens) output.AddRange(_post.Suffix);
        return output;
    }

    /// <inheritdoc/>
    public List<int> EncodeBytes(ReadOnlySpan<byte> bytes)
    {
        var output = new List<int>(bytes.Length / 3 + 4);
        Utf8Segments.Walk(bytes, s => output.AddRange(Encode(s)), b =>
        {
            if (_byteLevel && _model is HfBpeModel bpe && bpe.ByteLevelIds[b] >= 0) output.Add(bpe.ByteLevelIds[b]);
            else if (_model.ByteFallbackIds is { } fb) output.Add(fb[b]);
            else output.AddRange(Encode("\uFFFD"));
        });
        return output;
    }

    /// <summary>
    /// Whether added tokens decode as their own text, outside the decoder chain (llama.cpp's rule
    /// for GGUF vocabularies, whose user-defined tokens are plain text such as "õ"); HF passes
    /// them through the decoder like any token.
    /// </summary>
    internal bool AddedTokensDecodeRaw { get; init; }

    /// <inheritdoc/>
    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        if (AddedTokensDecodeRaw) return DecodeRawAdded(ids, skipSpecialTokens: false, bytes: true, out _);
        var tokens = Tokens(ids, skipSpecialTokens: false);
        if (_decoder is HfDecoder.ByteLevel) return HfDecoder.ByteLevel.Bytes(tokens);
        return Encoding.UTF8.GetBytes(Join(tokens));
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids) => Decode(ids, skipSpecialTokens: false);

    /// <summary>Decodes as HF's <c>decode(ids, skip_special_tokens)</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary; the message names it.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        if (!AddedTokensDecodeRaw) return Join(Tokens(ids, skipSpecialTokens));
        DecodeRawAdded(ids, skipSpecialTokens, bytes: false, out string text);
        return text;
    }

    // Model tokens go through the decoder in runs; each added token contributes its text as is.
    private byte[] DecodeRawAdded(ReadOnlySpan<int> ids, bool skipSpecialTokens, bool bytes, out string text)
    {
        var outBytes = new List<byte>();
        var sb = new StringBuilder();
        var run = new List<string>();
        void Flush()
        {
            if (run.Count == 0) return;
            if (bytes) outBytes.AddRange(_decoder is HfDecoder.ByteLevel ? HfDecoder.ByteLevel.Bytes(run) : Encoding.UTF8.GetBytes(Join(run)));
            else sb.Append(Join(run));
            run.Clear();
        }
        foreach (int id in ids)
        {
            if (_addedById.TryGetValue(id, out var a))
            {
                if (skipSpecialTokens && a.Special) continue;
                Flush();
                if (bytes) outBytes.AddRange(Encoding.UTF8.GetBytes(a.Content));
                else sb.Append(a.Content);
                continue;
            }
            run.Add(_model.IdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(ids), $"{Name}: token id {id} is not in the vocabulary (size {VocabSize})"));
        }
        Flush();
        text = sb.ToString();
        return outBytes.ToArray();
    }

    private List<string> Tokens(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            if (_addedById.TryGetValue(id, out var a))
            {
                if (!(skipSpecialTokens && a.Special)) tokens.Add(a.Content);
                continue;
            }
            tokens.Add(_model.IdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(ids), $"{Name}: token id {id} is not in the vocabulary (size {VocabSize})"));
        }
        return tokens;
    }

    private string Join(List<string> tokens) => _decoder is null ? string.Join(' ', tokens) : string.Concat(_decoder.DecodeChain(tokens));

    /// <summary>The text with each lone surrogate replaced by U+FFFD: what encoding reads.</summary>
    public static string ToWellFormed(string text) => ReplaceLoneSurrogates(text);

    internal static string ReplaceLoneSurrogates(string text)
    {
        int i = 0;
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            break;
        }
        if (i >= text.Length) return text;
        var chars = text.ToCharArray();
        for (int k = i; k < chars.Length; k++)
        {
            char c = chars[k];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && k + 1 < chars.Length && char.IsLowSurrogate(chars[k + 1])) { k++; continue; }
            chars[k] = '\uFFFD';
        }
        return new string(chars);
    }
}
