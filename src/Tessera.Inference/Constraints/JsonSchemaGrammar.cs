using System.Text;
using System.Text.Json;

namespace Tessera.Inference.Constraints;

/// <summary>
/// Compiles a JSON Schema (the subset structured output needs) to a <see cref="Grammar"/> whose
/// every text is compact JSON that validates against the schema. Supported: <c>type</c> (one or a
/// list), <c>properties</c> + <c>required</c> (written in schema order; optional ones may be left
/// out), <c>items</c> with <c>minItems</c>/<c>maxItems</c>, <c>enum</c>, <c>const</c>,
/// <c>minLength</c>/<c>maxLength</c>, <c>minimum</c>/<c>maximum</c> and their exclusive forms,
/// <c>anyOf</c>, local <c>$ref</c> into <c>$defs</c>/<c>definitions</c> (recursion allowed when it
/// can end), and annotations (<c>title</c>, <c>description</c>, <c>format</c>, <c>default</c>,
/// <c>examples</c>, <c>$schema</c>, <c>$id</c>, <c>additionalProperties</c>, <c>strict</c>).
/// Keywords whose constraint the grammar cannot guarantee (<c>pattern</c>, <c>oneOf</c>,
/// <c>allOf</c>, <c>not</c>, <c>multipleOf</c>, <c>uniqueItems</c> …) are refused with a
/// <see cref="ConstraintException"/> rather than ignored.
/// </summary>
public static class JsonSchemaGrammar
{
    /// <summary>Most enum/const values, properties or anyOf branches in one schema object.</summary>
    public const int MaxAlternatives = 1024;

    static readonly HashSet<string> Annotations =
    [
        "title", "description", "format", "default", "examples", "$schema", "$id", "$comment", "additionalProperties",
        "unevaluatedProperties", "strict", "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "contentMediaType", "contentEncoding", "name",
    ];

    static readonly HashSet<string> Known =
    [
        "type", "properties", "required", "items", "minItems", "maxItems", "enum", "const", "minLength", "maxLength",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf", "$ref",
    ];

    /// <summary>The grammar of any JSON object (<c>response_format: json_object</c>).</summary>
    public static Grammar AnyObject()
    {
        var value = AnyValue(out var obj);
        return new Grammar(obj, "json_object");
    }

    /// <summary>Compiles <paramref name="schema"/>; throws <see cref="ConstraintException"/> naming the offending place.</summary>
    public static Grammar Compile(JsonElement schema) => new Compiler(schema).Run();

    /// <summary>Compiles schema text.</summary>
    public static Grammar Compile(string schema)
    {
        try
        {
            using var doc = JsonDocument.Parse(schema);
            return Compile(doc.RootElement);
        }
        catch (JsonException e) { throw new ConstraintException($"the schema is not valid JSON: {e.Message}"); }
    }

    // Any JSON value; `obj` is the free-form object node inside it.
    static GrammarNode AnyValue(out ListNode obj)
    {
        var value = new ChoiceNode(new GrammarNode[7]);
        var str = new StringNode(0, -1);
        obj = new ListNode((byte)'{', (byte)'}', new SequenceNode([str, Lit(":"), value]), 0, -1);
        var arr = new ListNode((byte)'[', (byte)']', value, 0, -1);
        GrammarNode[] items = [obj, arr, str, new NumberNode(false, null, null, false, false), Lit("true"), Lit("false"), Lit("null")];
        items.CopyTo(value.Items, 0);
        return value;
    }

    static LiteralNode Lit(string s) => new(Encoding.UTF8.GetBytes(s));

    static LiteralNode Literal(JsonElement v)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) v.WriteTo(w);
        return new LiteralNode(buffer.WrittenSpan.ToArray());
    }

    sealed class Compiler(JsonElement root)
    {
        readonly Dictionary<string, ReferenceNode> refs = [];
        int nodes;

        public Grammar Run()
        {
            var node = Node(root, "#", 0);
            // Resolving a reference can meet new ones: repeat until every one points somewhere.
            while (refs.Values.FirstOrDefault(r => r.Node is null) is { } open) open.Node = Node(Resolve(open.Target), open.Target, 1);
            return new Grammar(node, "the schema");
        }

        void Count(string at)
        {
            if (++nodes > Grammar.MaxNodes) throw new ConstraintException($"the schema is too large: more than {Grammar.MaxNodes} parts (at {at}).");
        }

        JsonElement Resolve(string path)
        {
            if (path == "#") return root;
            var parts = path[2..].Split('/');
            var e = root;
            foreach (var raw in parts)
            {
                string p = raw.Replace("~1", "/").Replace("~0", "~");
                if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(p, out e))
                    throw new ConstraintException($"$ref '{path}' points to nothing in the schema.");
            }
            return e;
        }

        GrammarNode Node(JsonElement s, string at, int depth)
        {
            Count(at);
            if (depth > 64) throw new ConstraintException($"the schema nests deeper than 64 levels (at {at}).");
            if (s.ValueKind == JsonValueKind.True) return AnyValue(out _);
            if (s.ValueKind == JsonValueKind.False) throw new ConstraintException($"the schema at {at} is false: nothing validates.");
            if (s.ValueKind != JsonValueKind.Object) throw new ConstraintException($"the schema at {at} must be an object or a boolean, got {s.ValueKind}.");

            foreach (var p in s.EnumerateObject())
                if (!Known.Contains(p.Name) && !Annotations.Contains(p.Name))
                    throw new ConstraintException($"the schema keyword '{p.Name}' at {at} is not supported for constrained output (supported: {string.Join(", ", Known)}).");

            if (s.TryGetProperty("$ref", out var r))
            {
                if (s.EnumerateObject().Any(p => Known.Contains(p.Name) && p.Name != "$ref"))
                    throw new ConstraintException($"$ref at {at} has sibling constraints; put them in the referenced schema.");
                string path = r.ValueKind == JsonValueKind.String ? r.GetString()! : throw new ConstraintException($"$ref at {at} must be a string.");
                if (path != "#" && !path.StartsWith("#/", StringComparison.Ordinal)) throw new ConstraintException($"$ref '{path}' at {at}: only local references (#/...) are supported.");
                if (!refs.TryGetValue(path, out var node)) refs[path] = node = new ReferenceNode(path);
                return node;
            }
            if (s.TryGetProperty("const", out var c)) return Literal(c);
            if (s.TryGetProperty("enum", out var en))
            {
                if (en.ValueKind != JsonValueKind.Array || en.GetArrayLength() == 0) throw new ConstraintException($"enum at {at} must be a non-empty array.");
                if (en.GetArrayLength() > MaxAlternatives) throw new ConstraintException($"enum at {at} has more than {MaxAlternatives} values.");
                // With a type beside the enum, only the values of that type validate.
                var allowed = s.TryGetProperty("type", out _) ? Types(s, at) : null;
                var values = en.EnumerateArray().Where(v => allowed is null || allowed.Any(t => OfType(v, t))).ToList();
                if (values.Count == 0) throw new ConstraintException($"no value of enum at {at} has the schema's type: nothing validates.");
                return new ChoiceNode([.. values.Select(v => { Count(at); return (GrammarNode)Literal(v); })]);
            }
            if (s.TryGetProperty("anyOf", out var any))
            {
                if (s.EnumerateObject().Any(p => Known.Contains(p.Name) && p.Name != "anyOf"))
                    throw new ConstraintException($"anyOf at {at} has sibling constraints; move them into each branch.");
                if (any.ValueKind != JsonValueKind.Array || any.GetArrayLength() == 0) throw new ConstraintException($"anyOf at {at} must be a non-empty array.");
                if (any.GetArrayLength() > MaxAlternatives) throw new ConstraintException($"anyOf at {at} has more than {MaxAlternatives} branches.");
                int i = 0;
                return new ChoiceNode([.. any.EnumerateArray().Select(b => Node(b, $"{at}/anyOf/{i++}", depth + 1))]);
            }

            var types = Types(s, at);
            var branches = new List<GrammarNode>();
            foreach (var t in types) branches.Add(Typed(s, t, at, depth));
            return branches.Count == 1 ? branches[0] : new ChoiceNode([.. branches]);
        }

        static bool OfType(JsonElement v, string type) => type switch
        {
            "null" => v.ValueKind == JsonValueKind.Null,
            "boolean" => v.ValueKind is JsonValueKind.True or JsonValueKind.False,
            "string" => v.ValueKind == JsonValueKind.String,
            "number" => v.ValueKind == JsonValueKind.Number,
            "integer" => v.ValueKind == JsonValueKind.Number && v.TryGetDecimal(out decimal d) && d == Math.Floor(d),
            "object" => v.ValueKind == JsonValueKind.Object,
            "array" => v.ValueKind == JsonValueKind.Array,
            _ => false,
        };

        static List<string> Types(JsonElement s, string at)
        {
            if (!s.TryGetProperty("type", out var t))
            {
                // No type: infer it from the keywords present, or any value.
                if (s.TryGetProperty("properties", out _) || s.TryGetProperty("required", out _)) return ["object"];
                if (s.TryGetProperty("items", out _)) return ["array"];
                return ["any"];
            }
            var list = new List<string>();
            if (t.ValueKind == JsonValueKind.String) list.Add(t.GetString()!);
            else if (t.ValueKind == JsonValueKind.Array)
                foreach (var x in t.EnumerateArray())
                    list.Add(x.ValueKind == JsonValueKind.String ? x.GetString()! : throw new ConstraintException($"type at {at} must list strings."));
            else throw new ConstraintException($"type at {at} must be a string or an array of strings.");
            if (list.Count == 0) throw new ConstraintException($"type at {at} is an empty list: nothing validates.");
            foreach (var x in list)
                if (x is not ("object" or "array" or "string" or "number" or "integer" or "boolean" or "null"))
                    throw new ConstraintException($"unknown type '{x}' at {at}.");
            return list;
        }

        GrammarNode Typed(JsonElement s, string type, string at, int depth)
        {
            switch (type)
            {
                case "any": return AnyValue(out _);
                case "null": return Lit("null");
                case "boolean": return new ChoiceNode([Lit("true"), Lit("false")]);
                case "string":
                {
                    int min = Int(s, "minLength", at) ?? 0, max = Int(s, "maxLength", at) ?? -1;
                    if (max >= 0 && min > max) throw new ConstraintException($"minLength {min} > maxLength {max} at {at}: nothing validates.");
                    if (min > 4096) throw new ConstraintException($"minLength {min} at {at} is over the limit of 4096.");
                    return new StringNode(min, max);
                }
                case "integer" or "number":
                {
                    decimal? lo = Dec(s, "minimum", at), hi = Dec(s, "maximum", at), xlo = Dec(s, "exclusiveMinimum", at), xhi = Dec(s, "exclusiveMaximum", at);
                    bool exLo = xlo is { } a && (lo is null || a >= lo), exHi = xhi is { } b && (hi is null || b <= hi);
                    var n = new NumberNode(type == "integer", exLo ? xlo : lo, exHi ? xhi : hi, exLo, exHi);
                    if (n.Low > n.High) throw new ConstraintException($"the bounds at {at} leave no {type} (within ±10^15 and 6 decimals) that validates.");
                    return n;
                }
                case "array":
                {
                    int min = Int(s, "minItems", at) ?? 0, max = Int(s, "maxItems", at) ?? -1;
                    if (max >= 0 && min > max) throw new ConstraintException($"minItems {min} > maxItems {max} at {at}: nothing validates.");
                    if (min > 1024) throw new ConstraintException($"minItems {min} at {at} is over the limit of 1024.");
                    GrammarNode item = s.TryGetProperty("items", out var it) ? Node(it, at + "/items", depth + 1) : AnyValue(out _);
                    return new ListNode((byte)'[', (byte)']', item, min, max);
                }
                case "object":
                {
                    var props = new List<ObjectProperty>();
                    var required = new HashSet<string>();
                    if (s.TryGetProperty("required", out var req))
                    {
                        if (req.ValueKind != JsonValueKind.Array) throw new ConstraintException($"required at {at} must be an array of strings.");
                        foreach (var x in req.EnumerateArray())
                            if (x.ValueKind != JsonValueKind.String || !required.Add(x.GetString()!))
                                throw new ConstraintException($"required at {at} must list distinct strings.");
                    }
                    var named = new HashSet<string>();
                    if (s.TryGetProperty("properties", out var ps))
                    {
                        if (ps.ValueKind != JsonValueKind.Object) throw new ConstraintException($"properties at {at} must be an object.");
                        foreach (var p in ps.EnumerateObject())
                        {
                            if (props.Count >= MaxAlternatives) throw new ConstraintException($"properties at {at} has more than {MaxAlternatives} entries.");
                            named.Add(p.Name);
                            props.Add(new ObjectProperty(p.Name, Node(p.Value, $"{at}/properties/{p.Name}", depth + 1), required.Contains(p.Name)));
                        }
                    }
                    bool closed = s.TryGetProperty("additionalProperties", out var ap) && ap.ValueKind == JsonValueKind.False;
                    foreach (var name in required)
                    {
                        if (named.Contains(name)) continue;
                        if (closed) throw new ConstraintException($"'{name}' is required at {at} but not among its properties, and additionalProperties is false: nothing validates.");
                        props.Add(new ObjectProperty(name, ap.ValueKind == JsonValueKind.Object ? Node(ap, at + "/additionalProperties", depth + 1) : AnyValue(out _), true));
                    }
                    return new ObjectNode(props);
                }
                default: throw new ConstraintException($"unknown type '{type}' at {at}.");
            }
        }

        static int? Int(JsonElement s, string name, string at)
        {
            if (!s.TryGetProperty(name, out var v)) return null;
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i) || i < 0)
                throw new ConstraintException($"{name} at {at} must be a non-negative integer, got {v.GetRawText()}.");
            return i;
        }

        static decimal? Dec(JsonElement s, string name, string at)
        {
            if (!s.TryGetProperty(name, out var v)) return null;
            if (v.ValueKind != JsonValueKind.Number) throw new ConstraintException($"{name} at {at} must be a number, got {v.GetRawText()}.");
            if (v.TryGetDecimal(out decimal d)) return Math.Clamp(d, -1e20m, 1e20m);
            return v.GetDouble() < 0 ? -1e20m : 1e20m;
        }
    }
}
