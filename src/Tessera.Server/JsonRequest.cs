using System.Text.Json;
using System.Text.Unicode;
using Microsoft.AspNetCore.Http;

namespace Tessera.Server;

/// <summary>
/// A request body parsed as a JSON object, with typed field readers that reject a wrong type or
/// range with a 400 naming the field. Absent and <c>null</c> fields read as "not given".
/// </summary>
public sealed class JsonRequest : IDisposable
{
    /// <summary>Largest body accepted (a full context of text is far smaller).</summary>
    public const int MaxBodyBytes = 8 << 20;

    readonly JsonDocument document;

    JsonRequest(JsonDocument document) => this.document = document;

    /// <summary>The top-level object.</summary>
    public JsonElement Root => document.RootElement;

    /// <summary>Reads and parses the body: too large → 413, not UTF-8 or not a JSON object → 400.</summary>
    public static async Task<JsonRequest> ReadAsync(HttpRequest request, CancellationToken cancel)
    {
        if (request.ContentLength > MaxBodyBytes) throw TooLarge();
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int n;
        while ((n = await request.Body.ReadAsync(chunk, cancel)) > 0)
        {
            if (buffer.Length + n > MaxBodyBytes) throw TooLarge();
            buffer.Write(chunk, 0, n);
        }
        return Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
    }

    /// <summary>Parses a body already in memory (the same checks as <see cref="ReadAsync"/>).</summary>
    public static JsonRequest Parse(ReadOnlyMemory<byte> body)
    {
        // Checked up front: System.Text.Json only notices bad UTF-8 inside strings when they are read.
        if (!Utf8.IsValid(body.Span)) throw new ApiException(400, "The request body is not valid UTF-8.", code: "invalid_encoding");
        if (body.IsEmpty) throw new ApiException(400, "The request body is empty; send a JSON object.", code: "invalid_json");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 }); }
        catch (JsonException e)
        {
            throw new ApiException(400, $"We could not parse the JSON body of your request ({e.Message}).", code: "invalid_json");
        }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new ApiException(400, "The request body must be a JSON object.", code: "invalid_json");
        }
        return new JsonRequest(doc);
    }

    static ApiException TooLarge() => new(413, $"The request body is larger than {MaxBodyBytes} bytes.", code: "request_too_large");

    /// <summary>The field, or null when it is absent or JSON <c>null</c>.</summary>
    public JsonElement? Field(string name)
        => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    /// <summary>A required field.</summary>
    public JsonElement Required(string name)
        => Field(name) ?? throw new ApiException(400, $"Missing required parameter: '{name}'.", param: name, code: "missing_required_parameter");

    /// <summary>A string field.</summary>
    public string? String(string name) => Field(name) is not { } v ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString() : throw WrongType(name, v, "a string");

    /// <summary>A boolean field.</summary>
    public bool? Bool(string name) => Field(name) is not { } v ? null
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw WrongType(name, v, "a boolean");

    /// <summary>A number field within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public double? Number(string name, double min, double max)
    {
        if (Field(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d)) throw WrongType(name, v, "a number");
        if (!(d >= min && d <= max)) throw ApiException.Invalid(name, $"{d} is outside the allowed range [{min}, {max}] - '{name}'.");
        return d;
    }

    /// <summary>An integer field within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public long? Integer(string name, long min, long max)
    {
        if (Field(name) is not { } v) return null;
        return IntegerValue(v, name, min, max);
    }

    /// <summary>Reads <paramref name="v"/> as an integer in range, naming <paramref name="name"/> on failure.</summary>
    public static long IntegerValue(JsonElement v, string name, long min, long max)
    {
        if (v.ValueKind != JsonValueKind.Number) throw WrongType(name, v, "an integer");
        if (!v.TryGetInt64(out long n))
        {
            // An integer-valued number too big for 64 bits is out of range, not of the wrong type.
            if (v.TryGetDouble(out double d) && Math.Floor(d) == d) throw ApiException.Invalid(name, $"{v.GetRawText()} is outside the allowed range [{min}, {max}] - '{name}'.");
            throw WrongType(name, v, "an integer");
        }
        if (n < min || n > max) throw ApiException.Invalid(name, $"{n} is outside the allowed range [{min}, {max}] - '{name}'.");
        return n;
    }

    /// <summary>The 400 for a value of the wrong JSON type.</summary>
    public static ApiException WrongType(string name, JsonElement v, string expected)
    {
        string shown = v.GetRawText();
        if (shown.Length > 60) shown = shown[..60] + "…";
        return ApiException.Invalid(name, $"{shown} is not {expected} - '{name}'.", "invalid_type");
    }

    public void Dispose() => document.Dispose();
}
