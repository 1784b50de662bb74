using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Tessera.Text;

namespace Tessera.Server;

/// <summary>
/// POST /v1/chat/completions: the conversation goes through <see cref="ChatTemplate"/> and the reply
/// ends at <c>&lt;|end|&gt;</c>, a stop string, or the budget (by default, what is left of the
/// context). With <c>stream</c> the reply arrives as <c>chat.completion.chunk</c> events and
/// <c>data: [DONE]</c>; <c>stream_options.include_usage</c> adds a usage chunk before it.
/// </summary>
public static class ChatCompletionsEndpoint
{
    /// <summary>Handles one request; throws <see cref="ApiException"/> for a bad one.</summary>
    public static async Task HandleAsync(HttpContext ctx, ServedModel model, CancellationToken cancel)
    {
        using var req = await JsonRequest.ReadAsync(ctx.Request, cancel);
        await HandleAsync(ctx, model, req, cancel);
    }

    /// <summary>Handles a request whose body is already parsed (a <see cref="Cascade"/> reads it to route).</summary>
    public static async Task HandleAsync(HttpContext ctx, ServedModel model, JsonRequest req, CancellationToken cancel)
    {
        var p = GenerationParameters.Parse(req, model, minTokens: 1, tools: true);
        var think = ThinkingRequests.Parse(req, p);
        var tools = ToolSet.Parse(req, model);
        // With serve --index the retrieved passages join the messages on every path, and every path cites them.
        var images = new List<ChatImage>();
        var (messages, citations) = ChatRetrieval.Augment(ReadMessages(req, images), model.Retriever);
        if (images.Count > 0 && (tools is not null || think is not null || p.N > 1 || p.BestOf > 1))
            throw ApiException.Unsupported("messages", "Images cannot be combined with tools, thinking or n > 1 on this server - 'messages'.");
        if (tools is not null) { await tools.HandleAsync(ctx, model, messages, p, cancel, citations); return; }
        bool logprobs = req.Bool("logprobs") ?? false;
        int top = (int)(req.Integer("top_logprobs", 0, 20) ?? 0);
        if (top > 0 && !logprobs) throw ApiException.Invalid("top_logprobs", "top_logprobs requires logprobs to be true - 'top_logprobs'.");
        var ids = Encode(model, messages);
        var (vectors, prefix) = ((float[]?)null, 0);
        if (images.Count > 0) (ids, vectors, prefix) = ChatImages.Build(model, ids, messages, images);
        int budget = p.Budget(ids.Count, model.ContextLength, int.MaxValue, "messages");
        if (think is not null) { await ThinkingRequests.HandleAsync(ctx, model, messages, ids, budget, think, cancel, citations); return; }
        if (p.N > 1 || p.BestOf > 1)
        {
            if (logprobs) throw ApiException.Unsupported("logprobs", "logprobs is not supported with n > 1 on this server - 'logprobs'.");
            await MultipleChoices.ChatAsync(ctx, model, ids, budget, p, cancel, citations);
            return;
        }

        var lp = logprobs ? new TokenLogprobsJson(model) : null;
        var request = new TextRequest(ids, budget, StructuredOutput.Apply(p.Sampling, p.Constraint, ids.Count, budget, model.ChatStopIds), p.Stop, model.ChatStopIds, top)
            { InputVectors = vectors, PrefixLength = prefix };
        string id = JsonOutput.NewId("chatcmpl");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        if (p.Stream)
        {
            var sse = new SseStream(ctx.Response, cancel);
            int completionTokens = 0, sent = 0;
            bool first = true;
            await foreach (var d in TextGeneration.StreamAsync(model, request, cancel))
            {
                foreach (var t in d.Tokens) lp?.Add(t);
                completionTokens = d.CompletionTokens;
                if (!first && d.Text.Length == 0 && d.FinishReason is null) continue;
                await sse.SendAsync(Chunk(id, created, model.Id, first, d.Text, lp, sent, d.FinishReason));
                sent = lp?.Count ?? 0;
                first = false;
            }
            if (cancel.IsCancellationRequested) return;
            if (p.IncludeUsage)
                await sse.SendAsync(JsonOutput.UsageChunk(id, created, model.Id, "chat.completion.chunk", ids.Count, completionTokens, w => { ChatRetrieval.Write(w, citations); CascadeDecision.WriteIfRouted(w, ctx); }));
            await sse.DoneAsync();
            return;
        }

        var text = new StringBuilder();
        string? finish = null;
        int generated = 0;
        await foreach (var d in TextGeneration.StreamAsync(model, request, cancel))
        {
            text.Append(d.Text);
            foreach (var t in d.Tokens) lp?.Add(t);
            finish = d.FinishReason ?? finish;
            generated = d.CompletionTokens;
        }
        cancel.ThrowIfCancellationRequested();
        string reply = text.ToString();
        await JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w =>
        {
            JsonOutput.Header(w, id, created, model.Id, "chat.completion");
            JsonOutput.OneChatChoice(w, m => m.WriteString("content", reply), finish, lp is null ? null : v => lp.WriteChat(v, 0));
            CompletionsEndpoint.Usage(w, ids.Count, generated);
            ChatRetrieval.Write(w, citations);
            CascadeDecision.WriteIfRouted(w, ctx);
            w.WriteEndObject();
        }), cancel);
    }

    /// <summary>Encodes through the chat template; a tokenizer without its special tokens cannot chat.</summary>
    public static List<int> Encode(ServedModel model, IReadOnlyList<ChatMessage> messages, IReadOnlyDictionary<string, object?>? extra = null)
    {
        // Tool turns are rewritten for the template (ToolCalling); `extra` carries template variables such as tools.
        if (extra is null && messages.Any(m => m.Role == "tool")) messages = ToolSet.ForTemplate(model, messages, null).Messages;
        try { return model.EncodeChat(messages, extra); }
        catch (Exception e) when (e is ArgumentException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ApiException(400, $"This model cannot take chat messages: {e.Message}. Use /v1/completions with plain text.", param: "messages", code: "chat_unsupported");
        }
    }

    /// <summary>
    /// Reads <c>messages</c>: roles system/developer/user/assistant, content a string or text parts;
    /// with <paramref name="images"/>, user messages may also carry <c>image_url</c> parts (data: URIs).
    /// </summary>
    internal static List<ChatMessage> ReadMessages(JsonRequest req, List<ChatImage>? images = null)
    {
        var v = req.Required("messages");
        if (v.ValueKind != JsonValueKind.Array) throw JsonRequest.WrongType("messages", v, "an array");
        if (v.GetArrayLength() == 0) throw ApiException.Invalid("messages", "messages must contain at least one message - 'messages'.");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var m in v.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw JsonRequest.WrongType(at, m, "an object");
            string role = m.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()!
                : throw ApiException.Invalid(at + ".role", $"Each message needs a string 'role' - '{at}.role'.");
            role = role switch
            {
                "developer" => "system",   // OpenAI's newer name for system instructions
                "system" or "user" or "assistant" or "tool" => role,
                _ => throw ApiException.Invalid(at + ".role", $"Unsupported role '{role}': this server takes system, developer, user, assistant and tool messages - '{at}.role'."),
            };
            var pending = new List<(byte[] Data, string Source)>();
            string content = Content(m, at, role, role == "user" && images is not null ? pending : null);
            if (role == "tool") content = ToolSet.ToolResult(m, at, content);
            if (role == "assistant") content = ToolSet.AssistantCalls(m, at, content);
            var message = new ChatMessage(role, content);
            list.Add(message);
            foreach (var (data, source) in pending) images!.Add(new ChatImage(message, data, source));
        }
        return list;
    }

    static string Content(JsonElement m, string at, string role, List<(byte[] Data, string Source)>? images)
    {
        // Only an assistant turn may come without content (OpenAI: one that made tool calls);
        // a user or system message without any is a malformed request, not an empty prompt.
        if (!m.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null)
            return role == "assistant" ? "" : throw new ApiException(400, $"Missing required parameter: '{at}.content'.", param: at + ".content", code: "missing_required_parameter");
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array) throw JsonRequest.WrongType(at + ".content", c, "a string or an array of content parts");
        var sb = new StringBuilder();
        int index = 0;
        foreach (var part in c.EnumerateArray())
        {
            string where = $"{at}.content[{index++}]";
            if (images is not null && ImagePart(part, where) is { } url) { images.Add((ChatImages.FromDataUrl(url, where + ".image_url.url"), where)); continue; }
            if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "text"
                && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                sb.Append(text.GetString());
            else
                throw ApiException.Unsupported(at + ".content", $"Only text {(images is not null ? "and image_url " : "")}content parts are supported in {role} messages - '{at}.content'.");
        }
        return sb.ToString();
    }

    /// <summary>The URL of an <c>image_url</c> part (<c>{"type": "image_url", "image_url": {"url": …}}</c> or a bare string), or null for another kind of part.</summary>
    static string? ImagePart(JsonElement part, string at)
    {
        if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String || t.GetString() != "image_url") return null;
        if (!part.TryGetProperty("image_url", out var iu)) throw new ApiException(400, $"Missing required parameter: '{at}.image_url'.", param: at + ".image_url", code: "missing_required_parameter");
        if (iu.ValueKind == JsonValueKind.String) return iu.GetString()!;
        if (iu.ValueKind != JsonValueKind.Object) throw JsonRequest.WrongType(at + ".image_url", iu, "an object");
        if (!iu.TryGetProperty("url", out var u) || u.ValueKind != JsonValueKind.String)
            throw new ApiException(400, $"Missing required parameter: '{at}.image_url.url'.", param: at + ".image_url.url", code: "missing_required_parameter");
        return u.GetString()!;
    }

    static byte[] Chunk(string id, long created, string modelId, bool first, string text, TokenLogprobsJson? lp, int from, string? finish) => JsonOutput.Build(w =>
    {
        JsonOutput.Header(w, id, created, modelId, "chat.completion.chunk");
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("delta");
        if (first) w.WriteString("role", "assistant");
        if (text.Length > 0 || first) w.WriteString("content", text);
        w.WriteEndObject();
        w.WritePropertyName("logprobs");
        if (lp is null) w.WriteNullValue(); else lp.WriteChat(w, from);
        w.WriteString("finish_reason", finish);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    });
}
