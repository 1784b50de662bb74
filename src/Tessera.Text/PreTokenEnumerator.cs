using System.Text.RegularExpressions;

namespace Tessera.Text;

/// <summary>One pre-token: a (start, length) range in chars of the text that was split.</summary>
public readonly record struct PreToken(int Index, int Length);

/// <summary>
/// Enumerates the pre-tokens of one text, from either a regex match enumerator or a
/// hand-written scanner (<see cref="GptPreTokenScanner"/>). Allocation-free; use with foreach.
/// </summary>
public ref struct PreTokenEnumerator
{
    private readonly ReadOnlySpan<char> _text;
    private readonly bool _useRegex;
    private readonly bool _o200k;
    private Regex.ValueMatchEnumerator _matches;
    private int _pos;

    internal PreTokenEnumerator(Regex.ValueMatchEnumerator matches)
    {
        _matches = matches;
        _useRegex = true;
    }

    internal PreTokenEnumerator(ReadOnlySpan<char> text, bool o200k)
    {
        _text = text;
        _o200k = o200k;
    }

    /// <summary>The current pre-token.</summary>
    public PreToken Current { get; private set; }

    /// <summary>Returns this enumerator (foreach support).</summary>
    public readonly PreTokenEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next pre-token.</summary>
    public bool MoveNext()
    {
        if (_useRegex)
        {
            if (!_matches.MoveNext()) return false;
            var m = _matches.Current;
            Current = new PreToken(m.Index, m.Length);
            return true;
        }
        if (_pos >= _text.Length) return false;
        int end = _o200k ? GptPreTokenScanner.NextO200k(_text, _pos) : GptPreTokenScanner.NextCl100k(_text, _pos);
        Current = new PreToken(_pos, end - _pos);
        _pos = end;
        return true;
    }
}
