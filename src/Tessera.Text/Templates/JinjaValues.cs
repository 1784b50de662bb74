using System.Globalization;
using System.Text;

namespace Tessera.Text.Templates;

/// <summary>Jinja's undefined value (a missing variable, key or attribute).</summary>
public sealed class JinjaUndefined
{
    /// <summary>The one instance.</summary>
    public static JinjaUndefined Instance { get; } = new();
    private JinjaUndefined() { }
}

/// <summary>A mapping value: insertion-ordered string keys, as JSON objects and Python dicts keep them.</summary>
public class JinjaObject : OrderedDictionary<string, object?>
{
    /// <summary>An empty object.</summary>
    public JinjaObject() : base(StringComparer.Ordinal) { }
}

/// <summary>The mutable object <c>namespace(...)</c> returns.</summary>
public sealed class JinjaNamespace : JinjaObject;

/// <summary>A callable value (macro, global function, bound method).</summary>
public sealed class JinjaCallable(string name, Func<List<object?>, JinjaObject, object?> invoke)
{
    /// <summary>Name for messages.</summary>
    public string Name { get; } = name;

    /// <summary>Calls it with positional and keyword arguments.</summary>
    public object? Invoke(List<object?> args, JinjaObject kwargs) => invoke(args, kwargs);
}

/// <summary>
/// Value semantics of the runtime, following @huggingface/jinja (the implementation HF's
/// JavaScript stack uses): values are null (none), <see cref="JinjaUndefined"/>, bool, long,
/// double, string, <c>List&lt;object?&gt;</c>, <see cref="JinjaObject"/> and <see cref="JinjaCallable"/>.
/// </summary>
public static class JinjaValues
{
    /// <summary>Converts plain .NET data (dictionaries, lists, numbers, strings, records of those) into runtime values.</summary>
    public static object? From(object? v) => v switch
    {
        null => null,
        JinjaUndefined or JinjaObject or JinjaCallable or string or bool or long or double => v,
        int i => (long)i,
        float f => (double)f,
        decimal m => (double)m,
        System.Text.Json.JsonElement e => FromJson(e),
        IDictionary<string, object?> d => ToObject(d),
        System.Collections.IDictionary d => ToObject(d.Keys.Cast<object>().ToDictionary(k => k.ToString()!, k => d[k])),
        System.Collections.IEnumerable list => list.Cast<object?>().Select(From).ToList(),
        _ => throw new JinjaException($"cannot pass a {v.GetType().Name} to a template"),
    };

    private static JinjaObject ToObject(IEnumerable<KeyValuePair<string, object?>> d)
    {
        var o = new JinjaObject();
        foreach (var (k, x) in d) o[k] = From(x);
        return o;
    }

    /// <summary>A JSON value as runtime values (objects keep their key order).</summary>
    public static object? FromJson(System.Text.Json.JsonElement e) => e.ValueKind switch
    {
        System.Text.Json.JsonValueKind.Object => e.EnumerateObject().Aggregate(new JinjaObject(), (o, p) => { o[p.Name] = FromJson(p.Value); return o; }),
        System.Text.Json.JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        System.Text.Json.JsonValueKind.String => e.GetString(),
        System.Text.Json.JsonValueKind.Number => e.TryGetInt64(out long l) ? l : e.GetDouble(),
        System.Text.Json.JsonValueKind.True => true,
        System.Text.Json.JsonValueKind.False => false,
        _ => null,
    };

    /// <summary>Truthiness: empty strings, lists and objects, zero, none and undefined are false.</summary>
    public static bool Truthy(object? v) => v switch
    {
        null or JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0 && !double.IsNaN(d),
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        JinjaObject o => o.Count > 0,
        _ => true,
    };

    /// <summary>The text a value renders as.</summary>
    public static string Str(object? v) => v switch
    {
        null => "null",
        JinjaUndefined => "",
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatStr(d),
        List<object?> or JinjaObject => ToJson(v, null, 0, convertUndefined: false),
        JinjaCallable c => $"<function {c.Name}>",
        _ => v.ToString() ?? "",
    };

    private static string FloatStr(double d)
    {
        if (d == 0 && double.IsNegative(d)) return "-0.0";
        if (double.IsNaN(d)) return "NaN";
        if (double.IsInfinity(d)) return d > 0 ? "Infinity" : "-Infinity";
        if (d % 1 == 0 && Math.Abs(d) < 1e21) return d.ToString("F1", CultureInfo.InvariantCulture);
        return d.ToString("R", CultureInfo.InvariantCulture);
    }

    /// <summary>Equality as the reference runtime compares values (numbers by value, containers by reference, none == undefined).</summary>
    public static bool Equal(object? a, object? b)
    {
        if (a is null or JinjaUndefined) return b is null or JinjaUndefined;
        if (b is null or JinjaUndefined) return false;
        if (IsNumber(a) && IsNumber(b)) return Num(a) == Num(b);
        if (a is string sa && b is string sb) return sa == sb;
        if (a is bool ba && b is bool bb) return ba == bb;
        if (a is bool && IsNumber(b)) return (((bool)a) ? 1 : 0) == Num(b);
        if (b is bool && IsNumber(a)) return (((bool)b) ? 1 : 0) == Num(a);
        if (a is string s1 && IsNumber(b)) return double.TryParse(s1, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && x == Num(b);
        if (b is string s2 && IsNumber(a)) return double.TryParse(s2, NumberStyles.Float, CultureInfo.InvariantCulture, out double y) && y == Num(a);
        return ReferenceEquals(a, b);
    }

    internal static bool IsNumber(object? v) => v is long or double;
    internal static double Num(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => throw new JinjaException($"expected a number, got {TypeName(v)}") };

    internal static string TypeName(object? v) => v switch
    {
        null => "none", JinjaUndefined => "undefined", string => "string", bool => "boolean", long => "integer", double => "float",
        List<object?> => "list", JinjaObject => "object", JinjaCallable => "function", _ => v.GetType().Name,
    };

    /// <summary>JSON text as the reference's <c>tojson</c> writes it (Python json.dumps separators; non-ASCII kept).</summary>
    public static string ToJson(object? v, int? indent, int depth = 0, bool convertUndefined = true)
    {
        string itemSep = indent is not null ? "," : ", ";
        switch (v)
        {
            case null: return "null";
            case JinjaUndefined: return convertUndefined ? "null" : "undefined";
            case bool b: return b ? "true" : "false";
            case long l: return l.ToString(CultureInfo.InvariantCulture);
            // Integral floats print as integers, as JSON.stringify does (past 2^63 too: no cast to long).
            case double d: return d % 1 == 0 && Math.Abs(d) < 1e21 ? (d == 0 ? "0" : d.ToString("F0", CultureInfo.InvariantCulture)) : d.ToString("R", CultureInfo.InvariantCulture);
            case string s: return JsonString(s);
            case List<object?> list:
            {
                string pad = indent is int n ? "\n" + new string(' ', n * depth) : "";
                string childPad = indent is int m ? pad + new string(' ', m) : "";
                var parts = list.Select(x => ToJson(x, indent, depth + 1, convertUndefined)).ToList();
                return indent is not null && parts.Count > 0 ? "[" + childPad + string.Join(itemSep + childPad, parts) + pad + "]" : "[" + string.Join(itemSep, parts) + "]";
            }
            case JinjaObject o:
            {
                string pad = indent is int n ? "\n" + new string(' ', n * depth) : "";
                string childPad = indent is int m ? pad + new string(' ', m) : "";
                var parts = o.Select(kv => JsonString(kv.Key) + ": " + ToJson(kv.Value, indent, depth + 1, convertUndefined)).ToList();
                return indent is not null && parts.Count > 0 ? "{" + childPad + string.Join(itemSep + childPad, parts) + pad + "}" : "{" + string.Join(itemSep, parts) + "}";
            }
            default: throw new JinjaException($"cannot convert a {TypeName(v)} to JSON");
        }
    }

    /// <summary>JSON.stringify of a string: escapes quote, backslash and controls; keeps everything else (lone surrogates as \uXXXX).</summary>
    public static string JsonString(string s)
    {
        var sb = new StringBuilder(s.Length + 2).Append('"');
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { sb.Append(c).Append(s[i + 1]); i++; }
                    else if (char.IsSurrogate(c)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}
