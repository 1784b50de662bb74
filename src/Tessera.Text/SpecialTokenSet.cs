namespace Tessera.Text;

/// <summary>
/// The special tokens of a vocabulary (text → id) and the splitting of text around them.
/// Matching is leftmost, and longest among tokens starting at the same position.
/// </summary>
public sealed class SpecialTokenSet
{
    private readonly Dictionary<string, int> _byText;
    private readonly Dictionary<int, string> _byId;
    private readonly string[] _longestFirst;

    /// <summary>An empty set.</summary>
    public static SpecialTokenSet Empty { get; } = new(new Dictionary<string, int>());

    /// <summary>A set of special tokens from marker text to id (e.g. <c>&lt;|eos|&gt;</c> → 1).</summary>
    public SpecialTokenSet(IReadOnlyDictionary<string, int> tokens)
    {
        _byText = new Dictionary<string, int>(StringComparer.Ordinal);
        _byId = new Dictionary<int, string>();
        foreach (var (text, id) in tokens)
        {
            if (string.IsNullOrEmpty(text)) throw new ArgumentException("a special token must not be empty");
            if (!_byId.TryAdd(id, text)) throw new ArgumentException($"special tokens '{_byId[id]}' and '{text}' share id {id}");
            _byText.Add(text, id);
        }
        _longestFirst = _byText.Keys.OrderByDescending(t => t.Length).ThenBy(t => t, StringComparer.Ordinal).ToArray();
    }

    /// <summary>Number of special tokens.</summary>
    public int Count => _byText.Count;

    /// <summary>Token texts and ids, ordered by id.</summary>
    public IEnumerable<KeyValuePair<string, int>> ById => _byText.OrderBy(kv => kv.Value);

    /// <summary>Whether an id is a special token.</summary>
    public bool IsSpecial(int id) => _byId.ContainsKey(id);

    /// <summary>The text of a special token id, or null.</summary>
    public string? TextOf(int id) => _byId.GetValueOrDefault(id);

    /// <summary>Looks up a special token by text.</summary>
    public bool TryGetId(string text, out int id) => _byText.TryGetValue(text, out id);

    /// <summary>The id of a special token.</summary>
    /// <exception cref="KeyNotFoundException">Unknown token; the message lists the known ones.</exception>
    public int Id(string text) => _byText.TryGetValue(text, out int id)
        ? id
        : throw new KeyNotFoundException($"unknown special token '{text}'; this vocabulary has: {(Count == 0 ? "(none)" : string.Join(" ", ById.Select(kv => kv.Key)))}");

    /// <summary>
    /// Finds the next special token in <paramref name="text"/> at or after <paramref name="from"/>.
    /// Returns its start (or -1) and sets the token's length and id.
    /// </summary>
    public int FindNext(ReadOnlySpan<char> text, int from, out int length, out int id)
    {
        length = 0; id = -1;
        if (_longestFirst.Length == 0) return -1;
        int best = -1;
        foreach (var t in _longestFirst)
        {
            int limit = best < 0 ? text.Length - from : best - from + t.Length;
            if (limit <= 0) continue;
            int at = text.Slice(from, Math.Min(limit, text.Length - from)).IndexOf(t, StringComparison.Ordinal);
            if (at < 0) continue;
            at += from;
            if (best < 0 || at < best) { best = at; length = t.Length; id = _byText[t]; }
        }
        return best;
    }
}
