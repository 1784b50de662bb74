using System.Runtime.CompilerServices;
using System.Text;
using Tessera.Inference;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval;

/// <summary>Options of <see cref="InContextRalm"/>.</summary>
public sealed record RalmOptions
{
    /// <summary>Retrieval stride s: a new retrieval every s generated (or scored) tokens.</summary>
    public int Stride { get; init; } = 16;

    /// <summary>Query length q: the last q tokens of the text so far form the query.</summary>
    public int QueryTokens { get; init; } = 32;

    /// <summary>Passages prepended per retrieval.</summary>
    public int Passages { get; init; } = 1;

    /// <summary>Most tokens of retrieved text kept in the context (the rest of the context holds the text itself).</summary>
    public int MaxPassageTokens { get; init; } = 128;

    /// <summary>Checks the options; throws with a clear message.</summary>
    public RalmOptions Validate()
    {
        if (Stride < 1) throw new ArgumentException($"retrieval stride must be ≥ 1 token, got {Stride}.");
        if (QueryTokens < 1) throw new ArgumentException($"retrieval query length must be ≥ 1 token, got {QueryTokens}.");
        if (Passages < 1) throw new ArgumentException($"retrieved passages must be ≥ 1, got {Passages}.");
        if (MaxPassageTokens < 1) throw new ArgumentException($"retrieved passage tokens must be ≥ 1, got {MaxPassageTokens}.");
        return this;
    }
}

/// <summary>One generated token with the passages that were in the context when it was produced.</summary>
/// <param name="Event">The engine's token event.</param>
/// <param name="Retrieved">The passages prepended for this stride (empty when the query had no searchable term).</param>
public sealed record RalmToken(TokenEvent Event, IReadOnlyList<Passage> Retrieved);

/// <summary>
/// In-Context RALM (Ram et al., 2023): the model is unchanged; every <see cref="RalmOptions.Stride"/>
/// tokens the last <see cref="RalmOptions.QueryTokens"/> tokens are sent to the BM25 index, and the
/// top passage(s) are placed before the text in the context. Generation and scoring use the same
/// context layout: [BOS] passages "\n\n" text-window, the text window cut from the left to fit.
/// </summary>
public sealed class InContextRalm(IGenerationEngine engine, ITokenizer tokenizer, Bm25Index index, int? bos, RalmOptions? options = null)
{
    readonly RalmOptions o = (options ?? new RalmOptions()).Validate();
    readonly List<int> separator = tokenizer.Encode("\n\n");

    /// <summary>Passages for the text ending at <paramref name="ids"/>, excluding one document (for held-out scoring).</summary>
    public IReadOnlyList<Passage> Retrieve(IReadOnlyList<int> ids, string? excludeDocument = null)
    {
        int from = Math.Max(0, ids.Count - o.QueryTokens);
        string query = tokenizer.Decode(ids.Skip(from).ToArray());
        try
        {
            return index.Search(query, o.Passages + (excludeDocument is null ? 0 : 8))
                .Where(h => h.Passage.DocumentId != excludeDocument).Take(o.Passages).Select(h => h.Passage).ToList();
        }
        catch (ArgumentException) { return []; }   // nothing searchable yet (e.g. only punctuation): continue without retrieval
    }

    /// <summary>The context ids for <paramref name="text"/> with <paramref name="passages"/> prepended, leaving <paramref name="reserve"/> positions free.</summary>
    public List<int> Context(IReadOnlyList<Passage> passages, IReadOnlyList<int> text, int reserve)
    {
        var ids = new List<int>();
        if (bos is { } b) ids.Add(b);
        if (passages.Count > 0)
        {
            var p = tokenizer.Encode(string.Join("\n\n", passages.Select(x => x.Text)));
            if (p.Count > o.MaxPassageTokens) p = p.GetRange(0, o.MaxPassageTokens);
            ids.AddRange(p); ids.AddRange(separator);
        }
        int room = engine.Config.ContextLength - reserve - ids.Count;
        if (room < 1) throw new ArgumentException($"retrieval: the context of {engine.Config.ContextLength} tokens has no room for the text after {ids.Count} retrieved tokens (lower --retrieve-tokens).");
        int from = Math.Max(0, text.Count - room);
        for (int i = from; i < text.Count; i++) ids.Add(text[i]);
        return ids;
    }

    /// <summary>Generates up to <paramref name="maxNewTokens"/> tokens after <paramref name="prompt"/> (ids without BOS), retrieving every stride.</summary>
    public async IAsyncEnumerable<RalmToken> GenerateAsync(IReadOnlyList<int> prompt, int maxNewTokens, SamplingOptions sampling, IReadOnlySet<int>? stops = null,
        [EnumeratorCancellation] CancellationToken cancel = default)
    {
        var text = new List<int>(prompt);
        int produced = 0;
        while (produced < maxNewTokens)
        {
            var passages = Retrieve(text);
            int n = Math.Min(o.Stride, maxNewTokens - produced);
            var context = Context(passages, text, n);
            bool stopped = false;
            await foreach (var ev in engine.GenerateAsync(new GenerationRequest(context, n, sampling, stops), cancel))
            {
                text.Add(ev.Id); produced++;
                yield return new RalmToken(ev, passages);
                if (ev.Finish == FinishReason.Stop) stopped = true;
            }
            if (stopped) yield break;
        }
    }

    /// <summary>
    /// Bits per byte of <paramref name="ids"/> (a held-out document, no BOS) scored stride by stride:
    /// each block of s tokens is scored after the preceding text, with retrieved passages prepended
    /// when <paramref name="retrieve"/> (the document itself excluded by <paramref name="documentId"/>).
    /// The first block is conditioned on BOS only. Returns (nats, bytes) summed over the scored tokens.
    /// </summary>
    public (double Nats, long Bytes) Score(IReadOnlyList<int> ids, bool retrieve, string? documentId = null)
    {
        double nats = 0;
        long bytes = 0;
        for (int start = 0; start < ids.Count; start += o.Stride)
        {
            int n = Math.Min(o.Stride, ids.Count - start);
            var before = ids.Take(start).ToList();
            var passages = retrieve && start > 0 ? Retrieve(before, documentId) : [];
            var context = Context(passages, before, n);
            int skip = context.Count == 0 ? 1 : 0;   // no BOS: the document's first token has nothing to be predicted from
            int first = context.Count + skip;
            for (int i = 0; i < n; i++) context.Add(ids[start + i]);
            if (first >= context.Count) continue;
            var events = engine.Score(context, 0);
            for (int i = first; i < context.Count; i++) nats -= events[i].Logprob;
            bytes += tokenizer.DecodeBytes(ids.Skip(start + skip).Take(n - skip).ToArray()).Length;
        }
        return (nats, bytes);
    }

    /// <summary>Bits per byte over several documents, with or without retrieval.</summary>
    public double BitsPerByte(IEnumerable<(string Id, IReadOnlyList<int> Ids)> documents, bool retrieve)
    {
        double nats = 0; long bytes = 0;
        foreach (var (id, ids) in documents)
        {
            var (n, b) = Score(ids, retrieve, id);
            nats += n; bytes += b;
        }
        return bytes == 0 ? double.NaN : nats / Math.Log(2) / bytes;
    }

    internal static string Describe(IReadOnlyList<Passage> ps) => new StringBuilder().AppendJoin(", ", ps.Select(p => $"{p.DocumentId}[{p.Start}+{p.Length}]")).ToString();
}
