using System.Runtime.CompilerServices;
using System.Text.Json;
using Tessera.Inference;
using Tessera.Inference.Constraints;

namespace Tessera.Server;

/// <summary>
/// <c>response_format</c>: <c>{"type":"json_schema","json_schema":{"schema":…}}</c>,
/// <c>{"type":"json_object"}</c>, and the extensions <c>{"type":"choice","choices":[…]}</c> (the
/// reply is exactly one of the strings) and <c>{"type":"regex","pattern":"…"}</c> (the whole reply
/// matches the pattern; dialect and limits in <see cref="RegexGrammar"/>). Each compiles to a <see cref="TokenConstraint"/> over the
/// served vocabulary; compiled constraints are cached by their JSON text, so a repeated schema
/// keeps its mask cache. A schema that cannot be compiled is a 400 naming why.
/// </summary>
public static class StructuredOutput
{
    /// <summary>Compiled constraints kept per served model.</summary>
    public const int MaxCachedConstraints = 64;

    static readonly ConditionalWeakTable<ServedModel, State> States = [];

    sealed class State(TokenVocabulary vocabulary)
    {
        public readonly TokenVocabulary Vocabulary = vocabulary;
        public readonly Dictionary<string, TokenConstraint> Constraints = [];
    }

    static State Of(ServedModel model) => States.GetValue(model, m =>
    {
        var tok = m.Tokenizer;
        var bytes = new byte[]?[m.Engine.Config.VocabSize];
        for (int id = 0; id < tok.VocabSize; id++)
        {
            if (tok.SpecialTokens.IsSpecial(id)) continue;
            try { bytes[id] = tok.DecodeBytes([id]); }
            catch (ArgumentOutOfRangeException) { }   // a gap in the id space
        }
        return new State(new TokenVocabulary(bytes));
    });

    /// <summary>The served vocabulary as bytes (special tokens excluded), built once per model.</summary>
    public static TokenVocabulary Vocabulary(ServedModel model) => Of(model).Vocabulary;

    /// <summary>The constraint for <paramref name="key"/>, compiling it with <paramref name="compile"/> the first time.</summary>
    public static TokenConstraint Constraint(ServedModel model, string key, Func<Grammar> compile)
    {
        var state = Of(model);
        lock (state.Constraints) if (state.Constraints.TryGetValue(key, out var c)) return c;
        var made = new TokenConstraint(compile(), state.Vocabulary);
        lock (state.Constraints)
        {
            if (state.Constraints.Count >= MaxCachedConstraints) state.Constraints.Clear();
            state.Constraints[key] = made;
        }
        return made;
    }

    /// <summary>Reads <c>response_format</c>: null for none or <c>text</c>, else the constraint; 400 for a bad one.</summary>
    public static TokenConstraint? Parse(JsonRequest req, ServedModel model)
    {
        if (req.Field("response_format") is not { } rf) return null;
        if (rf.ValueKind != JsonValueKind.Object) throw JsonRequest.WrongType("response_format", rf, "an object");
        string type = rf.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
            : throw new ApiException(400, "Missing required parameter: 'response_format.type'.", param: "response_format.type", code: "missing_required_parameter");
        try
        {
            switch (type)
            {
                case "text": return null;
                case "json_object": return Constraint(model, "json_object", JsonSchemaGrammar.AnyObject);
                case "json_schema":
                {
                    if (!rf.TryGetProperty("json_schema", out var js) || js.ValueKind != JsonValueKind.Object)
                        throw new ApiException(400, "Missing required parameter: 'response_format.json_schema'.", param: "response_format.json_schema", code: "missing_required_parameter");
                    if (!js.TryGetProperty("schema", out var schema)) return Constraint(model, "json_object", JsonSchemaGrammar.AnyObject);
                    var copy = schema.Clone();
                    return Constraint(model, "schema:" + schema.GetRawText(), () => JsonSchemaGrammar.Compile(copy));
                }
                case "choice":
                {
                    if (!rf.TryGetProperty("choices", out var cs) || cs.ValueKind != JsonValueKind.Array || cs.GetArrayLength() == 0)
                        throw ApiException.Invalid("response_format.choices", "response_format type 'choice' needs 'choices', a non-empty array of strings - 'response_format.choices'.");
                    var list = new List<string>();
                    foreach (var c in cs.EnumerateArray())
                        list.Add(c.ValueKind == JsonValueKind.String && c.GetString()!.Length > 0 ? c.GetString()! : throw ApiException.Invalid("response_format.choices", "Each choice must be a non-empty string - 'response_format.choices'."));
                    return Constraint(model, "choice:" + cs.GetRawText(), () => Grammar.Choices(list));
                }
                case "regex":
                {
                    if (!rf.TryGetProperty("pattern", out var pt) || pt.ValueKind != JsonValueKind.String)
                        throw ApiException.Invalid("response_format.pattern", "response_format type 'regex' needs 'pattern', a string - 'response_format.pattern'.");
                    string pattern = pt.GetString()!;
                    try { return Constraint(model, "regex:" + pattern, () => RegexGrammar.Compile(pattern)); }
                    catch (ConstraintException e) { throw ApiException.Invalid("response_format.pattern", $"Invalid pattern for response_format: {e.Message} - 'response_format.pattern'."); }
                }
                default:
                    throw ApiException.Invalid("response_format.type", $"Invalid value '{type}': response_format.type must be 'text', 'json_object', 'json_schema' or (extensions) 'choice' or 'regex' - 'response_format.type'.");
            }
        }
        catch (ConstraintException e)
        {
            throw ApiException.Invalid("response_format", $"Invalid schema for response_format: {e.Message}");
        }
    }

    /// <summary>
    /// <paramref name="sampling"/> with a fresh per-sequence processor for <paramref name="constraint"/>
    /// (unchanged when there is none). 400 when the budget cannot hold the shortest valid output or
    /// another logits processor is already in use.
    /// </summary>
    public static SamplingOptions Apply(SamplingOptions sampling, TokenConstraint? constraint, int promptTokens, int budget, IReadOnlySet<int> endIds, string param = "response_format")
    {
        if (constraint is null) return sampling;
        if (sampling.LogitsProcessor is not null) throw ApiException.Unsupported(param, $"{param} cannot be combined with another logits processor on this server.");
        try { return sampling with { LogitsProcessor = constraint.Processor(promptTokens, budget, endIds) }; }
        catch (ConstraintException e) { throw ApiException.Invalid(param, $"{e.Message} - '{param}'."); }
    }
}
