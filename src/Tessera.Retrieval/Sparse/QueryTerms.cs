using Lucene.Net.Analysis;
using Lucene.Net.Analysis.TokenAttributes;

namespace Tessera.Retrieval.Sparse;

/// <summary>
/// Turns query text into weighted index terms with the index's own analyzer, and refuses queries
/// that cannot be searched with a message that says why: empty, too long, or with no word the
/// analyzer keeps (only punctuation, symbols or emoji — scripts without letters or digits).
/// </summary>
public static class QueryTerms
{
    /// <summary>Longest query accepted, in characters.</summary>
    public const int MaxChars = 20_000;

    /// <summary>Most distinct terms in one query (Lucene's boolean clause limit).</summary>
    public const int MaxTerms = 1024;

    /// <summary>Distinct analysed terms of <paramref name="query"/> with their counts as weights.</summary>
    /// <exception cref="ArgumentException">The query is empty, over <see cref="MaxChars"/>, or yields no term.</exception>
    public static Dictionary<string, float> Analyze(Analyzer analyzer, string query)
    {
        if (string.IsNullOrWhiteSpace(query)) throw new ArgumentException("index search: the query is empty (give some words to search for).");
        if (query.Length > MaxChars) throw new ArgumentException($"index search: the query has {query.Length:N0} characters; at most {MaxChars:N0} are accepted (search with a shorter passage).");
        var terms = Tokens(analyzer, query);
        if (terms.Count == 0)
        {
            bool anyLetter = query.Any(char.IsLetterOrDigit);
            throw new ArgumentException(anyLetter
                ? "index search: the query has no searchable term (only stop words)."
                : "index search: the query has no searchable term — it holds no letters or digits the analyzer recognises (only punctuation, symbols or emoji).");
        }
        var weights = new Dictionary<string, float>(StringComparer.Ordinal);
        foreach (var t in terms) weights[t] = weights.GetValueOrDefault(t) + 1;
        if (weights.Count > MaxTerms) throw new ArgumentException($"index search: the query has {weights.Count:N0} distinct terms; at most {MaxTerms} are accepted.");
        return weights;
    }

    /// <summary>The analyser's tokens of <paramref name="text"/>, in order (may be empty).</summary>
    public static List<string> Tokens(Analyzer analyzer, string text)
    {
        var list = new List<string>();
        using var ts = analyzer.GetTokenStream(Bm25Index.TextField, new StringReader(text));
        var term = ts.AddAttribute<ICharTermAttribute>();
        ts.Reset();
        while (ts.IncrementToken()) list.Add(term.ToString());
        ts.End();
        return list;
    }
}
