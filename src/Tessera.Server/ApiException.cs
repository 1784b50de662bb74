using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Tessera.Server;

/// <summary>
/// A rejected request, carried to the response as OpenAI-style error JSON:
/// <c>{"error":{"message","type","param","code"}}</c>. Handlers throw it; <see cref="TesseraServer"/>
/// writes it, so every rejection has the same shape whatever the endpoint.
/// </summary>
public sealed class ApiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    /// <summary>HTTP status code (4xx for the client's mistakes, 5xx for ours).</summary>
    public int Status { get; } = status;
    /// <summary>OpenAI error type, e.g. <c>invalid_request_error</c>.</summary>
    public string Type { get; } = type;
    /// <summary>The request field at fault, if one is.</summary>
    public string? Param { get; } = param;
    /// <summary>A machine-readable code, e.g. <c>model_not_found</c> or <c>context_length_exceeded</c>.</summary>
    public string? Code { get; } = code;

    /// <summary>400 for a field with a wrong value or type.</summary>
    public static ApiException Invalid(string param, string message, string code = "invalid_value") => new(400, message, param: param, code: code);

    /// <summary>400 for a parameter this server understands but cannot honour.</summary>
    public static ApiException Unsupported(string param, string message) => new(400, message, param: param, code: "unsupported_parameter");

    /// <summary>
    /// How the server answers a failure: its own <see cref="ApiException"/>s as they are, Kestrel's
    /// <see cref="BadHttpRequestException"/> (body too large or too slow) with its status, the
    /// engine's <see cref="ArgumentException"/>s as 400, and anything else as a 500 (a bug: the
    /// fuzz harness treats it as a crash).
    /// </summary>
    public static ApiException From(Exception e) => e switch
    {
        ApiException a => a,
        BadHttpRequestException b => new ApiException(b.StatusCode, b.Message, code: b.StatusCode == 413 ? "request_too_large" : "bad_request"),
        ArgumentException a => new ApiException(400, a.Message),
        _ => new ApiException(500, $"The server failed: {e.Message}", type: "server_error", code: "internal_error"),
    };

    /// <summary>Writes the error JSON (unless the response has already started, when only the status can no longer change).</summary>
    public async Task WriteAsync(HttpResponse response)
    {
        if (response.HasStarted) return;
        response.StatusCode = Status;
        response.ContentType = "application/json";
        await response.Body.WriteAsync(ToJson());
    }

    /// <summary>The error body as UTF-8 JSON.</summary>
    public byte[] ToJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("error");
            w.WriteString("message", Message);
            w.WriteString("type", Type);
            w.WriteString("param", Param);
            w.WriteString("code", Code);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
