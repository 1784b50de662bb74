using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Tessera.Inference;

namespace Tessera.Server;

/// <summary>
/// <c>n</c> choices and <c>best_of</c> candidates: one engine sequence each, choice i sampled with
/// seed + i (so a request with a seed repeats choice by choice) and its own constraint state. The
/// first choice starts alone and the others join once it has produced a token, so an engine with a
/// prefix cache prefills the prompt once and the other choices copy its KV blocks. best_of keeps
/// the n candidates with the highest mean token log-probability (OpenAI's "log probability per
/// token"). Not combined with logprobs or echo; best_of not with streaming.
/// </summary>
public static class MultipleChoices
{
    sealed record Choice(int Index, string Text, string Finish, int Tokens, double MeanLogprob);

    static TextRequest Request(ServedModel model, IReadOnlyList<int> ids, int budget, GenerationParameters p, int i, IReadOnlySet<int> stopIds)
    {
        var sampling = p.Sampling with { Seed = unchecked(p.Sampling.Seed + (ulong)i) };
        return new TextRequest(ids, budget, StructuredOutput.Apply(sampling, p.Constraint, ids.Count, budget, stopIds), p.Stop, stopIds, 0);
    }

    // Runs `count` sequences, the first alone until its first token; each delta goes to `sink` with its index.
    static async Task RunAsync(ServedModel model, IReadOnlyList<int> ids, int budget, GenerationParameters p, int count, IReadOnlySet<int> stopIds,
        Func<int, TextDelta, Task> sink, CancellationToken cancel)
    {
        var firstToken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task One(int i)
        {
            var request = Request(model, ids, budget, p, i, stopIds);
            try
            {
                await foreach (var d in TextGeneration.StreamAsync(model, request, cancel))
                {
                    if (i == 0) firstToken.TrySetResult();
                    await sink(i, d);
                }
            }
            finally { if (i == 0) firstToken.TrySetResult(); }
        }
        var first = One(0);
        await Task.WhenAny(firstToken.Task, first);
        var rest = Enumerable.Range(1, count - 1).Select(One).ToList();
        await Task.WhenAll([first, .. rest]);
    }

    static async Task<List<Choice>> CollectAsync(ServedModel model, IReadOnlyList<int> ids, int budget, GenerationParameters p, int count, IReadOnlySet<int> stopIds, CancellationToken cancel)
    {
        var text = new StringBuilder[count]; var finish = new string?[count]; var tokens = new int[count]; var logprob = new double[count]; var scored = new int[count];
        for (int i = 0; i < count; i++) text[i] = new StringBuilder();
        await RunAsync(model, ids, budget, p, count, stopIds, (i, d) =>
        {
            lock (text[i])
            {
                text[i].Append(d.Text);
                finish[i] = d.FinishReason ?? finish[i];
                tokens[i] = d.CompletionTokens;
                foreach (var t in d.Tokens) { logprob[i] += t.Logprob; scored[i]++; }
            }
            return Task.CompletedTask;
        }, cancel);
        cancel.ThrowIfCancellationRequested();
        return [.. Enumerable.Range(0, count).Select(i => new Choice(i, text[i].ToString(), finish[i] ?? "length", tokens[i], scored[i] == 0 ? double.NegativeInfinity : logprob[i] / scored[i]))];
    }

    /// <summary>Chat with n &gt; 1 (streaming or not).</summary>
    public static async Task ChatAsync(HttpContext ctx, ServedModel model, IReadOnlyList<int> ids, int budget, GenerationParameters p, CancellationToken cancel,
        IReadOnlyList<RetrievedPassage>? citations = null)
    {
        if (p.BestOf != p.N) throw ApiException.Unsupported("best_of", "best_of is a /v1/completions parameter - 'best_of'.");
        string id = JsonOutput.NewId("chatcmpl");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (p.Stream)
        {
            var sse = new SseStream(ctx.Response, cancel);
            var events = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
            var firstSent = new bool[p.N];
            var tokens = new int[p.N];
            var run = RunAsync(model, ids, budget, p, p.N, model.ChatStopIds, (i, d) =>
            {
                lock (firstSent)
                {
                    tokens[i] = d.CompletionTokens;
                    if (firstSent[i] && d.Text.Length == 0 && d.FinishReason is null) return Task.CompletedTask;
                    events.Writer.TryWrite(ChatChunk(id, created, model.Id, i, !firstSent[i], d.Text, d.FinishReason));
                    firstSent[i] = true;
                }
                return Task.CompletedTask;
            }, cancel).ContinueWith(t => events.Writer.TryComplete(t.Exception), TaskScheduler.Default);
            await foreach (var chunk in events.Reader.ReadAllAsync(cancel)) await sse.SendAsync(chunk);
            await run;
            if (cancel.IsCancellationRequested) return;
            if (p.IncludeUsage)
                await sse.SendAsync(JsonOutput.UsageChunk(id, created, model.Id, "chat.completion.chunk", ids.Count, tokens.Sum(), w => ChatRetrieval.Write(w, citations ?? [])));
            await sse.DoneAsync();
            return;
        }
        var choices = await CollectAsync(model, ids, budget, p, p.N, model.ChatStopIds, cancel);
        await JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w =>
        {
            JsonOutput.Header(w, id, created, model.Id, "chat.completion");
            w.WriteStartArray("choices");
            foreach (var c in choices)
            {
                w.WriteStartObject();
                w.WriteNumber("index", c.Index);
                w.WriteStartObject("message");
                w.WriteString("role", "assistant");
                w.WriteString("content", c.Text);
                w.WriteEndObject();
                w.WriteNull("logprobs");
                w.WriteString("finish_reason", c.Finish);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            CompletionsEndpoint.Usage(w, ids.Count, choices.Sum(c => c.Tokens));
            ChatRetrieval.Write(w, citations ?? []);
            w.WriteEndObject();
        }), cancel);
    }

    /// <summary>Completions with n &gt; 1 or best_of &gt; 1 (not streamed).</summary>
    public static async Task CompletionsAsync(HttpContext ctx, ServedModel model, IReadOnlyList<int> ids, int budget, GenerationParameters p, CancellationToken cancel)
    {
        if (p.Stream) throw ApiException.Unsupported("stream", "stream is not supported with n > 1 or best_of > 1 on /v1/completions - 'stream'.");
        var candidates = await CollectAsync(model, ids, budget, p, p.BestOf, model.CompletionStopIds, cancel);
        var kept = p.BestOf == p.N ? candidates : [.. candidates.OrderByDescending(c => c.MeanLogprob).ThenBy(c => c.Index).Take(p.N)];
        string id = JsonOutput.NewId("cmpl");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w =>
        {
            JsonOutput.Header(w, id, created, model.Id, "text_completion");
            w.WriteStartArray("choices");
            int index = 0;
            foreach (var c in kept)
            {
                w.WriteStartObject();
                w.WriteString("text", c.Text);
                w.WriteNumber("index", index++);
                w.WriteNull("logprobs");
                w.WriteString("finish_reason", c.Finish);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            // Usage counts every candidate generated, as OpenAI bills best_of.
            CompletionsEndpoint.Usage(w, ids.Count, candidates.Sum(c => c.Tokens));
            w.WriteEndObject();
        }), cancel);
    }

    static byte[] ChatChunk(string id, long created, string modelId, int index, bool first, string text, string? finish) => JsonOutput.Build(w =>
    {
        JsonOutput.Header(w, id, created, modelId, "chat.completion.chunk");
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        w.WriteStartObject("delta");
        if (first) w.WriteString("role", "assistant");
        if (text.Length > 0 || first) w.WriteString("content", text);
        w.WriteEndObject();
        w.WriteNull("logprobs");
        w.WriteString("finish_reason", finish);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    });
}
