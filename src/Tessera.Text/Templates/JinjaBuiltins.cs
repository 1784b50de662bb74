using System.Globalization;
using System.Text;

namespace Tessera.Text.Templates;

/// <summary>Member access, indexing, slicing, filters, tests and methods of the runtime.</summary>
internal static class JinjaBuiltins
{
    public static List<object?> Chars(string s)
    {
        var list = new List<object?>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { list.Add(s.Substring(i, 2)); i++; }
            else list.Add(s[i].ToString());
        }
        return list;
    }

    public static object? Member(object? obj, string name)
    {
        switch (obj)
        {
            case JinjaObject o: return o.TryGetValue(name, out var v) ? v : JinjaUndefined.Instance;
            case List<object?> l when name == "length": return (long)l.Count;
            case string s when name == "length": return (long)s.Length;
            default: return JinjaUndefined.Instance;
        }
    }

    public static object? Index(object? obj, object? index)
    {
        switch (obj)
        {
            case JinjaObject o: return index is string k && o.TryGetValue(k, out var v) ? v : index is string ? JinjaUndefined.Instance : o.TryGetValue(JinjaValues.Str(index), out var v2) ? v2 : JinjaUndefined.Instance;
            case List<object?> l when index is long i:
            {
                long at = i < 0 ? l.Count + i : i;
                return at >= 0 && at < l.Count ? l[(int)at] : JinjaUndefined.Instance;
            }
            case string s when index is long i:
            {
                long at = i < 0 ? s.Length + i : i;
                return at >= 0 && at < s.Length ? s[(int)at].ToString() : JinjaUndefined.Instance;
            }
            case List<object?> or string when index is string name: return Member(obj, name);
            default: return JinjaUndefined.Instance;
        }
    }

    public static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        long st = step is long s0 ? s0 : 1;
        if (st == 0) throw new JinjaException("slice step cannot be zero");
        int n = obj switch { List<object?> l => l.Count, string s => s.Length, _ => throw new JinjaException($"cannot slice a {JinjaValues.TypeName(obj)}") };
        long Norm(object? v, long dflt)
        {
            if (v is not long x) return dflt;
            if (x < 0) x += n;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long a = Norm(start, st > 0 ? 0 : n - 1), b = Norm(stop, st > 0 ? n : -1);
        var idx = new List<int>();
        for (long i = a; st > 0 ? i < b : i > b; i += st) idx.Add((int)i);
        if (obj is string str)
        {
            var sb = new StringBuilder(idx.Count);
            foreach (int i in idx) sb.Append(str[i]);
            return sb.ToString();
        }
        var list = (List<object?>)obj!;
        return idx.ConvertAll(i => list[i]);
    }

    public static bool Test(string name, object? v, List<object?> args) => name switch
    {
        "defined" => v is not JinjaUndefined,
        "undefined" => v is JinjaUndefined,
        "none" => v is null,
        "string" => v is string,
        "number" => v is long or double,
        "integer" => v is long,
        "float" => v is double,
        "boolean" => v is bool,
        "true" => v is true,
        "false" => v is false,
        "mapping" => v is JinjaObject,
        "iterable" => v is List<object?> or string or JinjaObject,
        "sequence" => v is List<object?> or string or JinjaObject,
        "callable" => v is JinjaCallable,
        "odd" => v is long l && l % 2 != 0,
        "even" => v is long l2 && l2 % 2 == 0,
        "divisibleby" => v is long l3 && args.Count == 1 && args[0] is long d && d != 0 && l3 % d == 0,
        "lower" => v is string s && s == s.ToLowerInvariant(),
        "upper" => v is string s2 && s2 == s2.ToUpperInvariant(),
        "equalto" or "eq" or "==" => args.Count == 1 && JinjaValues.Equal(v, args[0]),
        "ne" or "!=" => args.Count == 1 && !JinjaValues.Equal(v, args[0]),
        "in" => args.Count == 1 && args[0] switch { List<object?> l4 => l4.Any(x => JinjaValues.Equal(x, v)), string s3 => v is string sv && s3.Contains(sv, StringComparison.Ordinal), JinjaObject o => v is string k && o.ContainsKey(k), _ => false },
        _ => throw new JinjaException($"unknown test '{name}'"),
    };

    /// <summary>Widest indent <c>indent</c> and <c>tojson</c> accept.</summary>
    public const int MaxIndent = 1000;

    public static object? Filter(string name, object? v, List<object?> args, JinjaObject kwargs, JinjaInterpreter interp, JinjaScope scope)
    {
        object? Arg(int i, string kw, object? dflt = null) => i < args.Count ? args[i] : kwargs.TryGetValue(kw, out var x) ? x : dflt;
        switch (name)
        {
            case "length" or "count":
                return v switch { string s => (long)s.Length, List<object?> l => (long)l.Count, JinjaObject o => (long)o.Count, _ => throw new JinjaException($"length of a {JinjaValues.TypeName(v)}") };
            case "trim": return Str(v, name).Trim();
            case "upper": return Str(v, name).ToUpperInvariant();
            case "lower": return Str(v, name).ToLowerInvariant();
            case "title": return Title(Str(v, name));
            case "capitalize": { string s = Str(v, name); return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(); }
            case "string": return JinjaValues.Str(v);
            case "tojson":
            {
                var ind = Arg(0, "indent");
                if (ind is long n && n is < 0 or > MaxIndent) throw new JinjaException($"tojson indent {n} is outside 0..{MaxIndent}");
                return JinjaValues.ToJson(v, ind is long k ? (int)k : null);
            }
            case "safe" or "e" or "escape" when name == "safe": return v;
            case "join":
            {
                string sep = Arg(0, "d", "") is string s ? s : "";
                var items = v switch { List<object?> l => l, string str => Chars(str), _ => throw new JinjaException($"join of a {JinjaValues.TypeName(v)}") };
                return string.Join(sep, items.Select(JinjaValues.Str));
            }
            case "list": return v switch { List<object?> l => l.ToList(), string s => Chars(s), JinjaObject o => o.Keys.Cast<object?>().ToList(), _ => throw new JinjaException($"list of a {JinjaValues.TypeName(v)}") };
            case "first": return v switch { List<object?> l => l.Count > 0 ? l[0] : JinjaUndefined.Instance, string s => s.Length > 0 ? s[0].ToString() : JinjaUndefined.Instance, _ => JinjaUndefined.Instance };
            case "last": return v switch { List<object?> l => l.Count > 0 ? l[^1] : JinjaUndefined.Instance, string s => s.Length > 0 ? s[^1].ToString() : JinjaUndefined.Instance, _ => JinjaUndefined.Instance };
            case "reverse": return v switch { List<object?> l => Enumerable.Reverse(l).ToList(), string s => new string(s.Reverse().ToArray()), _ => throw new JinjaException($"reverse of a {JinjaValues.TypeName(v)}") };
            case "unique": return v is List<object?> ul ? ul.Aggregate(new List<object?>(), (acc, x) => { if (!acc.Any(y => JinjaValues.Equal(x, y))) acc.Add(x); return acc; }) : v;
            case "sort":
            {
                if (v is not List<object?> l) throw new JinjaException($"sort of a {JinjaValues.TypeName(v)}");
                bool rev = JinjaValues.Truthy(Arg(0, "reverse", false));
                var attr = Arg(2, "attribute") as string;
                var sorted = l.OrderBy(x => attr is null ? x : Member(x, attr), Comparer<object?>.Create(Compare)).ToList();
                if (rev) sorted.Reverse();
                return sorted;
            }
            case "items": return v is JinjaObject io ? io.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList() : throw new JinjaException($"items of a {JinjaValues.TypeName(v)}");
            case "dictsort": return v is JinjaObject ds ? ds.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList() : throw new JinjaException("dictsort of a non-object");
            case "default" or "d":
            {
                bool boolean = JinjaValues.Truthy(Arg(1, "boolean", false));
                return (boolean ? !JinjaValues.Truthy(v) : v is JinjaUndefined) ? Arg(0, "default_value", "") : v;
            }
            case "int": return v switch { long l => l, double d => (long)d, string s => long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long x) ? x : double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double y) ? (long)y : Arg(0, "default", 0L), bool b => b ? 1L : 0L, _ => Arg(0, "default", 0L) };
            case "float": return v switch { long l => (double)l, double d => d, string s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) ? x : Arg(0, "default", 0.0), bool b => b ? 1.0 : 0.0, _ => Arg(0, "default", 0.0) };
            case "abs": return v is long al ? (al == long.MinValue ? -(double)al : Math.Abs(al)) : Math.Abs(JinjaValues.Num(v));
            case "round":
            {
                long prec = Arg(0, "precision", 0L) is long p ? p : 0;
                if (prec is < 0 or > 15) throw new JinjaException($"round precision {prec} is outside 0..15");
                return Math.Round(JinjaValues.Num(v), (int)prec, MidpointRounding.AwayFromZero);
            }
            case "replace":
            {
                string s = Str(v, name), from = JinjaValues.Str(Arg(0, "old")), to = JinjaValues.Str(Arg(1, "new"));
                return from.Length == 0 ? s : s.Replace(from, to, StringComparison.Ordinal);
            }
            case "indent":
            {
                string s = Str(v, name);
                var w = Arg(0, "width", 4L);
                double width = w is string ? 0 : JinjaValues.Num(w);
                if (!(width >= 0 && width <= MaxIndent)) throw new JinjaException($"indent width {width} is outside 0..{MaxIndent}");
                string pad = w is string ws ? ws : new string(' ', (int)width);
                bool first = JinjaValues.Truthy(Arg(1, "first", false)), blank = JinjaValues.Truthy(Arg(2, "blank", false));
                var lines = s.Split('\n');
                for (int i = 0; i < lines.Length; i++)
                    if ((i > 0 || first) && (blank || lines[i].Length > 0)) lines[i] = pad + lines[i];
                return string.Join('\n', lines);
            }
            case "selectattr" or "rejectattr":
            {
                if (v is not List<object?> l) throw new JinjaException($"{name} of a {JinjaValues.TypeName(v)}");
                string attr = JinjaValues.Str(Arg(0, "attr"));
                string? test = args.Count > 1 ? JinjaValues.Str(args[1]) : null;
                var targs = args.Skip(2).ToList();
                bool keep = name == "selectattr";
                return l.Where(x => (test is null ? JinjaValues.Truthy(Member(x, attr)) : Test(test, Member(x, attr), targs)) == keep).ToList();
            }
            case "select" or "reject":
            {
                if (v is not List<object?> l) throw new JinjaException($"{name} of a {JinjaValues.TypeName(v)}");
                string? test = args.Count > 0 ? JinjaValues.Str(args[0]) : null;
                var targs = args.Skip(1).ToList();
                bool keep = name == "select";
                return l.Where(x => (test is null ? JinjaValues.Truthy(x) : Test(test, x, targs)) == keep).ToList();
            }
            case "map":
            {
                if (v is not List<object?> l) throw new JinjaException($"map of a {JinjaValues.TypeName(v)}");
                if (kwargs.TryGetValue("attribute", out var attr))
                {
                    var dflt = kwargs.TryGetValue("default", out var dv) ? dv : JinjaUndefined.Instance;
                    return l.ConvertAll(x => Member(x, JinjaValues.Str(attr)) is JinjaUndefined ? dflt : Member(x, JinjaValues.Str(attr)));
                }
                string f = JinjaValues.Str(Arg(0, "filter"));
                var rest = args.Skip(1).ToList();
                return l.ConvertAll(x => Filter(f, x, rest, new JinjaObject(), interp, scope));
            }
            case "wordcount": return (long)Str(v, name).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            case "batch" or "slice": throw new JinjaException($"filter '{name}' is not supported");
            default: throw new JinjaException($"unknown filter '{name}'");
        }
    }

    private static string Str(object? v, string filter) => v as string ?? throw new JinjaException($"filter '{filter}' expects a string, got {JinjaValues.TypeName(v)}");

    private static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool start = true;
        foreach (char c in s)
        {
            sb.Append(start ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            start = !char.IsLetterOrDigit(c);
        }
        return sb.ToString();
    }

    private static int Compare(object? a, object? b)
    {
        if (JinjaValues.IsNumber(a) && JinjaValues.IsNumber(b)) return JinjaValues.Num(a).CompareTo(JinjaValues.Num(b));
        if (a is string sa && b is string sb) return string.CompareOrdinal(sa, sb);
        if (a is bool ba && b is bool bb) return ba.CompareTo(bb);
        throw new JinjaException($"cannot compare {JinjaValues.TypeName(a)} with {JinjaValues.TypeName(b)}");
    }

    public static object? Method(object? obj, string name, List<object?> args, JinjaObject kwargs)
    {
        switch (obj)
        {
            case string s:
                switch (name)
                {
                    case "upper": return s.ToUpperInvariant();
                    case "lower": return s.ToLowerInvariant();
                    case "title": return Title(s);
                    case "capitalize": return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
                    case "strip": return args.Count > 0 && args[0] is string cs ? s.Trim(cs.ToCharArray()) : s.Trim();
                    case "lstrip": return args.Count > 0 && args[0] is string ls ? s.TrimStart(ls.ToCharArray()) : s.TrimStart();
                    case "rstrip": return args.Count > 0 && args[0] is string rs ? s.TrimEnd(rs.ToCharArray()) : s.TrimEnd();
                    case "startswith": return args.Count > 0 && args[0] is string p && s.StartsWith(p, StringComparison.Ordinal) || args.Count > 0 && args[0] is List<object?> pl && pl.Any(x => x is string q && s.StartsWith(q, StringComparison.Ordinal));
                    case "endswith": return args.Count > 0 && args[0] is string p2 && s.EndsWith(p2, StringComparison.Ordinal) || args.Count > 0 && args[0] is List<object?> pl2 && pl2.Any(x => x is string q && s.EndsWith(q, StringComparison.Ordinal));
                    case "split":
                    {
                        var sep = args.Count > 0 ? args[0] : kwargs.TryGetValue("sep", out var sv) ? sv : null;
                        long max = args.Count > 1 && args[1] is long m ? m : -1;
                        if (sep is string sp && sp.Length > 0)
                            return (max < 0 ? s.Split(sp) : s.Split(sp, (int)max + 1)).Select(x => (object?)x).ToList();
                        return s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(x => (object?)x).ToList();
                    }
                    case "replace":
                    {
                        string from = JinjaValues.Str(args[0]), to = JinjaValues.Str(args[1]);
                        if (args.Count > 2 && args[2] is long count)
                        {
                            var sb = new StringBuilder();
                            int at = 0;
                            for (long k = 0; k < count; k++)
                            {
                                int f = s.IndexOf(from, at, StringComparison.Ordinal);
                                if (f < 0 || from.Length == 0) break;
                                sb.Append(s, at, f - at).Append(to);
                                at = f + from.Length;
                            }
                            return sb.Append(s, at, s.Length - at).ToString();
                        }
                        return from.Length == 0 ? s : s.Replace(from, to, StringComparison.Ordinal);
                    }
                }
                break;
            case JinjaObject o:
                switch (name)
                {
                    case "items": return o.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList();
                    case "keys": return o.Keys.Cast<object?>().ToList();
                    case "values": return o.Values.ToList();
                    case "get": return args.Count > 0 && args[0] is string k && o.TryGetValue(k, out var v) ? v : args.Count > 1 ? args[1] : null;
                }
                break;
        }
        throw new JinjaException($"unknown method '{name}' on {JinjaValues.TypeName(obj)}");
    }
}
