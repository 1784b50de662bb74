namespace Tessera.Text.Templates;

/// <summary>
/// A parsed Jinja template (the subset HF chat templates use: output, if/elif/else, for with
/// loop variables, filters and <c>else</c>, set (also block set and namespace attributes),
/// macros, break/continue, filter blocks; tests, filters and string/dict methods of
/// @huggingface/jinja). Rendering semantics follow @huggingface/jinja 0.5.11, the renderer
/// HF's JavaScript stack uses, so outputs match it byte for byte. Globals: <c>raise_exception</c>,
/// <c>namespace</c>, <c>range</c>, <c>strftime_now</c> (UTC), <c>true</c>/<c>false</c>/<c>none</c>.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly List<JinjaNode> _nodes;

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="JinjaException">A syntax error or unsupported statement; the message says where.</exception>
    public JinjaTemplate(string source)
    {
        Source = source;
        _nodes = JinjaParser.Parse(source);
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Renders with <paramref name="variables"/> (plain .NET data: dictionaries, lists, strings, numbers, booleans; converted by <see cref="JinjaValues.From"/>).</summary>
    /// <exception cref="JinjaException">The template raised (<c>raise_exception</c>) or failed; the message says why.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        var globals = new JinjaScope(null);
        globals.Set("raise_exception", new JinjaCallable("raise_exception", (a, _) => throw new JinjaException(a.Count > 0 ? JinjaValues.Str(a[0]) : "raise_exception called")));
        globals.Set("namespace", new JinjaCallable("namespace", (a, kw) =>
        {
            var ns = new JinjaNamespace();
            if (a.Count > 0 && a[0] is JinjaObject init) foreach (var (k, v) in init) ns[k] = v;
            foreach (var (k, v) in kw) ns[k] = v;
            return ns;
        }));
        globals.Set("range", new JinjaCallable("range", (a, _) =>
        {
            if (a.Count is < 1 or > 3) throw new JinjaException($"range takes 1 to 3 arguments, got {a.Count}");
            long start = a.Count > 1 ? (long)JinjaValues.Num(a[0]) : 0, stop = (long)JinjaValues.Num(a.Count > 1 ? a[1] : a[0]), step = a.Count > 2 ? (long)JinjaValues.Num(a[2]) : 1;
            if (step == 0) throw new JinjaException("range step must not be zero");
            JinjaInterpreter.CheckListSize(step > 0 ? (long)Math.Max(0, Math.Ceiling(((double)stop - start) / step)) : (long)Math.Max(0, Math.Ceiling(((double)start - stop) / -(double)step)));
            var list = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
            return list;
        }));
        globals.Set("strftime_now", new JinjaCallable("strftime_now", (a, _) => Strftime(DateTime.UtcNow, a.Count > 0 ? JinjaValues.Str(a[0]) : "%Y-%m-%d")));
        var scope = new JinjaScope(globals);
        foreach (var (k, v) in variables) scope.Set(k, v is Delegate d ? Wrap(k, d) : JinjaValues.From(v));
        return new JinjaInterpreter().Render(_nodes, scope);
    }

    private static JinjaCallable Wrap(string name, Delegate d) => d switch
    {
        Func<string, string> f => new JinjaCallable(name, (a, _) => f(a.Count > 0 ? JinjaValues.Str(a[0]) : "")),
        _ => throw new JinjaException($"variable '{name}': only Func<string, string> functions can be passed"),
    };

    /// <summary>The C strftime subset templates use (%Y %m %d %H %M %S %b %B %a %A %y %e %j %%).</summary>
    public static string Strftime(DateTime t, string format)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length) { sb.Append(format[i]); continue; }
            char c = format[++i];
            sb.Append(c switch
            {
                'Y' => t.Year.ToString("D4", inv), 'm' => t.Month.ToString("D2", inv), 'd' => t.Day.ToString("D2", inv), 'e' => t.Day.ToString(inv).PadLeft(2),
                'H' => t.Hour.ToString("D2", inv), 'M' => t.Minute.ToString("D2", inv), 'S' => t.Second.ToString("D2", inv), 'y' => (t.Year % 100).ToString("D2", inv),
                'b' => t.ToString("MMM", inv), 'B' => t.ToString("MMMM", inv), 'a' => t.ToString("ddd", inv), 'A' => t.ToString("dddd", inv),
                'j' => t.DayOfYear.ToString("D3", inv), '%' => "%", _ => "%" + c,
            });
        }
        return sb.ToString();
    }
}
