using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Tessera.Server;

/// <summary>
/// How responses are written: JSON built with <see cref="Utf8JsonWriter"/> (no reflection, the
/// field names are the wire names), sent whole or as server-sent events.
/// </summary>
public static class JsonOutput
{
    /// <summary>Opens a response object with the fields every OpenAI completion object starts with: id, object, created, model.</summary>
    public static void Header(Utf8JsonWriter w, string id, long created, string modelId, string obj)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("object", obj);
        w.WriteNumber("created", created);
        w.WriteString("model", modelId);
    }

    /// <summary>
    /// Writes a non-streamed chat completion's <c>choices</c>: one assistant message whose fields
    /// <paramref name="message"/> writes after <c>role</c>, its <c>logprobs</c> (null unless
    /// <paramref name="logprobs"/> writes the value) and <c>finish_reason</c>.
    /// </summary>
    public static void OneChatChoice(Utf8JsonWriter w, Action<Utf8JsonWriter> message, string? finish, Action<Utf8JsonWriter>? logprobs = null)
    {
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("message");
        w.WriteString("role", "assistant");
        message(w);
        w.WriteEndObject();
        w.WritePropertyName("logprobs");
        if (logprobs is null) w.WriteNullValue(); else logprobs(w);
        w.WriteString("finish_reason", finish);
        w.WriteEndObject();
        w.WriteEndArray();
    }

    /// <summary>
    /// The last chunk of a stream with <c>stream_options.include_usage</c>: the object header, an
    /// empty <c>choices</c> array and <c>usage</c>, plus whatever <paramref name="extra"/> writes.
    /// </summary>
    public static byte[] UsageChunk(string id, long created, string modelId, string obj, int promptTokens, int completionTokens, Action<Utf8JsonWriter>? extra = null)
        => Build(w =>
        {
            Header(w, id, created, modelId, obj);
            w.WriteStartArray("choices");
            w.WriteEndArray();
            CompletionsEndpoint.Usage(w, promptTokens, completionTokens);
            extra?.Invoke(w);
            w.WriteEndObject();
        });

    /// <summary>Builds one JSON value.</summary>
    public static byte[] Build(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) write(w);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Sends a complete JSON response.</summary>
    public static async Task SendAsync(HttpResponse response, byte[] json, CancellationToken cancel)
    {
        response.StatusCode = 200;
        response.ContentType = "application/json";
        response.ContentLength = json.Length;
        await response.Body.WriteAsync(json, cancel);
    }

    /// <summary>A log-probability as JSON can hold it: −∞ (a token the model rules out) becomes −9999, as OpenAI reports it.</summary>
    public static double Logprob(float lp) => float.IsFinite(lp) ? lp : -9999.0;

    /// <summary>A fresh response id such as <c>chatcmpl-…</c>.</summary>
    public static string NewId(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..24];
}

/// <summary>
/// A server-sent-event stream (<c>data: {json}</c> blocks ending with <c>data: [DONE]</c>), as the
/// OpenAI streaming endpoints send. Headers go out with the first event, so a request that fails
/// before producing anything still gets a normal JSON error.
/// </summary>
public sealed class SseStream(HttpResponse response, CancellationToken cancel)
{
    static readonly byte[] Prefix = "data: "u8.ToArray(), Suffix = "\n\n"u8.ToArray(), Done = "data: [DONE]\n\n"u8.ToArray();

    /// <summary>True once the headers (and at least one event) have been sent.</summary>
    public bool Started => response.HasStarted;

    /// <summary>Sends one event and flushes it to the client at once.</summary>
    public async Task SendAsync(byte[] json)
    {
        if (!response.HasStarted)
        {
            response.StatusCode = 200;
            response.ContentType = "text/event-stream; charset=utf-8";
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no";
        }
        await response.Body.WriteAsync(Prefix, cancel);
        await response.Body.WriteAsync(json, cancel);
        await response.Body.WriteAsync(Suffix, cancel);
        await response.Body.FlushAsync(cancel);
    }

    /// <summary>Sends the closing <c>data: [DONE]</c>.</summary>
    public async Task DoneAsync()
    {
        await response.Body.WriteAsync(Done, cancel);
        await response.Body.FlushAsync(cancel);
    }

    /// <summary>An error after events were sent can no longer change the status, so it goes out as an event.</summary>
    public async Task ErrorAsync(ApiException e)
    {
        await response.Body.WriteAsync(Encoding.UTF8.GetBytes("data: "), cancel);
        await response.Body.WriteAsync(e.ToJson(), cancel);
        await response.Body.WriteAsync(Suffix, cancel);
        await response.Body.FlushAsync(cancel);
    }
}
