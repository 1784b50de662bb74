using System.Buffers;
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
    byte[]? pooled;   // the body buffer the document reads, returned to the pool with it

    JsonRequest(JsonDocument document) => this.document = document;

    /// <summary>The top-level object.</summary>
    public JsonElement Root => document.RootElement;

    /// <summary>The server's cap on completion tokens per request (null: only the context limits it).</summary>
    public int? MaxTokensCap { get; private set; }

    /// <summary>A second name <c>model</c> may carry: the cascade's id when a <see cref="Cascade"/> routed the request to one of its models.</summary>
    public string? ModelAlias { get; set; }

    /// <summary>
    /// Reads and parses the body: larger than the server's body limit (<see cref="RequestLimits"/>,
    /// else <see cref="MaxBodyBytes"/>) → 413, not UTF-8 or not a JSON object → 400.
    /// </summary>
    public static async Task<JsonRequest> ReadAsync(HttpRequest request, CancellationToken cancel)
    {
        var limits = request.HttpContext.Features.Get<RequestLimits>();
        long limit = Math.Min(limits?.MaxBodyBytes ?? MaxBodyBytes, Array.MaxLength);
        if (request.ContentLength > limit) throw TooLarge(limit);
        // The body goes into a pooled buffer (sized from Content-Length when it is sent), which the
        // parsed document reads in place and Dispose returns: a large prompt costs no fresh
        // large-object-heap arrays per request, which would force full collections under load.
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Clamp(request.ContentLength + 1 ?? 16384, 1, limit + 1));
        int length = 0;
        try
        {
            int n;
            while ((n = await request.Body.ReadAsync(buffer.AsMemory(length), cancel)) > 0)
            {
                length += n;
                if (length > limit) throw TooLarge(limit);
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(2L * buffer.Length, limit + 1));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
            }
            var parsed = Parse(buffer.AsMemory(0, length));
            parsed.MaxTokensCap = limits?.MaxTokens;
            parsed.pooled = buffer;
            return parsed;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>Parses a body already in memory (the same checks as <see cref="ReadAsync"/>).</summary>
    public static JsonRequest Parse(ReadOnlyMemory<byte> body)
    {
        // Checked up front: System.Text.Json only notices bad UTF-8 inside strings when they are read.
        // Duplicate keys are refused: "last one wins" lets a proxy that checks the first copy and this
        // server that reads the last disagree about what was asked.
        if (!Utf8.IsValid(body.Span)) throw new ApiException(400, "The request body is not valid UTF-8.", code: "invalid_encoding");
        if (body.IsEmpty) throw new ApiException(400, "The request body is empty; send a JSON object.", code: "invalid_json");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64, AllowDuplicateProperties = false }); }
        catch (JsonException e)
        {
            throw new ApiException(400, $"We could not parse the JSON body of your request ({e.Message}).", code: "invalid_json");
        }
        catch (InvalidOperationException)
        {
            // The duplicate-key check compares property names and throws when one is a lone surrogate escape.
            throw new ApiException(400, "The request body has a property name with an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF); such text has no UTF-8 form.", code: "invalid_encoding");
        }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new ApiException(400, "The request body must be a JSON object.", code: "invalid_json");
        }
        if (FindUnpairedSurrogate(body.Span) is { } at)
        {
            doc.Dispose();
            throw new ApiException(400, $"The request body has a string with an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF) at byte {at}; such text has no UTF-8 form.",
                code: "invalid_encoding");
        }
        return new JsonRequest(doc);
    }

    /// <summary>
    /// The byte offset of the first string (value or property name) holding an escaped lone
    /// surrogate such as <c>"\ud800"</c>: valid JSON syntax, but System.Text.Json cannot decode it
    /// and throws when the string is read, which surfaced later as a 500. Checked once, up front,
    /// over the bytes already known to be a well-formed document.
    /// </summary>
    static long? FindUnpairedSurrogate(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
            // Values throw on a lone surrogate; property names decode leniently (keeping the lone
            // UTF-16 unit) and only throw later, when a lookup compares them. Check both ways.
            string? text;
            try { text = reader.GetString(); }
            catch (InvalidOperationException) { return reader.TokenStartIndex; }
            if (text is not null && HasLoneSurrogate(text)) return reader.TokenStartIndex;
        }
        return null;
    }

    static bool HasLoneSurrogate(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            else if (char.IsSurrogate(s[i])) return true;
        }
        return false;
    }

    static ApiException TooLarge(long limit) => new(413, $"The request body is larger than {limit} bytes.", code: "request_too_large");

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

    /// <summary>Releases the parsed JSON document and the body buffer it reads.</summary>
    public void Dispose()
    {
        document.Dispose();
        if (Interlocked.Exchange(ref pooled, null) is { } b) ArrayPool<byte>.Shared.Return(b);
    }
}

/// <summary>Per-request limits the server attaches as an HTTP feature for the endpoints to honour.</summary>
public sealed record RequestLimits(long MaxBodyBytes, int? MaxTokens);
