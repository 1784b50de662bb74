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
/// temperature, top-p, top-k, max output tokens, seed, stop sequences; tools and penalties are
/// refused with <see cref="NotSupportedException"/> rather than ignored.
/// </summary>
public sealed class TesseraChatClient(ServedModel model) : IChatClient
{
    readonly ChatClientMetadata metadata = new("tessera", null, model.Id);

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (request, promptTokens) = Prepare(messages, options);
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
        return new ChatResponse(new AiMessage(ChatRole.Assistant, text.ToString()))
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
        var (request, promptTokens) = Prepare(messages, options);
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

    (TextRequest Request, int PromptTokens) Prepare(IEnumerable<AiMessage> messages, ChatOptions? o)
    {
        if (o?.Tools is { Count: > 0 }) throw new NotSupportedException("tools (function calling) are not supported by Tessera's chat client");
        if (o?.FrequencyPenalty is { } fp && fp != 0 || o?.PresencePenalty is { } pp && pp != 0)
            throw new NotSupportedException("frequency and presence penalties are not supported by Tessera's engine");
        if (o?.ModelId is { } m && m != model.Id) throw new ArgumentException($"this client serves '{model.Id}', not '{m}'");

        var list = new List<TextMessage>();
        if (o?.Instructions is { Length: > 0 } instructions) list.Add(new TextMessage("system", instructions));
        foreach (var msg in messages)
        {
            string role = msg.Role == ChatRole.System ? "system" : msg.Role == ChatRole.User ? "user" : msg.Role == ChatRole.Assistant ? "assistant"
                : throw new NotSupportedException($"chat role '{msg.Role}' is not supported (system, user and assistant are)");
            list.Add(new TextMessage(role, msg.Text));
        }
        if (list.Count == 0) throw new ArgumentException("at least one message is needed");

        var sampling = new SamplingOptions
        {
            Temperature = o?.Temperature ?? 1f,
            TopP = o?.TopP ?? 1f,
            TopK = o?.TopK ?? 0,
            Seed = o?.Seed is { } seed ? unchecked((ulong)seed) : (ulong)Random.Shared.NextInt64(),
        }.Validate();
        var stops = o?.StopSequences is { } ss ? ss.ToArray() : [];
        if (stops.Length > GenerationParameters.MaxStops) throw new ArgumentException($"at most {GenerationParameters.MaxStops} stop sequences are allowed");
        if (o?.MaxOutputTokens is < 1) throw new ArgumentException($"max output tokens must be ≥ 1, got {o.MaxOutputTokens}");

        List<int> ids;
        int budget;
        try
        {
            ids = ChatCompletionsEndpoint.Encode(model, list);
            budget = new GenerationParameters(o?.MaxOutputTokens, sampling, stops, false, false).Budget(ids.Count, model.ContextLength, int.MaxValue, "messages");
        }
        catch (ApiException e)
        {
            throw new ArgumentException(e.Message, e);   // in-process callers get the ordinary exception type
        }
        return (new TextRequest(ids, budget, sampling, stops, model.ChatStopIds, 0), ids.Count);
    }

    static ChatFinishReason? Finish(string? reason) => reason switch
    {
        "stop" => ChatFinishReason.Stop,
        "length" => ChatFinishReason.Length,
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
