using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Tessera.Server;

/// <summary>
/// POST /v1/embeddings: the engine's mean-pooled, L2-normalised final hidden state for each input
/// (text gets BOS in front; token-id inputs are used as sent). <c>encoding_format</c> may be
/// <c>float</c> or <c>base64</c> (little-endian float32, what the official clients ask for).
/// </summary>
public static class EmbeddingsEndpoint
{
    /// <summary>OpenAI's limit on inputs per request.</summary>
    public const int MaxInputs = 2048;

    /// <summary>Handles one request; throws <see cref="ApiException"/> for a bad one.</summary>
    public static async Task HandleAsync(HttpContext ctx, ServedModel model, CancellationToken cancel)
    {
        using var req = await JsonRequest.ReadAsync(ctx.Request, cancel);
        GenerationParameters.CheckModel(req, model);
        string format = req.String("encoding_format") ?? "float";
        if (format is not ("float" or "base64"))
            throw ApiException.Invalid("encoding_format", $"encoding_format must be 'float' or 'base64', got '{format}' - 'encoding_format'.");
        int dim = model.Engine.Config.Dim;
        if (req.Integer("dimensions", 1, int.MaxValue) is { } d && d != dim)
            throw ApiException.Unsupported("dimensions", $"This model's embeddings have {dim} dimensions and cannot be shortened; leave dimensions unset or {dim}.");

        var inputs = ReadInputs(req, model);
        int tokens = 0;
        foreach (var ids in inputs)
        {
            if (ids.Count > model.ContextLength)
                throw new ApiException(400, $"This model's maximum context length is {model.ContextLength} tokens, but an input has {ids.Count}.", param: "input", code: "context_length_exceeded");
            if (ids.Count == 0) throw ApiException.Invalid("input", "An input is empty - 'input'.");
            tokens += ids.Count;
        }
        var vectors = new float[inputs.Count][];
        for (int i = 0; i < inputs.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            vectors[i] = model.Engine.Embed(inputs[i]);
        }
        await JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            for (int i = 0; i < vectors.Length; i++)
            {
                w.WriteStartObject();
                w.WriteString("object", "embedding");
                w.WriteNumber("index", i);
                if (format == "base64") w.WriteString("embedding", Convert.ToBase64String(MemoryMarshal.AsBytes(vectors[i].AsSpan())));
                else
                {
                    w.WriteStartArray("embedding");
                    foreach (float x in vectors[i]) w.WriteNumberValue(x);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("model", model.Id);
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", tokens);
            w.WriteNumber("total_tokens", tokens);
            w.WriteEndObject();
            w.WriteEndObject();
        }), cancel);
    }

    /// <summary>input: a string, an array of strings, an array of token ids, or an array of such arrays.</summary>
    static List<List<int>> ReadInputs(JsonRequest req, ServedModel model)
    {
        var v = req.Required("input");
        var result = new List<List<int>>();
        if (v.ValueKind == JsonValueKind.String) { result.Add(model.EncodePrompt(v.GetString()!)); return result; }
        if (v.ValueKind != JsonValueKind.Array) throw JsonRequest.WrongType("input", v, "a string or an array");
        if (v.GetArrayLength() == 0) throw ApiException.Invalid("input", "input must not be an empty array - 'input'.");
        if (v.GetArrayLength() > MaxInputs) throw ApiException.Invalid("input", $"At most {MaxInputs} inputs per request, got {v.GetArrayLength()} - 'input'.");
        if (v[0].ValueKind == JsonValueKind.Number) { result.Add(Ids(v, model)); return result; }
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.String) result.Add(model.EncodePrompt(e.GetString()!));
            else if (e.ValueKind == JsonValueKind.Array) result.Add(Ids(e, model));
            else throw JsonRequest.WrongType("input", e, "a string or an array of token ids");
        }
        return result;
    }

    static List<int> Ids(JsonElement array, ServedModel model)
    {
        var ids = new List<int>(array.GetArrayLength());
        foreach (var e in array.EnumerateArray()) ids.Add((int)JsonRequest.IntegerValue(e, "input", 0, model.Engine.Config.VocabSize - 1));
        return ids;
    }
}
