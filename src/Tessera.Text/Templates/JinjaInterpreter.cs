using System.Text;

namespace Tessera.Text.Templates;

/// <summary>A variable scope; lookups walk outwards, assignments land in the scope itself.</summary>
internal sealed class JinjaScope(JinjaScope? parent)
{
    private readonly Dictionary<string, object?> _vars = new(StringComparer.Ordinal);
    public JinjaScope? Parent { get; } = parent;
    public void Set(string name, object? value) => _vars[name] = value;
    public object? Get(string name)
    {
        for (var s = this; s is not null; s = s.Parent) if (s._vars.TryGetValue(name, out var v)) return v;
        return JinjaUndefined.Instance;
    }
}

/// <summary>
/// Evaluates a parsed template. Scoping follows the reference runtime: a for loop has one
/// scope for all its iterations (assignments inside persist across iterations, not after the
/// loop), <c>if</c> has none, a macro call gets a scope under the caller's.
/// </summary>
internal sealed class JinjaInterpreter
{
    private sealed class BreakSignal : Exception;
    private sealed class ContinueSignal : Exception;
    private static readonly BreakSignal Break = new();
    private static readonly ContinueSignal Continue = new();

    // A template is untrusted text (it comes with a model file), so rendering is bounded: a
    // loop or recursion that would run away, or a string or list that would eat the memory,
    // is refused with a JinjaException instead. Real chat templates stay far below these.
    /// <summary>Longest string (and rendered output) a template may build, in characters.</summary>
    public const int MaxStringChars = 1 << 22;
    /// <summary>Longest list a template may build.</summary>
    public const int MaxListItems = 1 << 20;
    /// <summary>Statements and expressions one render may evaluate.</summary>
    public const long MaxSteps = 10_000_000;
    /// <summary>Deepest chain of macro calls.</summary>
    public const int MaxCallDepth = 64;

    private long _steps;
    private int _calls;

    private void Step()
    {
        if (++_steps > MaxSteps) throw new JinjaException($"the template ran for more than {MaxSteps} steps");
        if (!System.Runtime.CompilerServices.RuntimeHelpers.TryEnsureSufficientExecutionStack()) throw new JinjaException("the template recursed too deeply");
    }

    /// <summary>Throws when <paramref name="count"/> items would make a list longer than <see cref="MaxListItems"/>.</summary>
    public static void CheckListSize(long count)
    {
        if (count > MaxListItems) throw new JinjaException($"the template built a list of {count} items, more than {MaxListItems}");
    }

    /// <summary>Throws when <paramref name="chars"/> would make a string longer than <see cref="MaxStringChars"/>.</summary>
    public static void CheckStringSize(long chars)
    {
        if (chars > MaxStringChars) throw new JinjaException($"the template built a string of {chars} characters, more than {MaxStringChars}");
    }

    public string Render(List<JinjaNode> nodes, JinjaScope scope)
    {
        var sb = new StringBuilder();
        Block(nodes, scope, sb);
        return sb.ToString();
    }

    private void Block(List<JinjaNode> nodes, JinjaScope scope, StringBuilder sb)
    {
        foreach (var n in nodes) Statement(n, scope, sb);
    }

    private void Statement(JinjaNode node, JinjaScope scope, StringBuilder sb)
    {
        Step();
        StatementCore(node, scope, sb);
        CheckStringSize(sb.Length);
    }

    private void StatementCore(JinjaNode node, JinjaScope scope, StringBuilder sb)
    {
        switch (node)
        {
            case TextNode t: sb.Append(t.Text); break;
            case OutputNode o:
            {
                var v = Eval(o.Expr, scope);
                if (v is not (null or JinjaUndefined)) sb.Append(JinjaValues.Str(v));
                break;
            }
            case IfNode i: Block(JinjaValues.Truthy(Eval(i.Condition, scope)) ? i.Then : i.Else, scope, sb); break;
            case ForNode f: For(f, scope, sb); break;
            case SetNode s:
            {
                object? value = s.Value is not null ? Eval(s.Value, scope) : Render(s.Body!, scope);
                Assign(s.Target, value, scope);
                break;
            }
            case MacroNode m: scope.Set(m.Name, Register(m)); break;
            case BreakNode: throw Break;
            case ContinueNode: throw Continue;
            case FilterBlockNode fb:
            {
                string body = Render(fb.Body, scope);
                sb.Append(JinjaValues.Str(JinjaBuiltins.Filter(fb.Filter, body, fb.Args.ConvertAll(a => Eval(a, scope)), new JinjaObject(), this, scope)));
                break;
            }
            default: throw new JinjaException($"unsupported statement {node.GetType().Name}");
        }
    }

    private void Assign(JinjaExpr target, object? value, JinjaScope scope)
    {
        switch (target)
        {
            case NameExpr n: scope.Set(n.Name, value); break;
            case AttrExpr a when Eval(a.Target, scope) is JinjaObject o: o[a.Name] = value; break;
            case ListExpr { IsTuple: true } t when value is List<object?> l && l.Count == t.Items.Count:
                for (int k = 0; k < l.Count; k++) Assign(t.Items[k], l[k], scope);
                break;
            default: throw new JinjaException("invalid assignment target");
        }
    }

    private void For(ForNode f, JinjaScope outer, StringBuilder sb)
    {
        var scope = new JinjaScope(outer);
        var iterable = Eval(f.Iterable, scope);
        List<object?> source = iterable switch
        {
            List<object?> l => l,
            JinjaObject o => o.Keys.Cast<object?>().ToList(),
            string s => JinjaBuiltins.Chars(s),
            _ => throw new JinjaException($"expected a list or object to loop over, got {JinjaValues.TypeName(iterable)}"),
        };
        var items = new List<object?>(source.Count);
        foreach (var item in source)
        {
            if (f.Filter is not null)
            {
                var test = new JinjaScope(scope);
                Bind(f.Targets, item, test);
                if (!JinjaValues.Truthy(Eval(f.Filter, test))) continue;
            }
            items.Add(item);
        }
        for (int i = 0; i < items.Count; i++)
        {
            Step();
            var loop = new JinjaObject
            {
                ["index"] = (long)(i + 1), ["index0"] = (long)i, ["revindex"] = (long)(items.Count - i), ["revindex0"] = (long)(items.Count - i - 1),
                ["first"] = i == 0, ["last"] = i == items.Count - 1, ["length"] = (long)items.Count,
                ["previtem"] = i > 0 ? items[i - 1] : JinjaUndefined.Instance, ["nextitem"] = i < items.Count - 1 ? items[i + 1] : JinjaUndefined.Instance,
            };
            scope.Set("loop", loop);
            Bind(f.Targets, items[i], scope);
            try { Block(f.Body, scope, sb); }
            catch (BreakSignal) { break; }
            catch (ContinueSignal) { }
        }
        if (items.Count == 0) Block(f.Else, scope, sb);
    }

    private static void Bind(List<string> targets, object? item, JinjaScope scope)
    {
        if (targets.Count == 1) { scope.Set(targets[0], item); return; }
        if (item is not List<object?> l) throw new JinjaException($"cannot unpack a {JinjaValues.TypeName(item)} into {targets.Count} loop variables");
        if (l.Count != targets.Count) throw new JinjaException($"too {(targets.Count > l.Count ? "few" : "many")} items to unpack");
        for (int k = 0; k < targets.Count; k++) scope.Set(targets[k], l[k]);
    }

    private JinjaCallable Macro(MacroNode m) => new(m.Name, (args, kwargs) => throw new InvalidOperationException("macros are invoked through CallMacro"));

    private object? CallMacro(MacroNode m, List<object?> args, JinjaObject kwargs, JinjaScope caller)
    {
        if (_calls >= MaxCallDepth) throw new JinjaException($"macro '{m.Name}' calls nest deeper than {MaxCallDepth}");
        _calls++;
        var result = CallMacroCore(m, args, kwargs, caller);
        _calls--;
        return result;
    }

    private object? CallMacroCore(MacroNode m, List<object?> args, JinjaObject kwargs, JinjaScope caller)
    {
        var scope = new JinjaScope(caller);
        for (int k = 0; k < m.Params.Count; k++)
        {
            var (name, def) = m.Params[k];
            object? v = k < args.Count ? args[k] : kwargs.TryGetValue(name, out var kv) ? kv : def is not null ? Eval(def, scope) : JinjaUndefined.Instance;
            scope.Set(name, v);
        }
        return Render(m.Body, scope);
    }

    public object? Eval(JinjaExpr e, JinjaScope scope)
    {
        Step();
        var v = EvalCore(e, scope);
        if (v is string s) CheckStringSize(s.Length);
        else if (v is List<object?> l) CheckListSize(l.Count);
        return v;
    }

    private object? EvalCore(JinjaExpr e, JinjaScope scope)
    {
        switch (e)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n: return scope.Get(n.Name);
            case AttrExpr a: return JinjaBuiltins.Member(Eval(a.Target, scope), a.Name);
            case IndexExpr ix: return JinjaBuiltins.Index(Eval(ix.Target, scope), Eval(ix.Index, scope));
            case SliceExpr s:
                return JinjaBuiltins.Slice(Eval(s.Target, scope), s.Start is null ? null : Eval(s.Start, scope), s.Stop is null ? null : Eval(s.Stop, scope), s.Step is null ? null : Eval(s.Step, scope));
            case ListExpr l: return l.Items.ConvertAll(x => Eval(x, scope));
            case DictExpr d:
            {
                var o = new JinjaObject();
                foreach (var (k, v) in d.Items) o[JinjaValues.Str(Eval(k, scope))] = Eval(v, scope);
                return o;
            }
            case UnaryExpr u:
            {
                var v = Eval(u.Operand, scope);
                return u.Op switch
                {
                    "not" => !JinjaValues.Truthy(v),
                    "-" => v is long lv ? -lv : (object)(-JinjaValues.Num(v)),
                    _ => throw new JinjaException($"unknown unary operator {u.Op}"),
                };
            }
            case BinaryExpr b: return Binary(b, scope);
            case CondExpr c: return JinjaValues.Truthy(Eval(c.Condition, scope)) ? Eval(c.Then, scope) : c.Else is null ? JinjaUndefined.Instance : Eval(c.Else, scope);
            case FilterExpr f:
            {
                var kw = new JinjaObject();
                foreach (var (k, v) in f.Kwargs) kw[k] = Eval(v, scope);
                return JinjaBuiltins.Filter(f.Name, Eval(f.Target, scope), f.Args.ConvertAll(x => Eval(x, scope)), kw, this, scope);
            }
            case TestExpr t:
            {
                bool r = JinjaBuiltins.Test(t.Name, Eval(t.Target, scope), t.Args.ConvertAll(x => Eval(x, scope)));
                return t.Negated ? !r : r;
            }
            case CallExpr c: return Call(c, scope);
            default: throw new JinjaException($"unsupported expression {e.GetType().Name}");
        }
    }

    private readonly Dictionary<JinjaCallable, MacroNode> _macros = new(ReferenceEqualityComparer.Instance);

    private object? Call(CallExpr c, JinjaScope scope)
    {
        var args = c.Args.ConvertAll(x => Eval(x, scope));
        var kwargs = new JinjaObject();
        foreach (var (k, v) in c.Kwargs) kwargs[k] = Eval(v, scope);
        // Methods: target.name(...)
        if (c.Target is AttrExpr a)
        {
            var obj = Eval(a.Target, scope);
            if (obj is JinjaObject o && o.TryGetValue(a.Name, out var member) && member is JinjaCallable mc) return Invoke(mc, args, kwargs, scope);
            return JinjaBuiltins.Method(obj, a.Name, args, kwargs);
        }
        var fn = Eval(c.Target, scope);
        if (fn is JinjaCallable f) return Invoke(f, args, kwargs, scope);
        string name = c.Target is NameExpr n ? n.Name : "expression";
        throw new JinjaException($"'{name}' is not a function (it is {JinjaValues.TypeName(fn)})");
    }

    private object? Invoke(JinjaCallable f, List<object?> args, JinjaObject kwargs, JinjaScope scope) =>
        _macros.TryGetValue(f, out var m) ? CallMacro(m, args, kwargs, scope) : f.Invoke(args, kwargs);

    /// <summary>Registers a macro definition so calls evaluate it in the caller's scope.</summary>
    internal JinjaCallable Register(MacroNode m)
    {
        var c = Macro(m);
        _macros[c] = m;
        return c;
    }

    private object? Binary(BinaryExpr b, JinjaScope scope)
    {
        var l = Eval(b.Left, scope);
        if (b.Op == "and") return JinjaValues.Truthy(l) ? Eval(b.Right, scope) : l;
        if (b.Op == "or") return JinjaValues.Truthy(l) ? l : Eval(b.Right, scope);
        var r = Eval(b.Right, scope);
        switch (b.Op)
        {
            case "==": return JinjaValues.Equal(l, r);
            case "!=": return !JinjaValues.Equal(l, r);
        }
        if (l is JinjaUndefined || r is JinjaUndefined)
        {
            if (r is JinjaUndefined && b.Op is "in" or "not in") return b.Op == "not in";
            throw new JinjaException($"cannot apply '{b.Op}' to an undefined value");
        }
        if (l is null || r is null) throw new JinjaException($"cannot apply '{b.Op}' to none");
        if (b.Op == "~") return JinjaValues.Str(l) + JinjaValues.Str(r);
        if (JinjaValues.IsNumber(l) && JinjaValues.IsNumber(r))
        {
            bool isFloat = l is double || r is double;
            double x = JinjaValues.Num(l), y = JinjaValues.Num(r);
            switch (b.Op)
            {
                case "+": return isFloat ? x + y : (object)((long)l + (long)r);
                case "-": return isFloat ? x - y : (object)((long)l - (long)r);
                case "*": return isFloat ? x * y : (object)((long)l * (long)r);
                case "/": return x / y;
                // Integer division by zero gives what the reference's JavaScript numbers give (±Infinity, NaN), not a crash.
                case "//": return isFloat || y == 0 ? Math.Floor(x / y) : (object)(long)Math.Floor(x / y);
                case "%": return isFloat || y == 0 ? x % y : (long)r == -1 ? 0L : (object)((long)l % (long)r);
                case "**": return isFloat || y < 0 ? Math.Pow(x, y) : (object)(long)Math.Pow(x, y);
                case "<": return x < y;
                case ">": return x > y;
                case "<=": return x <= y;
                case ">=": return x >= y;
            }
        }
        if (l is List<object?> la && r is List<object?> lb && b.Op == "+") { CheckListSize((long)la.Count + lb.Count); return la.Concat(lb).ToList(); }
        if (r is List<object?> list && b.Op is "in" or "not in")
        {
            bool found = list.Any(x => JinjaValues.Equal(x, l) && (x is not (List<object?> or JinjaObject) || ReferenceEquals(x, l)));
            return b.Op == "in" ? found : !found;
        }
        if ((l is string || r is string) && b.Op == "+") return JinjaValues.Str(l) + JinjaValues.Str(r);
        if (l is string sl && r is string sr)
        {
            switch (b.Op)
            {
                case "in": return sr.Contains(sl, StringComparison.Ordinal);
                case "not in": return !sr.Contains(sl, StringComparison.Ordinal);
                case "<": return string.CompareOrdinal(sl, sr) < 0;
                case ">": return string.CompareOrdinal(sl, sr) > 0;
                case "<=": return string.CompareOrdinal(sl, sr) <= 0;
                case ">=": return string.CompareOrdinal(sl, sr) >= 0;
            }
        }
        if (l is string key && r is JinjaObject obj && b.Op is "in" or "not in") return b.Op == "in" ? obj.ContainsKey(key) : !obj.ContainsKey(key);
        throw new JinjaException($"cannot apply '{b.Op}' to {JinjaValues.TypeName(l)} and {JinjaValues.TypeName(r)}");
    }
}
