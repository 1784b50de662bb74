using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Tessera.Inference;
using Tessera.Inference.Constraints;
using Tessera.Text;

namespace Tessera.Server;

/// <summary>One function the model may call: its name, description and JSON-schema parameters (raw JSON, null: no parameters).</summary>
public sealed record FunctionTool(string Name, string? Description, string? Parameters);

/// <summary>A call the model made: id, function name and the arguments as JSON text.</summary>
public sealed record ToolCall(string Id, string Name, string Arguments);

/// <summary>
/// OpenAI function calling over a model that knows nothing of it. The tools are described to the
/// model in a system message (Tessera's format) or through the model's own chat template when the
/// template reads <c>tools</c>; a call is written
/// <c>&lt;tool_call&gt;{"name":…,"arguments":{…}}&lt;/tool_call&gt;</c> (Qwen's convention) and is
/// constrained to the functions' schemas, so its arguments always validate. tool_choice
/// <c>required</c> or a named function constrain the whole reply to a call; <c>auto</c> leaves the
/// model free until it starts one (<see cref="TriggeredLogits"/>); <c>none</c> is plain chat. One
/// call per reply.
/// </summary>
public sealed class ToolSet
{
    /// <summary>The bytes that open a call.</summary>
    public const string Open = "<tool_call>";
    /// <summary>The bytes that close a call.</summary>
    public const string Close = "</tool_call>";
    /// <summary>Most tools per request (OpenAI's limit).</summary>
    public const int MaxTools = 128;

    ToolSet(IReadOnlyList<FunctionTool> tools, string choice, TokenConstraint? constraint)
    {
        Tools = tools; Choice = choice; Constraint = constraint;
    }

    /// <summary>The declared functions.</summary>
    public IReadOnlyList<FunctionTool> Tools { get; }
    /// <summary><c>auto</c>, <c>required</c>, <c>none</c>, or the name of the one function to call.</summary>
    public string Choice { get; }
    /// <summary>The grammar of a call to the allowed functions (null for <c>none</c>).</summary>
    public TokenConstraint? Constraint { get; }
    /// <summary>True when the reply must be a call.</summary>
    public bool Forced => Choice != "auto" && Choice != "none";

    /// <summary>Builds a tool set from declarations (shared by the HTTP endpoint and <see cref="TesseraChatClient"/>); throws <see cref="ConstraintException"/> for a bad schema.</summary>
    public static ToolSet Create(ServedModel model, IReadOnlyList<FunctionTool> tools, string choice)
    {
        if (choice != "auto" && choice != "none" && choice != "required" && !tools.Any(t => t.Name == choice))
            throw new ConstraintException($"tool_choice names the function '{choice}', which is not among the tools.");
        TokenConstraint? constraint = null;
        if (choice != "none")
        {
            var allowed = tools.Where(t => choice is "auto" or "required" || t.Name == choice).ToList();
            string key = "tools:" + choice + ":" + JsonSerializer.Serialize(allowed.Select(t => new[] { t.Name, t.Parameters }));
            constraint = StructuredOutput.Constraint(model, key, () => CallGrammar(allowed));
        }
        return new ToolSet(tools, choice, constraint);
    }

    static Grammar CallGrammar(IReadOnlyList<FunctionTool> tools)
    {
        var calls = new List<GrammarNode>();
        foreach (var t in tools)
        {
            GrammarNode args;
            try { args = t.Parameters is null ? new LiteralNode("{}"u8.ToArray()) : JsonSchemaGrammar.Compile(t.Parameters).Root; }
            catch (ConstraintException e) { throw new ConstraintException($"the parameters of function '{t.Name}': {e.Message}"); }
            calls.Add(new SequenceNode([Lit("{\"name\":" + JsonSerializer.Serialize(t.Name) + ",\"arguments\":"), args, Lit("}")]));
        }
        return new Grammar(new SequenceNode([Lit(Open), new ChoiceNode([.. calls]), Lit(Close)]), "the tool-call grammar");
    }

    static LiteralNode Lit(string s) => new(Encoding.UTF8.GetBytes(s));

    /// <summary>Reads <c>tools</c> and <c>tool_choice</c>; null when no tools are given. 400 for malformed ones.</summary>
    public static ToolSet? Parse(JsonRequest req, ServedModel model)
    {
        var list = new List<FunctionTool>();
        if (req.Field("tools") is { } tv)
        {
            if (tv.ValueKind != JsonValueKind.Array) throw JsonRequest.WrongType("tools", tv, "an array");
            if (tv.GetArrayLength() > MaxTools) throw ApiException.Invalid("tools", $"At most {MaxTools} tools are allowed, got {tv.GetArrayLength()} - 'tools'.");
            int i = 0;
            foreach (var t in tv.EnumerateArray())
            {
                string at = $"tools[{i++}]";
                if (t.ValueKind != JsonValueKind.Object) throw JsonRequest.WrongType(at, t, "an object");
                if (!t.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "function")
                    throw ApiException.Invalid(at + ".type", $"Only tools of type 'function' are supported - '{at}.type'.");
                if (!t.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object)
                    throw new ApiException(400, $"Missing required parameter: '{at}.function'.", param: at + ".function", code: "missing_required_parameter");
                string name = f.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()!
                    : throw new ApiException(400, $"Missing required parameter: '{at}.function.name'.", param: at + ".function.name", code: "missing_required_parameter");
                if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
                    throw ApiException.Invalid(at + ".function.name", $"Invalid function name '{name}': use 1-64 of a-z, A-Z, 0-9, _ and - - '{at}.function.name'.");
                if (list.Any(x => x.Name == name)) throw ApiException.Invalid(at + ".function.name", $"The function name '{name}' is declared twice - '{at}.function.name'.");
                string? description = f.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
                string? parameters = null;
                if (f.TryGetProperty("parameters", out var ps) && ps.ValueKind != JsonValueKind.Null)
                {
                    if (ps.ValueKind != JsonValueKind.Object) throw JsonRequest.WrongType(at + ".function.parameters", ps, "a JSON schema object");
                    parameters = ps.GetRawText();
                }
                list.Add(new FunctionTool(name, description, parameters));
            }
        }
        string choice = "auto";
        if (req.Field("tool_choice") is { } tc)
        {
            if (tc.ValueKind == JsonValueKind.String) choice = tc.GetString()!;
            else if (tc.ValueKind == JsonValueKind.Object && tc.TryGetProperty("function", out var fn) && fn.ValueKind == JsonValueKind.Object
                     && fn.TryGetProperty("name", out var nm) && nm.ValueKind == JsonValueKind.String)
                choice = nm.GetString()!;
            else throw JsonRequest.WrongType("tool_choice", tc, "'none', 'auto', 'required' or {\"type\":\"function\",\"function\":{\"name\":...}}");
            if (choice is "none" or "auto" or "required" && tc.ValueKind == JsonValueKind.String) { }
            else if (tc.ValueKind == JsonValueKind.String) throw ApiException.Invalid("tool_choice", $"Invalid value '{choice}': tool_choice must be 'none', 'auto', 'required' or a named function - 'tool_choice'.");
            if (list.Count == 0 && choice != "none") throw ApiException.Invalid("tool_choice", "tool_choice is only allowed when tools are given - 'tool_choice'.");
        }
        if (list.Count == 0) return null;
        try { return Create(model, list, choice); }
        catch (ConstraintException e) { throw ApiException.Invalid(choice is "auto" or "required" or "none" ? "tools" : "tool_choice", $"Invalid tools: {e.Message}"); }
    }

    /// <summary>A tool result message's text: 400 unless it is JSON (text parts are joined first).</summary>
    public static string ToolResult(JsonElement m, string at, string content)
    {
        if (!m.TryGetProperty("tool_call_id", out var id) || id.ValueKind != JsonValueKind.String)
            throw new ApiException(400, $"Missing required parameter: '{at}.tool_call_id'.", param: at + ".tool_call_id", code: "missing_required_parameter");
        try { using var _ = JsonDocument.Parse(content); }
        catch (JsonException) { throw ApiException.Invalid(at + ".content", $"A tool message's content must be JSON (the function's result serialized), got text that does not parse - '{at}.content'."); }
        return content;
    }

    /// <summary>An assistant message's text with its <c>tool_calls</c> written as calls; 400 for malformed ones.</summary>
    public static string AssistantCalls(JsonElement m, string at, string content)
    {
        if (!m.TryGetProperty("tool_calls", out var calls) || calls.ValueKind == JsonValueKind.Null) return content;
        if (calls.ValueKind != JsonValueKind.Array) throw JsonRequest.WrongType(at + ".tool_calls", calls, "an array");
        var sb = new StringBuilder(content);
        int i = 0;
        foreach (var c in calls.EnumerateArray())
        {
            string cat = $"{at}.tool_calls[{i++}]";
            if (c.ValueKind != JsonValueKind.Object || !c.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object
                || !f.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                || !f.TryGetProperty("arguments", out var a) || a.ValueKind != JsonValueKind.String)
                throw ApiException.Invalid(cat, $"Each tool call needs function.name and function.arguments (a JSON string) - '{cat}'.");
            string args = a.GetString()!;
            try { using var doc = JsonDocument.Parse(args); args = doc.RootElement.GetRawText(); }
            catch (JsonException) { throw ApiException.Invalid(cat + ".function.arguments", $"function.arguments must be JSON text - '{cat}.function.arguments'."); }
            sb.Append(Render(n.GetString()!, args));
        }
        return sb.ToString();
    }

    /// <summary>A call as the model writes it.</summary>
    public static string Render(string name, string arguments)
    {
        using var doc = JsonDocument.Parse(arguments);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) doc.RootElement.WriteTo(w);
        return Open + "{\"name\":" + JsonSerializer.Serialize(name) + ",\"arguments\":" + Encoding.UTF8.GetString(buffer.WrittenSpan) + "}" + Close;
    }

    /// <summary>
    /// The conversation as the template takes it: with Tessera's format, tool results become user
    /// turns wrapped in <c>&lt;tool_response&gt;</c> and the tools are listed in a system message;
    /// a model template that reads <c>tools</c> gets them as its variable and tool turns as they are.
    /// </summary>
    public static (List<ChatMessage> Messages, IReadOnlyDictionary<string, object?>? Extra) ForTemplate(ServedModel model, IReadOnlyList<ChatMessage> messages, ToolSet? tools)
    {
        bool native = model.ModelTemplate is { } mt && mt.Template.Source.Contains("tools", StringComparison.Ordinal);
        var list = new List<ChatMessage>();
        foreach (var m in messages)
            list.Add(m.Role == "tool" && !native ? new ChatMessage("user", "<tool_response>" + m.Content + "</tool_response>") : m);
        if (tools is null || tools.Choice == "none") return (list, null);
        if (native)
        {
            var declared = new List<object?>();
            foreach (var t in tools.Tools) declared.Add(Text.Templates.JinjaValues.FromJson(JsonDocument.Parse(Declaration(t)).RootElement));
            return (list, new Dictionary<string, object?> { ["tools"] = declared });
        }
        var sb = new StringBuilder("You can call these functions. To call one, reply with only ")
            .Append(Open).Append("{\"name\":NAME,\"arguments\":{...}}").Append(Close).Append(". Functions:\n");
        foreach (var t in tools.Tools) sb.Append(Declaration(t)).Append('\n');
        if (list.Count > 0 && list[0].Role == "system") list[0] = new ChatMessage("system", list[0].Content + "\n\n" + sb.ToString().TrimEnd());
        else list.Insert(0, new ChatMessage("system", sb.ToString().TrimEnd()));
        return (list, null);
    }

    static string Declaration(FunctionTool t)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("type", "function");
            w.WriteStartObject("function");
            w.WriteString("name", t.Name);
            if (t.Description is not null) w.WriteString("description", t.Description);
            w.WritePropertyName("parameters");
            if (t.Parameters is null) w.WriteRawValue("{\"type\":\"object\",\"properties\":{}}"); else w.WriteRawValue(t.Parameters);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The sampling options with this set's processor for one sequence (unchanged for <c>none</c>).</summary>
    public SamplingOptions Apply(SamplingOptions sampling, ServedModel model, int promptTokens, int budget)
    {
        if (Constraint is null) return sampling;
        if (sampling.LogitsProcessor is not null) throw ApiException.Unsupported("tools", "tools cannot be combined with response_format on this server.");
        if (Forced) return StructuredOutput.Apply(sampling, Constraint, promptTokens, budget, model.ChatStopIds, "tools");
        return sampling with { LogitsProcessor = new TriggeredLogits(Constraint, Encoding.UTF8.GetBytes(Open), promptTokens, budget, model.ChatStopIds) };
    }

    /// <summary>The call in a reply, or null when the reply is text.</summary>
    public ToolCall? ParseCall(string reply)
    {
        if (Choice == "none" || !reply.StartsWith(Open, StringComparison.Ordinal) || !reply.EndsWith(Close, StringComparison.Ordinal)) return null;
        try
        {
            using var doc = JsonDocument.Parse(reply.AsMemory(Open.Length, reply.Length - Open.Length - Close.Length));
            var root = doc.RootElement;
            string name = root.GetProperty("name").GetString()!;
            return new ToolCall("call_" + Guid.NewGuid().ToString("N")[..24], name, root.GetProperty("arguments").GetRawText());
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException) { return null; }
    }

    /// <summary>
    /// POST /v1/chat/completions with tools: the reply is generated under the tool grammar and sent
    /// back as <c>tool_calls</c> (finish reason <c>tool_calls</c>) or as text. Streaming sends text as
    /// it comes once it cannot be a call; a call is sent whole when complete (a first chunk with the
    /// id and name, one with the arguments, then the finish).
    /// </summary>
    public async Task HandleAsync(HttpContext ctx, ServedModel model, IReadOnlyList<ChatMessage> messages, GenerationParameters p, CancellationToken cancel,
        IReadOnlyList<RetrievedPassage>? citations = null)
    {
        var (list, extra) = ForTemplate(model, messages, this);
        var ids = ChatCompletionsEndpoint.Encode(model, list, extra);
        int budget = p.Budget(ids.Count, model.ContextLength, int.MaxValue, "messages");
        var request = new TextRequest(ids, budget, Apply(p.Sampling, model, ids.Count, budget), p.Stop, model.ChatStopIds, 0);
        string id = JsonOutput.NewId("chatcmpl");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var text = new StringBuilder();
        string? finish = null;
        int generated = 0, streamed = 0;
        bool mayCall = Choice != "none", first = true;
        SseStream? sse = p.Stream ? new SseStream(ctx.Response, cancel) : null;
        await foreach (var d in TextGeneration.StreamAsync(model, request, cancel))
        {
            text.Append(d.Text);
            finish = d.FinishReason ?? finish;
            generated = d.CompletionTokens;
            if (sse is null) continue;
            // Text is sent once it can no longer become a call (it has left the opening bytes).
            string sofar = text.ToString();
            if (mayCall && !Forced && !Open.StartsWith(sofar, StringComparison.Ordinal) && !sofar.StartsWith(Open, StringComparison.Ordinal)) mayCall = false;
            if (mayCall) continue;
            if (sofar.Length > streamed || first || d.FinishReason is not null)
            {
                await sse.SendAsync(Chunk(id, created, model.Id, first, sofar[streamed..], null, d.FinishReason));
                streamed = sofar.Length;
                first = false;
            }
        }
        cancel.ThrowIfCancellationRequested();
        string reply = text.ToString();
        var call = ParseCall(reply);
        if (sse is not null)
        {
            if (mayCall)
            {
                if (call is not null)
                {
                    await sse.SendAsync(Chunk(id, created, model.Id, true, null, (call, true), null));
                    await sse.SendAsync(Chunk(id, created, model.Id, false, null, (call, false), null));
                    await sse.SendAsync(Chunk(id, created, model.Id, false, null, null, "tool_calls"));
                }
                else await sse.SendAsync(Chunk(id, created, model.Id, true, reply, null, finish ?? "stop"));
            }
            if (p.IncludeUsage)
                await sse.SendAsync(JsonOutput.UsageChunk(id, created, model.Id, "chat.completion.chunk", ids.Count, generated, w => ChatRetrieval.Write(w, citations ?? [])));
            await sse.DoneAsync();
            return;
        }
        await JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w =>
        {
            JsonOutput.Header(w, id, created, model.Id, "chat.completion");
            JsonOutput.OneChatChoice(w, m =>
            {
                if (call is null) { m.WriteString("content", reply); return; }
                m.WriteNull("content");
                m.WriteStartArray("tool_calls");
                WriteCall(m, call, withIndex: false, arguments: true);
                m.WriteEndArray();
            }, call is null ? finish : "tool_calls");
            CompletionsEndpoint.Usage(w, ids.Count, generated);
            ChatRetrieval.Write(w, citations ?? []);
            w.WriteEndObject();
        }), cancel);
    }

    static void WriteCall(Utf8JsonWriter w, ToolCall call, bool withIndex, bool arguments, bool head = true)
    {
        w.WriteStartObject();
        if (withIndex) w.WriteNumber("index", 0);
        if (head)
        {
            w.WriteString("id", call.Id);
            w.WriteString("type", "function");
        }
        w.WriteStartObject("function");
        if (head) w.WriteString("name", call.Name);
        w.WriteString("arguments", arguments ? call.Arguments : "");
        w.WriteEndObject();
        w.WriteEndObject();
    }

    // One streamed chunk: text, or a call's head (first: id and name) or its arguments.
    static byte[] Chunk(string id, long created, string modelId, bool first, string? text, (ToolCall Call, bool Head)? call, string? finish) => JsonOutput.Build(w =>
    {
        JsonOutput.Header(w, id, created, modelId, "chat.completion.chunk");
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("delta");
        if (first) w.WriteString("role", "assistant");
        if (text is not null && (text.Length > 0 || first)) w.WriteString("content", text);
        if (call is { } c)
        {
            w.WriteStartArray("tool_calls");
            WriteCall(w, c.Call, withIndex: true, arguments: !c.Head, head: c.Head);
            w.WriteEndArray();
        }
        w.WriteEndObject();
        w.WriteNull("logprobs");
        w.WriteString("finish_reason", finish);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    });
}
