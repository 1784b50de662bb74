using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Tessera.Inference;

namespace Tessera.Server;

/// <summary>
/// POST /v1/completions: raw-text continuation, with <c>echo</c> and <c>logprobs</c> so a client can
/// score text (loglikelihood evaluation: echo=true, max_tokens=0, logprobs=k). A text prompt gets
/// BOS in front; the echoed tokens are the prompt's own, so the first one is scored given BOS.
/// A prompt of token ids is used exactly as sent (include BOS yourself); its first token has a
/// null log-probability. Special tokens count and are scored but add no text.
/// </summary>
public static class CompletionsEndpoint
{
    /// <summary>OpenAI's default completion length for this endpoint.</summary>
    public const int DefaultMaxTokens = 16;

    /// <summary>Handles one request; throws <see cref="ApiException"/> for a bad one.</summary>
    public static async Task HandleAsync(HttpContext ctx, ServedModel model, CancellationToken cancel)
    {
        using var req = await JsonRequest.ReadAsync(ctx.Request, cancel);
        await HandleAsync(ctx, model, req, cancel);
    }

    /// <summary>Handles a request whose body is already parsed (a <see cref="Cascade"/> reads it to route).</summary>
    public static async Task HandleAsync(HttpContext ctx, ServedModel model, JsonRequest req, CancellationToken cancel)
    {
        var p = GenerationParameters.Parse(req, model, minTokens: 0);
        var (ids, echoed, promptText) = ReadPrompt(req, model);
        bool echo = req.Bool("echo") ?? false;
        int? logprobs = (int?)req.Integer("logprobs", 0, 20);
        if (req.String("suffix") is { Length: > 0 }) throw ApiException.Unsupported("suffix", "suffix (insertion) is not supported by this server.");
        int budget = p.Budget(ids.Count, model.ContextLength, DefaultMaxTokens, "prompt");
        if (p.N > 1 || p.BestOf > 1)
        {
            if (echo || logprobs is not null) throw ApiException.Unsupported(echo ? "echo" : "logprobs", "echo and logprobs are not supported with n > 1 or best_of > 1 on this server.");
            await MultipleChoices.CompletionsAsync(ctx, model, ids, budget, p, cancel);
            return;
        }

        var lp = logprobs is null ? null : new TokenLogprobsJson(model);
        if (echo && lp is not null)
        {
            // Score the full prompt (BOS included) and report only the echoed part.
            var scored = model.Engine.Score(ids, logprobs!.Value);
            for (int i = ids.Count - echoed; i < ids.Count; i++) lp.Add(scored[i]);
        }
        var request = new TextRequest(ids, budget, StructuredOutput.Apply(p.Sampling, p.Constraint, ids.Count, budget, model.CompletionStopIds), p.Stop, model.CompletionStopIds, logprobs ?? 0);
        string id = JsonOutput.NewId("cmpl");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string prefix = echo ? promptText : "";

        if (p.Stream)
        {
            var sse = new SseStream(ctx.Response, cancel);
            int sent = 0, completionTokens = 0;
            bool first = true;
            await foreach (var d in TextGeneration.StreamAsync(model, request, cancel))
            {
                foreach (var t in d.Tokens) lp?.Add(t);
                string text = first ? prefix + d.Text : d.Text;
                first = false;
                completionTokens = d.CompletionTokens;
                if (text.Length == 0 && d.FinishReason is null && lp is null) continue;
                await sse.SendAsync(Chunk(id, created, model.Id, text, lp, sent, d.FinishReason));
                sent = lp?.Count ?? 0;
            }
            if (cancel.IsCancellationRequested) return;
            if (p.IncludeUsage) await sse.SendAsync(JsonOutput.UsageChunk(id, created, model.Id, "text_completion", ids.Count, completionTokens, w => CascadeDecision.WriteIfRouted(w, ctx)));
            await sse.DoneAsync();
            return;
        }

        var textOut = new System.Text.StringBuilder(prefix);
        string? finish = null;
        int generated = 0;
        await foreach (var d in TextGeneration.StreamAsync(model, request, cancel))
        {
            textOut.Append(d.Text);
            foreach (var t in d.Tokens) lp?.Add(t);
            finish = d.FinishReason ?? finish;
            generated = d.CompletionTokens;
        }
        cancel.ThrowIfCancellationRequested();
        string all = textOut.ToString();
        await JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w =>
        {
            JsonOutput.Header(w, id, created, model.Id, "text_completion");
            w.WriteStartArray("choices");
            Choice(w, all, lp, 0, finish);
            w.WriteEndArray();
            Usage(w, ids.Count, generated);
            CascadeDecision.WriteIfRouted(w, ctx);
            w.WriteEndObject();
        }), cancel);
    }

    /// <summary>The prompt as ids to run, how many trailing ids are the caller's own (echoed), and its text.</summary>
    internal static (List<int> Ids, int Echoed, string Text) ReadPrompt(JsonRequest req, ServedModel model)
    {
        var v = req.Required("prompt");
        // A one-element batch is the same as its element; larger batches would need n choices.
        if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 1 && v[0].ValueKind is JsonValueKind.String or JsonValueKind.Array) v = v[0];
        if (v.ValueKind == JsonValueKind.String)
        {
            string text = v.GetString()!;
            var ids = model.EncodePrompt(text);
            return (ids, ids.Count - (model.Bos is null ? 0 : 1), text);
        }
        if (v.ValueKind == JsonValueKind.Array)
        {
            var ids = new List<int>(v.GetArrayLength());
            foreach (var e in v.EnumerateArray())
            {
                if (e.ValueKind is JsonValueKind.String or JsonValueKind.Array)
                    throw ApiException.Unsupported("prompt", "Only one prompt per request is supported (send a string, or an array of token ids).");
                ids.Add((int)JsonRequest.IntegerValue(e, "prompt", 0, model.Engine.Config.VocabSize - 1));
            }
            if (ids.Count == 0) throw ApiException.Invalid("prompt", "The prompt is empty.");
            return (ids, ids.Count, model.DecodeText(ids));
        }
        throw JsonRequest.WrongType("prompt", v, "a string or an array of token ids");
    }

    static void Choice(Utf8JsonWriter w, string text, TokenLogprobsJson? lp, int from, string? finish)
    {
        w.WriteStartObject();
        w.WriteString("text", text);
        w.WriteNumber("index", 0);
        w.WritePropertyName("logprobs");
        if (lp is null) w.WriteNullValue(); else lp.WriteCompletion(w, from);
        w.WriteString("finish_reason", finish);
        w.WriteEndObject();
    }

    static byte[] Chunk(string id, long created, string modelId, string text, TokenLogprobsJson? lp, int from, string? finish) => JsonOutput.Build(w =>
    {
        JsonOutput.Header(w, id, created, modelId, "text_completion");
        w.WriteStartArray("choices");
        Choice(w, text, lp, from, finish);
        w.WriteEndArray();
        w.WriteEndObject();
    });

    /// <summary>Writes the <c>usage</c> object.</summary>
    public static void Usage(Utf8JsonWriter w, int prompt, int completion)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", prompt);
        w.WriteNumber("completion_tokens", completion);
        w.WriteNumber("total_tokens", prompt + completion);
        w.WriteEndObject();
    }
}
