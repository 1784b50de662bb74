namespace Tessera.Text;

/// <summary>
/// The Unicode 9.0 Script property (the version HF tokenizers' <c>UnicodeScripts</c> pre-tokenizer
/// was generated from; see UnicodeScriptTable.g.cs for the data's origin).
/// </summary>
internal static partial class UnicodeScripts9
{
    /// <summary>Index of a script in <see cref="Names"/>, or -1 when the code point was unassigned in Unicode 9.0.</summary>
    public static int Of(int codePoint)
    {
        int lo = 0, hi = RunStarts.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (RunStarts[mid] <= codePoint) lo = mid; else hi = mid - 1;
        }
        return RunScripts[lo];
    }

    /// <summary>Index of the named script (e.g. "Latin"); throws for a name not in Unicode 9.0.</summary>
    public static int Index(string name) => Array.IndexOf(Names, name) is >= 0 and var i ? i : throw new ArgumentException($"'{name}' is not a Unicode 9.0 script.");
}
