using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Tessera.Thinking;
using Tessera.Inference;
using Tessera.Text;

namespace Tessera.Server;

/// <summary>
/// The <c>tessera_think</c> extension of /v1/chat/completions: spend test-time compute on one
/// answer. <c>{"strategy":"verify","n":16,"calculator":true,"temperature":0.8}</c> runs a
/// <see cref="ThinkStrategy"/> (greedy, vote, verify, score, revise) over n samples (seed + i,
/// sharing the prompt's KV blocks) with the in-process <see cref="Calculator"/> evaluating
/// <c>&lt;&lt;expr=</c> calls mid-generation. Completions end at a newline (the dial's answers are
/// one line); the verifier checks steps against the numbers of the last user message. The reply
/// is one choice, the chosen completion; <c>tessera_think</c> in the response reports the answer,
/// the completions drawn and the calculator's errors; usage counts every token the model
/// processed. Not combined with stream, n, best_of, tools, response_format or logprobs (400).
/// </summary>
public static class ThinkingRequests
{
    /// <summary>The options of a request's <c>tessera_think</c> field, or null when it has none; a 400 for a malformed one.</summary>
    public static ThinkOptions? Parse(JsonRequest req, GenerationParameters p)
    {
        if (req.Field("tessera_think") is not { } v) return null;
        const string name = "tessera_think";
        if (v.ValueKind != JsonValueKind.Object) throw JsonRequest.WrongType(name, v, "an object");
        foreach (var other in new[] { "tools", "response_format", "logprobs" })
            if (req.Field(other) is { } o && o.ValueKind != JsonValueKind.False)
                throw ApiException.Unsupported(name, $"tessera_think cannot be combined with '{other}' - '{name}'.");
        if (p.Stream) throw ApiException.Unsupported(name, $"tessera_think cannot be streamed - '{name}'.");
        if (p.N > 1 || p.BestOf > 1) throw ApiException.Unsupported(name, $"tessera_think sets its own sample count; use tessera_think.n instead of n or best_of - '{name}'.");
        ThinkStrategy strategy = ThinkStrategy.Greedy;
        int n = 1;
        bool calculator = false, search = false;
        float temperature = 0.8f;
        foreach (var prop in v.EnumerateObject())
        {
            string at = $"{name}.{prop.Name}";
            switch (prop.Name)
            {
                case "strategy":
                    if (prop.Value.ValueKind != JsonValueKind.String) throw JsonRequest.WrongType(at, prop.Value, "a string");
                    try { strategy = ThinkOptions.ParseStrategy(prop.Value.GetString()!); }
                    catch (ArgumentException e) { throw ApiException.Invalid(at, $"{e.Message} - '{at}'."); }
                    break;
                case "n": n = (int)JsonRequest.IntegerValue(prop.Value, at, 1, ThinkOptions.MaxN); break;
                case "calculator":
                    calculator = prop.Value.ValueKind is JsonValueKind.True or JsonValueKind.False ? prop.Value.GetBoolean() : throw JsonRequest.WrongType(at, prop.Value, "a boolean");
                    break;
                case "search":
                    search = prop.Value.ValueKind is JsonValueKind.True or JsonValueKind.False ? prop.Value.GetBoolean() : throw JsonRequest.WrongType(at, prop.Value, "a boolean");
                    break;
                case "temperature":
                    if (prop.Value.ValueKind != JsonValueKind.Number || !prop.Value.TryGetDouble(out double t)) throw JsonRequest.WrongType(at, prop.Value, "a number");
                    if (!(t > 0 && t <= 2)) throw ApiException.Invalid(at, $"{t} is outside the allowed range (0, 2] - '{at}'.");
                    temperature = (float)t;
                    break;
                default: throw ApiException.Invalid(at, $"Unknown field '{prop.Name}'; tessera_think takes strategy, n, calculator, search and temperature - '{at}'.");
            }
        }
        return new ThinkOptions(strategy, n, calculator) { Temperature = temperature, Seed = p.Sampling.Seed, Search = search };
    }

    /// <summary>Runs the strategy on the rendered conversation and sends the chat completion.</summary>
    public static async Task HandleAsync(HttpContext ctx, ServedModel model, IReadOnlyList<ChatMessage> messages, IReadOnlyList<int> ids, int budget,
        ThinkOptions options, CancellationToken cancel, IReadOnlyList<RetrievedPassage>? citations = null)
    {
        options = options with { MaxNewTokens = Math.Min(budget, 4096) };
        if (options.Search && model.Retriever is null)
            throw ApiException.Invalid("tessera_think.search", "tessera_think.search needs a retrieval index; start the server with --index - 'tessera_think.search'.");
        string lastUser = messages.LastOrDefault(m => m.Role == "user")?.Content ?? "";
        var decoder = new ToolDecoder(model.Engine, model.Tokenizer, model.ChatStopIds, options.Search ? new RetrieverSearchTool(model.Retriever!) : null);
        var result = await Dial.RunAsync(decoder, ids, TraceChecker.NumbersIn(lastUser), options, cancel);
        cancel.ThrowIfCancellationRequested();
        var chosen = result.Chosen;
        string reply = chosen.Text.TrimEnd('\n');
        bool verified = TraceChecker.Check(TraceChecker.NumbersIn(lastUser), chosen.Text).Verified;
        string id = JsonOutput.NewId("chatcmpl");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w =>
        {
            JsonOutput.Header(w, id, created, model.Id, "chat.completion");
            JsonOutput.OneChatChoice(w, m => m.WriteString("content", reply), chosen.Text.EndsWith('\n') ? "stop" : "length");
            CompletionsEndpoint.Usage(w, ids.Count, (int)Math.Min(int.MaxValue, result.Tokens - ids.Count));
            w.WriteStartObject("tessera_think");
            w.WriteString("strategy", options.Strategy.ToString().ToLowerInvariant());
            w.WriteNumber("n", options.N);
            w.WriteBoolean("calculator", options.Calculator);
            if (result.Answer is { } a) w.WriteString("answer", Calculator.Format(a)); else w.WriteNull("answer");
            w.WriteBoolean("verified", verified);
            w.WriteNumber("completions", result.Samples.Count);
            w.WriteBoolean("search", options.Search);
            w.WriteNumber("calculator_calls", result.Samples.Sum(s => s.Calls - s.SearchCalls));
            w.WriteNumber("search_calls", result.Samples.Sum(s => s.SearchCalls));
            w.WriteStartArray("calculator_errors");
            foreach (var e in result.Samples.SelectMany(s => s.CallErrors).Where(e => !e.StartsWith(ToolDecoder.SearchPrefix, StringComparison.Ordinal)).Distinct().Take(8)) w.WriteStringValue(e);
            w.WriteEndArray();
            w.WriteStartArray("search_errors");
            foreach (var e in result.Samples.SelectMany(s => s.CallErrors).Where(e => e.StartsWith(ToolDecoder.SearchPrefix, StringComparison.Ordinal)).Distinct().Take(8)) w.WriteStringValue(e);
            w.WriteEndArray();
            w.WriteEndObject();
            // The passages in the prompt (serve --index), then those the chosen completion's search calls wrote into its context.
            ChatRetrieval.Write(w, [.. citations ?? [], .. chosen.Passages.Select(q => new RetrievedPassage(q.DocumentId, q.Start, q.Length, q.Text))]);
            w.WriteEndObject();
        }), cancel);
    }
}
