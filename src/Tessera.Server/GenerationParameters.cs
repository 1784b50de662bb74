using System.Text.Json;
using Tessera.Inference;

namespace Tessera.Server;

/// <summary>
/// The request fields /v1/completions and /v1/chat/completions share — model, sampling, budget,
/// stop strings, streaming — read and checked in one place so both endpoints reject the same
/// mistakes the same way.
/// </summary>
public sealed record GenerationParameters(int? MaxTokens, SamplingOptions Sampling, IReadOnlyList<string> Stop, bool Stream, bool IncludeUsage)
{
    /// <summary>The server's per-request token cap, which also bounds the default budget.</summary>
    public int? Cap { get; init; }

    /// <summary>The <c>response_format</c> constraint (null: free text); see <see cref="StructuredOutput"/>.</summary>
    public Inference.Constraints.TokenConstraint? Constraint { get; init; }

    /// <summary>Choices to return (<c>n</c>).</summary>
    public int N { get; init; } = 1;
    /// <summary>Candidates generated, the best <see cref="N"/> returned (<c>best_of</c>, completions).</summary>
    public int BestOf { get; init; } = 1;
    /// <summary>Most choices (and best_of candidates) per request.</summary>
    public const int MaxChoices = 16;

    /// <summary>OpenAI's limit on stop sequences.</summary>
    public const int MaxStops = 4;

    /// <summary>Reads the shared fields. <paramref name="minTokens"/> is 1 for chat, 0 for completions (echo-only scoring); <paramref name="tools"/>: the endpoint handles <c>tools</c> itself.</summary>
    public static GenerationParameters Parse(JsonRequest req, ServedModel model, int minTokens, bool tools = false)
    {
        CheckModel(req, model);
        int n = (int)(req.Integer("n", 1, int.MaxValue) ?? 1);
        if (n > MaxChoices) throw ApiException.Invalid("n", $"n is {n}, more than this server's limit of {MaxChoices} choices per request - 'n'.");
        int bestOf = (int)(req.Integer("best_of", 1, int.MaxValue) ?? n);
        if (bestOf > MaxChoices) throw ApiException.Invalid("best_of", $"best_of is {bestOf}, more than this server's limit of {MaxChoices} candidates per request - 'best_of'.");
        if (bestOf < n) throw ApiException.Invalid("best_of", $"best_of ({bestOf}) must be at least n ({n}) - 'best_of'.");
        float frequency = (float)(req.Number("frequency_penalty", -2, 2) ?? 0), presence = (float)(req.Number("presence_penalty", -2, 2) ?? 0);
        var logitBias = ParseLogitBias(req, model);
        if (!tools && req.Field("tools") is { ValueKind: JsonValueKind.Array } toolList && toolList.GetArrayLength() > 0)
            throw ApiException.Unsupported("tools", "tools (function calling) are supported on /v1/chat/completions only.");
        var constraint = StructuredOutput.Parse(req, model);

        long? completion = req.Integer("max_completion_tokens", minTokens, int.MaxValue);
        long? legacy = req.Integer("max_tokens", minTokens, int.MaxValue);
        int? maxTokens = (int?)(completion ?? legacy);
        if (maxTokens > req.MaxTokensCap)
        {
            string name = completion is null ? "max_tokens" : "max_completion_tokens";
            throw ApiException.Invalid(name, $"{maxTokens} is more than this server's limit of {req.MaxTokensCap} completion tokens per request - '{name}'.");
        }

        var sampling = new SamplingOptions
        {
            Temperature = (float)(req.Number("temperature", 0, 2) ?? 1),
            TopP = (float)(req.Number("top_p", 0, 1) ?? 1),
            TopK = (int)(req.Integer("top_k", 0, int.MaxValue) ?? 0),
            MinP = (float)(req.Number("min_p", 0, 0.999999) ?? 0),
            // Without a seed each request must sample differently, so draw one; with a seed, replies repeat.
            Seed = req.Field("seed") is { } seed ? unchecked((ulong)JsonRequest.IntegerValue(seed, "seed", long.MinValue, long.MaxValue)) : (ulong)Random.Shared.NextInt64(),
            LogitBias = logitBias,
            FrequencyPenalty = frequency,
            PresencePenalty = presence,
        };
        if (sampling.TopP <= 0) throw ApiException.Invalid("top_p", "top_p must be greater than 0 - 'top_p'.");

        bool stream = req.Bool("stream") ?? false;
        bool includeUsage = false;
        if (req.Field("stream_options") is { } so)
        {
            if (so.ValueKind != JsonValueKind.Object) throw JsonRequest.WrongType("stream_options", so, "an object");
            if (!stream) throw ApiException.Invalid("stream_options", "stream_options is only allowed when stream is true.");
            if (so.TryGetProperty("include_usage", out var iu) && iu.ValueKind != JsonValueKind.Null)
                includeUsage = iu.ValueKind is JsonValueKind.True or JsonValueKind.False ? iu.GetBoolean() : throw JsonRequest.WrongType("stream_options.include_usage", iu, "a boolean");
        }
        return new GenerationParameters(maxTokens, sampling, ParseStop(req), stream, includeUsage) { Cap = req.MaxTokensCap, Constraint = constraint, N = n, BestOf = bestOf };
    }

    /// <summary>404 <c>model_not_found</c> unless <c>model</c> names the served model.</summary>
    public static void CheckModel(JsonRequest req, ServedModel model)
    {
        string name = req.String("model") ?? throw new ApiException(400, "Missing required parameter: 'model'.", param: "model", code: "missing_required_parameter");
        if (name != model.Id && name != req.ModelAlias)
            throw new ApiException(404, $"The model '{name}' does not exist; this server serves '{model.Id}'.", param: "model", code: "model_not_found");
    }

    /// <summary>
    /// The token budget for a prompt of <paramref name="promptTokens"/>: the request's, which must fit
    /// the context with the prompt, or the default capped by what is left of the context.
    /// </summary>
    public int Budget(int promptTokens, int contextLength, int defaultTokens, string promptParam)
    {
        int room = contextLength - promptTokens;
        if (room < 0 || (MaxTokens is { } m && m > room) || (MaxTokens is null && room == 0 && defaultTokens > 0))
        {
            string requested = MaxTokens is { } r ? $"However, you requested {(long)promptTokens + r} tokens ({promptTokens} in the prompt, {r} for the completion)." :
                $"However, the prompt has {promptTokens} tokens, which leaves no room for a completion.";
            throw new ApiException(400, $"This model's maximum context length is {contextLength} tokens. {requested} Please reduce the prompt or the completion length.",
                param: promptParam, code: "context_length_exceeded");
        }
        return MaxTokens ?? Math.Min(Math.Min(defaultTokens, room), Cap ?? int.MaxValue);
    }

    static IReadOnlyList<string> ParseStop(JsonRequest req)
    {
        if (req.Field("stop") is not { } v) return [];
        var stops = new List<string>();
        if (v.ValueKind == JsonValueKind.String) stops.Add(v.GetString()!);
        else if (v.ValueKind == JsonValueKind.Array)
        {
            foreach (var s in v.EnumerateArray())
                stops.Add(s.ValueKind == JsonValueKind.String ? s.GetString()! : throw JsonRequest.WrongType("stop", s, "a string"));
        }
        else throw JsonRequest.WrongType("stop", v, "a string or an array of strings");
        if (stops.Count > MaxStops) throw ApiException.Invalid("stop", $"At most {MaxStops} stop sequences are allowed, got {stops.Count} - 'stop'.");
        foreach (var s in stops) if (s.Length == 0) throw ApiException.Invalid("stop", "Stop sequences must be non-empty strings - 'stop'.");
        return stops;
    }

    /// <summary>
    /// logit_bias: an object mapping token ids (as strings) to biases in [-100, 100], added to those
    /// logits before sampling (OpenAI's semantics). A bogus map is a 400 naming the bad entry; an
    /// empty map is the same as none.
    /// </summary>
    static IReadOnlyDictionary<int, float>? ParseLogitBias(JsonRequest req, ServedModel model)
    {
        if (req.Field("logit_bias") is not { } v || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Object) throw JsonRequest.WrongType("logit_bias", v, "an object mapping token ids to biases");
        var bias = new Dictionary<int, float>();
        foreach (var p in v.EnumerateObject())
        {
            if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id) || id >= model.Engine.Config.VocabSize)
                throw ApiException.Invalid("logit_bias", $"Invalid key '{p.Name}' in logit_bias: keys must be token ids in [0, {model.Engine.Config.VocabSize}).");
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out double b) || b < -100 || b > 100)
                throw ApiException.Invalid("logit_bias", $"Invalid bias {p.Value.GetRawText()} for token {id} in logit_bias: biases must be numbers in [-100, 100].");
            bias[id] = (float)b;
        }
        return bias.Count == 0 ? null : bias;
    }
}
