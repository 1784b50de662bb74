using System.Text;
using Tessera.Inference;
using Tessera.Text;

namespace Tessera.Thinking;

/// <summary>
/// One sampled completion: its text (model tokens and calculator insertions), the model tokens
/// generated, the tokens the calculator inserted (the model reads them, so they count as compute),
/// the summed log-probability of the generated tokens, and the calculator calls made.
/// </summary>
public sealed record Completion(string Text, int Generated, int Inserted, double LogprobSum, int Calls, IReadOnlyList<string> CallErrors)
{
    /// <summary>The passages the search tool wrote into this completion, in call order (searches are counted in <see cref="Calls"/> too).</summary>
    public IReadOnlyList<ToolPassage> Passages { get; init; } = [];

    /// <summary>Search calls made (found or not); <see cref="Calls"/> minus this is the calculator's.</summary>
    public int SearchCalls { get; init; }

    /// <summary>Tokens the model processed after the prompt: generated plus inserted.</summary>
    public int Tokens => Generated + Inserted;

    /// <summary>Mean log-probability per generated token (the model's own judgement of the sample); −∞ when empty.</summary>
    public double MeanLogprob => Generated > 0 ? LogprobSum / Generated : double.NegativeInfinity;
}

/// <summary>
/// Decoding with in-process tools: generation streams from an <see cref="IGenerationEngine"/>;
/// when the text ends inside an open call (<c>&lt;&lt;12*7=</c>), the stream is dropped (the engine
/// frees the sequence), the <see cref="Calculator"/> evaluates the expression exactly, and its result
/// and <c>&gt;&gt;</c> are appended to the context (<c>ERR&gt;&gt;</c> for an expression it refuses; the
/// message is kept in <see cref="Completion.CallErrors"/>). A call that starts with
/// <see cref="SearchPrefix"/> (<c>&lt;&lt;search:who wrote Hamlet=</c>) goes to the
/// <see cref="ISearchTool"/> instead, and the best passage (one line, <see cref="SearchInsertion"/>;
/// <c>NONE</c> when nothing matches) is written before the <c>&gt;&gt;</c>. Generation then resumes on
/// the longer context (a prefix-cached engine reuses the KV blocks). A completion ends at a newline,
/// a stop id, the token budget or the context length.
/// </summary>
public sealed class ToolDecoder(IGenerationEngine engine, ITokenizer tokenizer, IReadOnlySet<int>? stopIds = null, ISearchTool? search = null)
{
    /// <summary>How the model opens a calculator call (GSM8K's <c>&lt;&lt;expr=result&gt;&gt;</c> format); the expression ends at '='.</summary>
    public const string CallOpen = "<<";

    /// <summary>What the calculator writes after the result.</summary>
    public const string CallClose = ">>";

    /// <summary>How a call names the search tool: <c>&lt;&lt;search:QUERY=</c>.</summary>
    public const string SearchPrefix = "search:";

    /// <summary>What the search tool writes when no passage matches.</summary>
    public const string NoPassage = "NONE";

    /// <summary>Most tool calls (calculator and search together) in one completion.</summary>
    public const int MaxCalls = 32;

    /// <summary>The search tool, or null when the decoder has none.</summary>
    public ISearchTool? Search => search;

    /// <summary>The engine decoded with.</summary>
    public IGenerationEngine Engine => engine;

    /// <summary>The tokenizer of the engine's model.</summary>
    public ITokenizer Tokenizer => tokenizer;

    /// <summary>
    /// Samples one completion of <paramref name="prompt"/> followed by <paramref name="prefix"/> (text
    /// a revision keeps; it is part of the returned text and does not count as generated). With
    /// <paramref name="calculator"/> false, calls are not evaluated: the model must write results itself;
    /// with <paramref name="useSearch"/> true, search calls go to the decoder's <see cref="ISearchTool"/>.
    /// </summary>
    public async Task<Completion> SampleAsync(IReadOnlyList<int> prompt, string prefix, int maxNewTokens, SamplingOptions sampling,
        bool calculator, CancellationToken cancel = default, bool useSearch = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNewTokens, 1);
        if (useSearch && search is null) throw new ArgumentException("think: search was asked for, but this decoder has no search tool (give an index)");
        var context = new List<int>(prompt);
        context.AddRange(tokenizer.Encode(prefix));
        var text = new StringBuilder(prefix);
        var bytes = new List<byte>();
        int generated = 0, inserted = 0, calls = 0, searches = 0, segment = 0;
        double logprob = 0;
        var errors = new List<string>();
        var passages = new List<ToolPassage>();
        int limit = engine.Config.ContextLength;
        while (generated < maxNewTokens && context.Count < limit)
        {
            var request = new GenerationRequest(context, Math.Min(maxNewTokens - generated, limit - context.Count),
                sampling with { Seed = sampling.Seed + (ulong)segment++ * 7919UL }, stopIds);
            string? call = null;
            bool finished = false;
            await foreach (var ev in engine.GenerateAsync(request, cancel))
            {
                context.Add(ev.Id);
                generated++;
                logprob += ev.Logprob;
                if (stopIds?.Contains(ev.Id) == true) { finished = true; break; }   // an end id ends the text without adding to it
                bytes.AddRange(tokenizer.DecodeBytes([ev.Id]));
                string piece = Flush(bytes);
                text.Append(piece);
                if (piece.Contains('\n') || ev.Finish != FinishReason.None) { finished = true; break; }
                if ((calculator || useSearch) && piece.Contains('=') && OpenCall(text) is { } expression
                    && (expression.StartsWith(SearchPrefix, StringComparison.Ordinal) ? useSearch : calculator)) { call = expression; break; }
            }
            if (finished || call is null) break;
            if (++calls > MaxCalls) break;
            string result;
            if (call.StartsWith(SearchPrefix, StringComparison.Ordinal))
            {
                searches++;
                result = RunSearch(call[SearchPrefix.Length..].Trim(), passages, errors);
            }
            else if (Calculator.TryEvaluate(call, out decimal value, out string? error)) result = Calculator.Format(value);
            else { result = "ERR"; errors.Add(error!); }
            result += CallClose;
            var ids = tokenizer.Encode(result);
            context.AddRange(ids);
            inserted += ids.Count;
            text.Append(result);
        }
        if (bytes.Count > 0) text.Append(Encoding.UTF8.GetString([.. bytes]));   // a cut multi-byte character ends as U+FFFD, as in plain replies
        return new Completion(text.ToString(), generated, inserted, logprob, calls, errors) { Passages = passages, SearchCalls = searches };
    }

    /// <summary>The text a search call writes: the best passage on one line, NONE, or ERR (the reason kept in <paramref name="errors"/>).</summary>
    string RunSearch(string query, List<ToolPassage> passages, List<string> errors)
    {
        if (query.Length == 0) { errors.Add("search: the query is empty"); return "ERR"; }
        ToolPassage? hit;
        try { hit = search!.Search(query); }
        catch (ArgumentException e) { errors.Add($"search: {e.Message}"); return "ERR"; }
        if (hit is null) return NoPassage;
        passages.Add(hit);
        return SearchInsertion.OneLine(hit.Text);
    }

    /// <summary>The expression of a call the text ends in (<c>…&lt;&lt;expr=</c>, not yet closed), or null.</summary>
    public static string? OpenCall(StringBuilder text)
    {
        if (text.Length == 0 || text[^1] != '=') return null;
        string s = text.ToString();
        int open = s.LastIndexOf(CallOpen, StringComparison.Ordinal);
        if (open < 0 || s.IndexOf(CallClose, open, StringComparison.Ordinal) >= 0) return null;
        string expression = s[(open + CallOpen.Length)..^1];
        return expression.Contains('=') ? null : expression;
    }

    /// <summary>Decodes the complete UTF-8 characters at the front of <paramref name="bytes"/> and removes them.</summary>
    static string Flush(List<byte> bytes)
    {
        int complete = bytes.Count;
        // Hold back a trailing incomplete multi-byte sequence until its last byte arrives.
        for (int back = 1; back <= Math.Min(3, bytes.Count); back++)
        {
            byte b = bytes[^back];
            if ((b & 0xC0) == 0x80) continue;
            int need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            if (need > back) complete = bytes.Count - back;
            break;
        }
        string s = Encoding.UTF8.GetString(bytes.GetRange(0, complete).ToArray());
        bytes.RemoveRange(0, complete);
        return s;
    }
}
