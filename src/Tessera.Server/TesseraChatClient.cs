using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.AI;
using Tessera.Inference;
using AiMessage = Microsoft.Extensions.AI.ChatMessage;
using TextMessage = Tessera.Text.ChatMessage;

namespace Tessera.Server;

/// <summary>
/// <see cref="IChatClient"/> over a served model, for in-process use without HTTP: the same chat
/// template, stop ids, stop strings and token budget as /v1/chat/completions. Options honoured:
/// temperature, top-p, top-k, max output tokens, seed, stop sequences, response format (JSON /
/// JSON schema), tools and tool mode (function calls come back as <see cref="FunctionCallContent"/>,
/// so <c>FunctionInvokingChatClient</c> can run them), frequency and presence penalties. Images come
/// as <see cref="DataContent"/> (PNG or JPEG bytes) in user messages when the model has <see cref="ServedModel.Vision"/>.
/// </summary>
public sealed class TesseraChatClient(ServedModel model) : IChatClient
{
    readonly ChatClientMetadata metadata = new("tessera", null, model.Id);

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (request, promptTokens, tools) = Prepare(messages, options);
        var text = new StringBuilder();
        string? finish = null;
        int generated = 0;
        await foreach (var d in TextGeneration.StreamAsync(model, request, cancellationToken))
        {
            text.Append(d.Text);
            finish = d.FinishReason ?? finish;
            generated = d.CompletionTokens;
        }
        cancellationToken.ThrowIfCancellationRequested();
        var call = tools?.ParseCall(text.ToString());
        var message = call is null ? new AiMessage(ChatRole.Assistant, text.ToString())
            : new AiMessage(ChatRole.Assistant, [new FunctionCallContent(call.Id, call.Name, System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, object?>>(call.Arguments))]);
        if (call is not null) finish = "tool_calls";
        return new ChatResponse(message)
        {
            ModelId = model.Id,
            ResponseId = JsonOutput.NewId("chatcmpl"),
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = Finish(finish),
            Usage = Usage(promptTokens, generated),
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (options?.Tools is { Count: > 0 })
        {
            // A call is only known once complete: run the whole reply and hand it over as updates.
            var whole = await GetResponseAsync(messages, options, cancellationToken);
            foreach (var u in whole.ToChatResponseUpdates()) yield return u;
            yield break;
        }
        var (request, promptTokens, _) = Prepare(messages, options);
        string id = JsonOutput.NewId("chatcmpl");
        int generated = 0;
        await foreach (var d in TextGeneration.StreamAsync(model, request, cancellationToken))
        {
            generated = d.CompletionTokens;
            if (d.Text.Length == 0 && d.FinishReason is null) continue;
            yield return new ChatResponseUpdate(ChatRole.Assistant, d.Text)
            {
                ModelId = model.Id, ResponseId = id, MessageId = id, CreatedAt = DateTimeOffset.UtcNow, FinishReason = Finish(d.FinishReason),
            };
        }
        cancellationToken.ThrowIfCancellationRequested();
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(Usage(promptTokens, generated))]) { ModelId = model.Id, ResponseId = id, MessageId = id };
    }

    (TextRequest Request, int PromptTokens, ToolSet? Tools) Prepare(IEnumerable<AiMessage> messages, ChatOptions? o)
    {
        ToolSet? tools = null;
        if (o?.Tools is { Count: > 0 })
        {
            var declared = new List<FunctionTool>();
            foreach (var t in o.Tools)
                declared.Add(t is AIFunctionDeclaration f ? new FunctionTool(f.Name, f.Description, f.JsonSchema.ValueKind == System.Text.Json.JsonValueKind.Object ? f.JsonSchema.GetRawText() : null)
                    : throw new NotSupportedException($"tool '{t.Name}' is not a function; only functions are supported"));
            string choice = o.ToolMode switch
            {
                NoneChatToolMode => "none",
                RequiredChatToolMode { RequiredFunctionName: { } name } => name,
                RequiredChatToolMode => "required",
                _ => "auto",
            };
            try { tools = ToolSet.Create(model, declared, choice); }
            catch (Inference.Constraints.ConstraintException e) { throw new ArgumentException($"invalid tools: {e.Message}", e); }
        }
        if (o?.ModelId is { } m && m != model.Id) throw new ArgumentException($"this client serves '{model.Id}', not '{m}'");

        var list = new List<TextMessage>();
        var images = new List<ChatImage>();
        if (o?.Instructions is { Length: > 0 } instructions) list.Add(new TextMessage("system", instructions));
        foreach (var msg in messages)
        {
            string role = msg.Role == ChatRole.System ? "system" : msg.Role == ChatRole.User ? "user" : msg.Role == ChatRole.Assistant ? "assistant" : msg.Role == ChatRole.Tool ? "tool"
                : throw new NotSupportedException($"chat role '{msg.Role}' is not supported (system, user, assistant and tool are)");
            var sb = new StringBuilder(msg.Text);
            var pending = new List<(byte[] Data, string Source)>();
            foreach (var c in msg.Contents)
            {
                if (c is DataContent data && data.HasTopLevelMediaType("image"))
                {
                    if (role != "user") throw new NotSupportedException($"images are supported in user messages only, not in a {role} message");
                    pending.Add((data.Data.ToArray(), $"messages[{list.Count}] image {pending.Count}"));
                    continue;
                }
                if (c is UriContent uri && uri.HasTopLevelMediaType("image"))
                    throw new ArgumentException($"image {uri.Uri} is a URL; this client fetches nothing from the network: pass the bytes as DataContent");
                if (c is FunctionCallContent call) sb.Append(ToolSet.Render(call.Name, System.Text.Json.JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>())));
                else if (c is FunctionResultContent result)
                {
                    // Each result is its own tool turn, as JSON.
                    list.Add(new TextMessage("tool", result.Result is string text && IsJson(text) ? text : System.Text.Json.JsonSerializer.Serialize(result.Result)));
                    continue;
                }
            }
            if (role != "tool" || sb.Length > 0) list.Add(new TextMessage(role, sb.ToString()));
            foreach (var (bytes, source) in pending) images.Add(new ChatImage(list[^1], bytes, source));
        }
        if (list.Count == 0) throw new ArgumentException("at least one message is needed");

        var sampling = new SamplingOptions
        {
            Temperature = o?.Temperature ?? 1f,
            TopP = o?.TopP ?? 1f,
            TopK = o?.TopK ?? 0,
            Seed = o?.Seed is { } seed ? unchecked((ulong)seed) : (ulong)Random.Shared.NextInt64(),
            FrequencyPenalty = o?.FrequencyPenalty ?? 0,
            PresencePenalty = o?.PresencePenalty ?? 0,
        }.Validate();
        var stops = o?.StopSequences is { } ss ? ss.ToArray() : [];
        if (stops.Length > GenerationParameters.MaxStops) throw new ArgumentException($"at most {GenerationParameters.MaxStops} stop sequences are allowed");
        if (o?.MaxOutputTokens is < 1) throw new ArgumentException($"max output tokens must be ≥ 1, got {o.MaxOutputTokens}");

        List<int> ids;
        int budget;
        float[]? vectors = null;
        int prefix = 0;
        if (images.Count > 0 && tools is not null) throw new ArgumentException("images cannot be combined with tools");
        try
        {
            var (templated, extra) = ToolSet.ForTemplate(model, list, tools);
            ids = ChatCompletionsEndpoint.Encode(model, templated, extra);
            if (images.Count > 0) (ids, vectors, prefix) = ChatImages.Build(model, ids, templated, images);
            budget = new GenerationParameters(o?.MaxOutputTokens, sampling, stops, false, false).Budget(ids.Count, model.ContextLength, int.MaxValue, "messages");
            if (tools is not null) sampling = tools.Apply(sampling, model, ids.Count, budget);
            else if (o?.ResponseFormat is ChatResponseFormatJson json)
            {
                var constraint = json.Schema is { } schema
                    ? StructuredOutput.Constraint(model, "schema:" + schema.GetRawText(), () => Inference.Constraints.JsonSchemaGrammar.Compile(schema.Clone()))
                    : StructuredOutput.Constraint(model, "json_object", Inference.Constraints.JsonSchemaGrammar.AnyObject);
                sampling = StructuredOutput.Apply(sampling, constraint, ids.Count, budget, model.ChatStopIds);
            }
        }
        catch (ApiException e)
        {
            throw new ArgumentException(e.Message, e);   // in-process callers get the ordinary exception type
        }
        catch (Inference.Constraints.ConstraintException e)
        {
            throw new ArgumentException($"invalid response format: {e.Message}", e);
        }
        return (new TextRequest(ids, budget, sampling, stops, model.ChatStopIds, 0) { InputVectors = vectors, PrefixLength = prefix }, ids.Count, tools);
    }

    static bool IsJson(string text)
    {
        try { using var _ = System.Text.Json.JsonDocument.Parse(text); return true; }
        catch (System.Text.Json.JsonException) { return false; }
    }

    static ChatFinishReason? Finish(string? reason) => reason switch
    {
        "stop" => ChatFinishReason.Stop,
        "length" => ChatFinishReason.Length,
        "tool_calls" => ChatFinishReason.ToolCalls,
        _ => null,
    };

    static UsageDetails Usage(int prompt, int completion) => new() { InputTokenCount = prompt, OutputTokenCount = completion, TotalTokenCount = prompt + completion };

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return metadata;
        if (serviceType == typeof(ServedModel)) return model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Nothing to release: the served model's engine belongs to whoever created it.</summary>
    public void Dispose() { }
}
