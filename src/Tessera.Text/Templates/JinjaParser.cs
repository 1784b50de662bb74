using System.Globalization;

namespace Tessera.Text.Templates;

/// <summary>Recursive-descent parser for the Jinja subset chat templates use.</summary>
internal sealed class JinjaParser
{
    private readonly List<JinjaToken> _t;
    private int _p;
    private int _depth;
    private int _loops;   // for-loops open around the statement being parsed (a macro body starts at none)

    /// <summary>Deepest nesting of blocks and sub-expressions a template may use (real chat templates nest under 10).</summary>
    public const int MaxNesting = 100;

    // A template is untrusted text (it comes with a model file): nesting is capped so parsing cannot overflow the stack.
    private void Enter()
    {
        if (++_depth > MaxNesting || !System.Runtime.CompilerServices.RuntimeHelpers.TryEnsureSufficientExecutionStack())
            throw new JinjaException($"the template nests deeper than {MaxNesting} levels at offset {Peek.Offset}");
    }

    private JinjaParser(List<JinjaToken> tokens) { _t = tokens; }

    public static List<JinjaNode> Parse(string template)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(template));
        var body = parser.Block(out string? end);
        if (end is not null) throw new JinjaException($"unexpected '{{% {end} %}}'");
        return body;
    }

    private JinjaToken Peek => _t[_p];
    private JinjaToken Next() => _t[_p++];
    private bool IsOp(string op) => Peek.Kind == JinjaTokenKind.Op && Peek.Text == op;
    private bool IsName(string name) => Peek.Kind == JinjaTokenKind.Name && Peek.Text == name;
    private bool AcceptOp(string op) { if (!IsOp(op)) return false; _p++; return true; }
    private bool AcceptName(string n) { if (!IsName(n)) return false; _p++; return true; }
    private void ExpectOp(string op) { if (!AcceptOp(op)) throw Error($"expected '{op}'"); }
    private void ExpectName(string n) { if (!AcceptName(n)) throw Error($"expected '{n}'"); }
    private void Expect(JinjaTokenKind k) { if (Peek.Kind != k) throw Error($"expected {k}"); _p++; }
    private string Name() { if (Peek.Kind != JinjaTokenKind.Name) throw Error("expected a name"); return Next().Text; }
    private JinjaException Error(string what) => new($"{what} but found '{Peek.Text}' at offset {Peek.Offset}");

    /// <summary>Parses nodes until an end-like statement (returned in <paramref name="end"/>, positioned after its keyword) or the end.</summary>
    private List<JinjaNode> Block(out string? end, params string[] enders)
    {
        Enter();
        var nodes = BlockNodes(out end, enders);
        _depth--;
        return nodes;
    }

    private List<JinjaNode> BlockNodes(out string? end, string[] enders)
    {
        var nodes = new List<JinjaNode>();
        while (true)
        {
            var tok = Peek;
            switch (tok.Kind)
            {
                case JinjaTokenKind.End: end = null; return nodes;
                case JinjaTokenKind.Text: _p++; nodes.Add(new TextNode(tok.Text)); continue;
                case JinjaTokenKind.OpenExpr:
                    _p++;
                    nodes.Add(new OutputNode(Expression()));
                    Expect(JinjaTokenKind.CloseExpr);
                    continue;
                case JinjaTokenKind.OpenStmt:
                {
                    _p++;
                    string kw = Name();
                    if (System.Array.IndexOf(enders, kw) >= 0) { end = kw; return nodes; }
                    nodes.Add(Statement(kw));
                    continue;
                }
                default: throw Error("unexpected token");
            }
        }
    }

    private JinjaNode Statement(string kw)
    {
        switch (kw)
        {
            case "if": return If();
            case "for":
            {
                var targets = new List<string> { Name() };
                while (AcceptOp(",")) targets.Add(Name());
                ExpectName("in");
                var iter = Expression(allowCondition: false);
                JinjaExpr? filter = AcceptName("if") ? Expression() : null;
                Expect(JinjaTokenKind.CloseStmt);
                _loops++;
                var body = Block(out string? end, "endfor", "else");
                _loops--;
                var elseBody = new List<JinjaNode>();
                if (end == "else") { Expect(JinjaTokenKind.CloseStmt); elseBody = Block(out end, "endfor"); }
                if (end != "endfor") throw Error("expected '{% endfor %}'");
                Expect(JinjaTokenKind.CloseStmt);
                return new ForNode(targets, iter, filter, body, elseBody);
            }
            case "set":
            {
                var target = Primary(postfixOnly: true);
                if (AcceptOp("="))
                {
                    var value = Expression();
                    Expect(JinjaTokenKind.CloseStmt);
                    return new SetNode(target, value, null);
                }
                Expect(JinjaTokenKind.CloseStmt);
                var body = Block(out string? end, "endset");
                if (end != "endset") throw Error("expected '{% endset %}'");
                Expect(JinjaTokenKind.CloseStmt);
                return new SetNode(target, null, body);
            }
            case "macro":
            {
                string name = Name();
                ExpectOp("(");
                var ps = new List<(string, JinjaExpr?)>();
                while (!IsOp(")"))
                {
                    string pn = Name();
                    JinjaExpr? def = AcceptOp("=") ? Expression() : null;
                    ps.Add((pn, def));
                    if (!AcceptOp(",")) break;
                }
                ExpectOp(")");
                Expect(JinjaTokenKind.CloseStmt);
                int loops = _loops;
                _loops = 0;
                var body = Block(out string? end, "endmacro");
                _loops = loops;
                if (end != "endmacro") throw Error("expected '{% endmacro %}'");
                Expect(JinjaTokenKind.CloseStmt);
                return new MacroNode(name, ps, body);
            }
            case "filter":
            {
                string f = Name();
                var args = new List<JinjaExpr>();
                if (AcceptOp("(")) { while (!IsOp(")")) { args.Add(Expression()); if (!AcceptOp(",")) break; } ExpectOp(")"); }
                Expect(JinjaTokenKind.CloseStmt);
                var body = Block(out string? end, "endfilter");
                if (end != "endfilter") throw Error("expected '{% endfilter %}'");
                Expect(JinjaTokenKind.CloseStmt);
                return new FilterBlockNode(f, args, body);
            }
            case "break" or "continue" when _loops == 0: throw new JinjaException($"'{{% {kw} %}}' outside a for loop at offset {_t[_p - 1].Offset}");
            case "break": Expect(JinjaTokenKind.CloseStmt); return new BreakNode();
            case "continue": Expect(JinjaTokenKind.CloseStmt); return new ContinueNode();
            default: throw new JinjaException($"unsupported statement '{{% {kw} %}}' at offset {_t[_p - 1].Offset}");
        }
    }

    private JinjaNode If()
    {
        var cond = Expression();
        Expect(JinjaTokenKind.CloseStmt);
        var then = Block(out string? end, "elif", "else", "endif");
        var elseBody = new List<JinjaNode>();
        if (end == "elif") elseBody.Add(If());
        else
        {
            if (end == "else") { Expect(JinjaTokenKind.CloseStmt); elseBody = Block(out end, "endif"); }
            if (end != "endif") throw Error("expected '{% endif %}'");
            Expect(JinjaTokenKind.CloseStmt);
        }
        return new IfNode(cond, then, elseBody);
    }

    // expression := or ('if' or ('else' expression)?)?  (tuples without brackets allowed at the top)
    private JinjaExpr Expression(bool allowCondition = true)
    {
        var first = Conditional(allowCondition);
        if (!IsOp(",") || !allowCondition) return first;
        // a bare tuple: a, b
        var items = new List<JinjaExpr> { first };
        while (AcceptOp(",")) { if (Peek.Kind is JinjaTokenKind.CloseExpr or JinjaTokenKind.CloseStmt) break; items.Add(Conditional(true)); }
        return new ListExpr(items, true);
    }

    private JinjaExpr Conditional(bool allowCondition)
    {
        Enter();
        var e = Or();
        if (allowCondition && AcceptName("if"))
        {
            var cond = Or();
            JinjaExpr? other = AcceptName("else") ? Conditional(true) : null;
            e = new CondExpr(e, cond, other);
        }
        _depth--;
        return e;
    }

    private JinjaExpr Or() { var l = And(); while (AcceptName("or")) l = new BinaryExpr("or", l, And()); return l; }
    private JinjaExpr And() { var l = Not(); while (AcceptName("and")) l = new BinaryExpr("and", l, Not()); return l; }
    private JinjaExpr Not()
    {
        if (!AcceptName("not")) return Compare();
        Enter();
        var e = new UnaryExpr("not", Not());
        _depth--;
        return e;
    }

    private JinjaExpr Compare()
    {
        var l = Concat();
        while (true)
        {
            if (Peek.Kind == JinjaTokenKind.Op && Peek.Text is "==" or "!=" or "<" or ">" or "<=" or ">=") { string op = Next().Text; l = new BinaryExpr(op, l, Concat()); continue; }
            if (AcceptName("in")) { l = new BinaryExpr("in", l, Concat()); continue; }
            if (IsName("not") && _t[_p + 1].Kind == JinjaTokenKind.Name && _t[_p + 1].Text == "in") { _p += 2; l = new BinaryExpr("not in", l, Concat()); continue; }
            return l;
        }
    }

    private JinjaExpr Concat() { var l = Additive(); while (AcceptOp("~")) l = new BinaryExpr("~", l, Additive()); return l; }

    private JinjaExpr Additive()
    {
        var l = Multiplicative();
        while (IsOp("+") || IsOp("-")) { string op = Next().Text; l = new BinaryExpr(op, l, Multiplicative()); }
        return l;
    }

    private JinjaExpr Multiplicative()
    {
        var l = Unary();
        while (Peek.Kind == JinjaTokenKind.Op && Peek.Text is "*" or "/" or "//" or "%") { string op = Next().Text; l = new BinaryExpr(op, l, Unary()); }
        return l;
    }

    private JinjaExpr Unary()
    {
        if (IsOp("-") || IsOp("+"))
        {
            Enter();
            bool minus = Next().Text == "-";
            var operand = Unary();
            _depth--;
            return FilterTail(minus ? new UnaryExpr("-", operand) : operand);
        }
        return Power();
    }

    private JinjaExpr Power()
    {
        var l = FilterTail(Primary(postfixOnly: false));
        while (AcceptOp("**")) l = new BinaryExpr("**", l, FilterTail(Primary(postfixOnly: false)));
        return l;
    }

    // filters (|name(args)) and tests (is [not] name [arg])
    private JinjaExpr FilterTail(JinjaExpr e)
    {
        while (true)
        {
            if (AcceptOp("|"))
            {
                string name = Name();
                var (args, kwargs) = IsOp("(") ? CallArgs() : (new List<JinjaExpr>(), new List<(string, JinjaExpr)>());
                e = new FilterExpr(e, name, args, kwargs);
                continue;
            }
            if (AcceptName("is"))
            {
                bool neg = AcceptName("not");
                string name = Peek.Kind == JinjaTokenKind.Name ? Next().Text : Peek.Kind == JinjaTokenKind.Op && Peek.Text is "==" or "!=" or "<" or ">" ? Next().Text : throw Error("expected a test name");
                var args = new List<JinjaExpr>();
                if (IsOp("(")) args = CallArgs().Args;
                else if (Peek.Kind is JinjaTokenKind.String or JinjaTokenKind.Int or JinjaTokenKind.Float || (Peek.Kind == JinjaTokenKind.Name && Peek.Text is not ("and" or "or" or "else" or "if" or "is" or "not" or "in")))
                    args.Add(Primary(postfixOnly: false));
                e = new TestExpr(e, name, neg, args);
                continue;
            }
            return e;
        }
    }

    private (List<JinjaExpr> Args, List<(string, JinjaExpr)> Kwargs) CallArgs()
    {
        ExpectOp("(");
        var args = new List<JinjaExpr>();
        var kwargs = new List<(string, JinjaExpr)>();
        while (!IsOp(")"))
        {
            if (Peek.Kind == JinjaTokenKind.Name && _t[_p + 1].Kind == JinjaTokenKind.Op && _t[_p + 1].Text == "=")
            {
                string k = Next().Text;
                _p++;
                kwargs.Add((k, Conditional(true)));
            }
            else args.Add(Conditional(true));
            if (!AcceptOp(",")) break;
        }
        ExpectOp(")");
        return (args, kwargs);
    }

    private JinjaExpr Primary(bool postfixOnly)
    {
        var tok = Next();
        JinjaExpr e;
        switch (tok.Kind)
        {
            // An integer past 64 bits becomes a float, as in the reference (JavaScript numbers).
            case JinjaTokenKind.Int: e = new LiteralExpr(long.TryParse(tok.Text, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : (object)double.Parse(tok.Text, CultureInfo.InvariantCulture)); break;
            case JinjaTokenKind.Float: e = new LiteralExpr(double.Parse(tok.Text, CultureInfo.InvariantCulture)); break;
            case JinjaTokenKind.String:
            {
                string s = tok.Text;
                while (Peek.Kind == JinjaTokenKind.String) s += Next().Text; // adjacent literals concatenate
                e = new LiteralExpr(s);
                break;
            }
            case JinjaTokenKind.Name:
                e = tok.Text switch
                {
                    "true" or "True" => new LiteralExpr(true),
                    "false" or "False" => new LiteralExpr(false),
                    "none" or "None" => new LiteralExpr(null),
                    _ => new NameExpr(tok.Text),
                };
                break;
            case JinjaTokenKind.Op when tok.Text == "(":
            {
                if (AcceptOp(")")) { e = new ListExpr([], true); break; }
                var first = Conditional(true);
                if (IsOp(","))
                {
                    var items = new List<JinjaExpr> { first };
                    while (AcceptOp(",")) { if (IsOp(")")) break; items.Add(Conditional(true)); }
                    e = new ListExpr(items, true);
                }
                else e = first;
                ExpectOp(")");
                break;
            }
            case JinjaTokenKind.Op when tok.Text == "[":
            {
                var items = new List<JinjaExpr>();
                while (!IsOp("]")) { items.Add(Conditional(true)); if (!AcceptOp(",")) break; }
                ExpectOp("]");
                e = new ListExpr(items, false);
                break;
            }
            case JinjaTokenKind.Op when tok.Text == "{":
            {
                var items = new List<(JinjaExpr, JinjaExpr)>();
                while (!IsOp("}"))
                {
                    var k = Conditional(true);
                    ExpectOp(":");
                    items.Add((k, Conditional(true)));
                    if (!AcceptOp(",")) break;
                }
                ExpectOp("}");
                e = new DictExpr(items);
                break;
            }
            default: _p--; throw Error("expected an expression");
        }
        // postfix: .attr, [index or slice], (call)
        while (true)
        {
            if (AcceptOp(".")) { e = new AttrExpr(e, Name()); continue; }
            if (AcceptOp("["))
            {
                JinjaExpr? a = null, b = null, c = null;
                bool slice = false;
                if (!IsOp(":")) a = Conditional(true);
                if (AcceptOp(":"))
                {
                    slice = true;
                    if (!IsOp("]") && !IsOp(":")) b = Conditional(true);
                    if (AcceptOp(":") && !IsOp("]")) c = Conditional(true);
                }
                ExpectOp("]");
                e = slice ? new SliceExpr(e, a, b, c) : new IndexExpr(e, a!);
                continue;
            }
            if (!postfixOnly && IsOp("(")) { var (args, kwargs) = CallArgs(); e = new CallExpr(e, args, kwargs); continue; }
            return e;
        }
    }
}
