namespace Tessera.Inference.Constraints;

/// <summary>
/// One node of a compiled output grammar over bytes. The JSON-schema compiler, the choice
/// constraint and the regex constraint all produce these; <see cref="GrammarMatcher"/> walks them.
/// <see cref="MinBytes"/> is the length of the shortest text the node matches (int.MaxValue when
/// none exists, e.g. a recursion with no way out), found by a fixed point over the graph.
/// </summary>
public abstract class GrammarNode
{
    internal const int Infinite = int.MaxValue / 4;

    /// <summary>Bytes of the shortest text this node matches.</summary>
    public int MinBytes { get; internal set; } = Infinite;

    /// <summary>Recomputes <see cref="MinBytes"/> from the children; true when it changed.</summary>
    internal abstract bool UpdateMin();

    internal static int Add(int a, int b) => Math.Min(Infinite, a + b);
}

/// <summary>Exactly these bytes.</summary>
public sealed class LiteralNode(byte[] bytes) : GrammarNode
{
    /// <summary>The bytes to match.</summary>
    public byte[] Bytes { get; } = bytes;
    internal override bool UpdateMin() { bool c = MinBytes != Bytes.Length; MinBytes = Bytes.Length; return c; }
}

/// <summary>One byte from a set (a regex character class, or one byte of a UTF-8 sequence).</summary>
public sealed class ByteSetNode : GrammarNode
{
    readonly ulong[] bits = new ulong[4];

    /// <summary>A node matching any one of <paramref name="bytes"/>; an empty set is refused.</summary>
    public ByteSetNode(IEnumerable<byte> bytes)
    {
        foreach (byte b in bytes) bits[b >> 6] |= 1UL << (b & 63);
        if ((bits[0] | bits[1] | bits[2] | bits[3]) == 0) throw new ConstraintException("a byte set must hold at least one byte.");
    }

    /// <summary>A node matching any byte in [<paramref name="lo"/>, <paramref name="hi"/>].</summary>
    public static ByteSetNode Range(byte lo, byte hi) => new(Enumerable.Range(lo, hi - lo + 1).Select(b => (byte)b));

    /// <summary>True when <paramref name="b"/> is in the set.</summary>
    public bool Contains(byte b) => ((bits[b >> 6] >> (b & 63)) & 1) != 0;

    internal override bool UpdateMin() { bool c = MinBytes != 1; MinBytes = 1; return c; }
}

/// <summary>The children one after another.</summary>
public sealed class SequenceNode(GrammarNode[] items) : GrammarNode
{
    /// <summary>The parts, in order.</summary>
    public GrammarNode[] Items { get; } = items;
    internal override bool UpdateMin()
    {
        int m = 0;
        foreach (var i in Items) m = Add(m, i.MinBytes);
        bool c = m != MinBytes; MinBytes = m; return c;
    }
}

/// <summary>Any one of the children.</summary>
public sealed class ChoiceNode(GrammarNode[] items) : GrammarNode
{
    /// <summary>The alternatives.</summary>
    public GrammarNode[] Items { get; } = items;
    internal override bool UpdateMin()
    {
        int m = Infinite;
        foreach (var i in Items) m = Math.Min(m, i.MinBytes);
        bool c = m != MinBytes; MinBytes = m; return c;
    }
}

/// <summary>
/// A JSON string with its quotes. Unbounded strings take any valid UTF-8 except control characters
/// and the escapes <c>\" \\ \/ \b \f \n \r \t</c> (no <c>\u</c>, so no lone surrogates); strings with
/// a length bound take printable ASCII only, where bytes, code points and grapheme clusters agree,
/// so every validator counts the same length.
/// </summary>
public sealed class StringNode(int minLength, int maxLength) : GrammarNode
{
    /// <summary>Fewest characters.</summary>
    public int MinLength { get; } = minLength;
    /// <summary>Most characters; -1 = unbounded.</summary>
    public int MaxLength { get; } = maxLength;
    /// <summary>True when a length bound applies (characters are then printable ASCII and counted).</summary>
    public bool Bounded => MinLength > 0 || MaxLength >= 0;
    internal override bool UpdateMin() { int m = 2 + MinLength; bool c = m != MinBytes; MinBytes = m; return c; }
}

/// <summary>
/// A JSON number <c>-?(0|[1-9][0-9]*)(\.[0-9]+)?</c> (no exponent) with at most
/// <see cref="NumberNode.MaxIntegerDigits"/> integer and <see cref="NumberNode.MaxFractionDigits"/>
/// fraction digits, within optional inclusive or exclusive bounds; integers have no fraction.
/// </summary>
public sealed class NumberNode : GrammarNode
{
    /// <summary>Integer digits allowed (keeps every value exact in <see cref="decimal"/>).</summary>
    public const int MaxIntegerDigits = 15;
    /// <summary>Fraction digits allowed.</summary>
    public const int MaxFractionDigits = 6;

    /// <summary>A number node; null bounds are open.</summary>
    public NumberNode(bool integer, decimal? minimum, decimal? maximum, bool exclusiveMinimum, bool exclusiveMaximum)
    {
        Integer = integer;
        decimal step = integer ? 1m : 0.000001m;
        decimal limit = 999_999_999_999_999m;
        // The bounds as the smallest and largest reachable grid values: every later test is then an interval check.
        Low = minimum is { } lo ? GridCeiling(lo, step, exclusiveMinimum) : -limit;
        High = maximum is { } hi ? GridFloor(hi, step, exclusiveMaximum) : limit;
        Low = Math.Max(Low, -limit - (integer ? 0 : 0.999999m));
        High = Math.Min(High, limit + (integer ? 0 : 0.999999m));
    }

    /// <summary>True for <c>"type":"integer"</c>.</summary>
    public bool Integer { get; }
    /// <summary>Smallest allowed value.</summary>
    public decimal Low { get; }
    /// <summary>Largest allowed value.</summary>
    public decimal High { get; }

    static decimal GridCeiling(decimal v, decimal step, bool exclusive)
    {
        decimal g = Math.Ceiling(v / step) * step;
        return exclusive && g == v ? g + step : g;
    }

    static decimal GridFloor(decimal v, decimal step, bool exclusive)
    {
        decimal g = Math.Floor(v / step) * step;
        return exclusive && g == v ? g - step : g;
    }

    readonly Dictionary<string, int> shortest = [];

    /// <summary>Bytes still needed to finish the numeral <paramref name="text"/> (a feasible prefix) within bounds.</summary>
    internal int Remaining(string text)
    {
        lock (shortest)
        {
            if (shortest.TryGetValue(text, out int r)) return r;
            r = Search(text);
            if (shortest.Count < 100_000) shortest[text] = r;
            return r;
        }
    }

    // Breadth-first over extensions of the text: the first complete, in-bounds one is the shortest.
    int Search(string text)
    {
        var frontier = new List<string> { text };
        for (int extra = 0; extra <= MaxIntegerDigits + MaxFractionDigits + 3 && frontier.Count > 0; extra++)
        {
            foreach (var t in frontier) if (Complete(t)) return extra;
            var next = new List<string>();
            foreach (var t in frontier)
                foreach (char ch in "0123456789.-")
                {
                    string u = t + ch;
                    if (next.Count < 256 && Feasible(u)) next.Add(u);
                }
            frontier = next;
        }
        return Infinite;
    }

    /// <summary>True when <paramref name="text"/> is a whole numeral within bounds.</summary>
    internal bool Complete(string text)
    {
        if (!Parse(text, out bool neg, out string i, out bool dot, out string f)) return false;
        if (i.Length == 0 || (dot && f.Length == 0)) return false;
        decimal v = Value(neg, i, f);
        return v >= Low && v <= High;
    }

    /// <summary>True when <paramref name="text"/> is a numeral prefix that some in-bounds numeral extends.</summary>
    internal bool Feasible(string text)
    {
        if (!Parse(text, out bool neg, out string i, out bool dot, out string f)) return false;
        decimal step = Integer ? 1m : 0.000001m;
        if (dot)
        {
            // I.F then up to the remaining fraction digits: the grid points of [I.F, I.F + 10^-|F| − step] (mirrored when negative).
            decimal a = Value(false, i, f), b = a + Pow10(-f.Length) - step;
            return Meets(neg, a, b);
        }
        if (i.Length == 0) return neg ? Low <= Math.Min(0, High) : Low <= High;
        if (i == "0") return Meets(neg, 0, Integer ? 0 : 1m - step);
        decimal n = decimal.Parse(i, System.Globalization.CultureInfo.InvariantCulture);
        for (int k = 0; k + i.Length <= MaxIntegerDigits; k++)
        {
            decimal scale = Pow10(k), lo = n * scale, hi = (n + 1) * scale - step;
            if (Meets(neg, lo, hi)) return true;
        }
        return false;
    }

    // Does [a, b] (or [−b, −a] when negative) hold a value within [Low, High]?
    bool Meets(bool neg, decimal a, decimal b)
    {
        if (neg) (a, b) = (-b, -a);
        return Math.Max(a, Low) <= Math.Min(b, High);
    }

    static decimal Pow10(int k)
    {
        decimal r = 1m;
        if (k >= 0) for (int j = 0; j < k; j++) r *= 10m;
        else for (int j = 0; j < -k; j++) r /= 10m;
        return r;
    }

    static decimal Value(bool neg, string i, string f)
    {
        decimal v = i.Length == 0 ? 0 : decimal.Parse(i, System.Globalization.CultureInfo.InvariantCulture);
        if (f.Length > 0) v += decimal.Parse(f, System.Globalization.CultureInfo.InvariantCulture) * Pow10(-f.Length);
        return neg ? -v : v;
    }

    // Splits a numeral prefix; false when it can never become a numeral this node allows.
    bool Parse(string text, out bool neg, out string i, out bool dot, out string f)
    {
        neg = text.StartsWith('-');
        string rest = neg ? text[1..] : text;
        int d = rest.IndexOf('.');
        dot = d >= 0;
        i = dot ? rest[..d] : rest;
        f = dot ? rest[(d + 1)..] : "";
        if (dot && (Integer || i.Length == 0)) return false;
        if (i.Length > MaxIntegerDigits || f.Length > MaxFractionDigits) return false;
        foreach (char c in i) if (c is < '0' or > '9') return false;
        foreach (char c in f) if (c is < '0' or > '9') return false;
        if (i.Length > 1 && i[0] == '0') return false;
        return true;
    }

    internal override bool UpdateMin()
    {
        int m = Remaining("");
        bool c = m != MinBytes; MinBytes = m; return c;
    }
}

/// <summary>
/// A bracketed list: <see cref="Open"/>, between <see cref="MinItems"/> and <see cref="MaxItems"/>
/// items separated by commas, <see cref="Close"/>. JSON arrays use <c>[ ]</c>; a free-form JSON
/// object is this with <c>{ }</c> and <c>"key":value</c> items.
/// </summary>
public sealed class ListNode(byte open, byte close, GrammarNode item, int minItems, int maxItems) : GrammarNode
{
    /// <summary>The opening byte.</summary>
    public byte Open { get; } = open;
    /// <summary>The closing byte.</summary>
    public byte Close { get; } = close;
    /// <summary>Each element.</summary>
    public GrammarNode Item { get; internal set; } = item;
    /// <summary>Fewest items.</summary>
    public int MinItems { get; } = minItems;
    /// <summary>Most items; -1 = unbounded.</summary>
    public int MaxItems { get; } = maxItems;

    /// <summary>Bytes to finish after <paramref name="count"/> items (−1: right after the opening byte).</summary>
    internal int RemainingAfter(int count)
    {
        int c = Math.Max(count, 0);
        int missing = Math.Max(0, MinItems - c);
        if (missing == 0) return 1;
        int first = count <= 0 ? Item.MinBytes : Add(1, Item.MinBytes);
        return Add(Add(first, (int)Math.Min(Infinite, (long)(missing - 1) * Add(1, Item.MinBytes))), 1);
    }

    internal override bool UpdateMin() { int m = Add(1, RemainingAfter(-1)); bool c = m != MinBytes; MinBytes = m; return c; }
}

/// <summary>One property of an <see cref="ObjectNode"/>.</summary>
public sealed record ObjectProperty(string Name, GrammarNode Value, bool Required);

/// <summary>
/// A JSON object with known properties, written in the schema's order; required ones always,
/// optional ones when the model chooses to. No other keys are produced, so additionalProperties
/// never matters.
/// </summary>
public sealed class ObjectNode : GrammarNode
{
    /// <summary>An object over <paramref name="properties"/>, in order.</summary>
    public ObjectNode(IReadOnlyList<ObjectProperty> properties)
    {
        Properties = [.. properties];
        First = new SequenceNode[Properties.Length];
        Later = new SequenceNode[Properties.Length];
        for (int j = 0; j < Properties.Length; j++)
        {
            var key = System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(Properties[j].Name) + ":");
            First[j] = new SequenceNode([new LiteralNode(key), Properties[j].Value]);
            Later[j] = new SequenceNode([new LiteralNode([(byte)',', .. key]), Properties[j].Value]);
        }
    }

    /// <summary>The properties in output order.</summary>
    public ObjectProperty[] Properties { get; }
    internal SequenceNode[] First { get; }
    internal SequenceNode[] Later { get; }

    /// <summary>Bytes to finish when properties from <paramref name="next"/> on are still to come.</summary>
    internal int RemainingFrom(int next, bool wrote)
    {
        int m = 0;
        for (int j = next; j < Properties.Length; j++)
            if (Properties[j].Required) { m = Add(m, (wrote ? Later[j] : First[j]).MinBytes); wrote = true; }
        return Add(m, 1);
    }

    internal override bool UpdateMin()
    {
        int m = Add(1, RemainingFrom(0, false));
        bool c = m != MinBytes; MinBytes = m; return c;
    }
}

/// <summary>Another node, filled in later: how recursive schemas (<c>$ref</c>) close their loops.</summary>
public sealed class ReferenceNode(string target) : GrammarNode
{
    /// <summary>The reference as written (for messages).</summary>
    public string Target { get; } = target;
    /// <summary>The node it stands for.</summary>
    public GrammarNode? Node { get; internal set; }
    internal override bool UpdateMin() { int m = Node?.MinBytes ?? Infinite; bool c = m != MinBytes; MinBytes = m; return c; }
}

/// <summary>A compiled grammar: the root node and every node reachable from it.</summary>
public sealed class Grammar
{
    /// <summary>Most nodes one grammar may have (a schema past this is refused as too large).</summary>
    public const int MaxNodes = 20_000;

    /// <summary>Wraps <paramref name="root"/>: collects the nodes, computes <see cref="GrammarNode.MinBytes"/>, and refuses a grammar with no finite text.</summary>
    public Grammar(GrammarNode root, string what)
    {
        Root = root;
        var all = new List<GrammarNode>();
        var seen = new HashSet<GrammarNode>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<GrammarNode>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (!seen.Add(n)) continue;
            all.Add(n);
            if (all.Count > MaxNodes) throw new ConstraintException($"{what} is too large: it compiles to more than {MaxNodes} grammar nodes.");
            foreach (var c in Children(n)) stack.Push(c);
        }
        Nodes = all.Count;
        // Fixed point, children first: each pass can only lower a MinBytes, so this ends.
        all.Reverse();
        for (int pass = 0; pass < all.Count + 2; pass++)
        {
            bool changed = false;
            foreach (var n in all) changed |= n.UpdateMin();
            if (!changed) break;
        }
        if (root.MinBytes >= GrammarNode.Infinite)
            throw new ConstraintException($"{what} has no finite instance (a recursion without a way out, or contradictory bounds).");
    }

    /// <summary>Exactly one of <paramref name="choices"/> (the choice constraint: a label, a yes/no, one of a list).</summary>
    public static Grammar Choices(IReadOnlyList<string> choices)
    {
        if (choices.Count == 0) throw new ConstraintException("a choice constraint needs at least one choice.");
        if (choices.Count > MaxNodes) throw new ConstraintException($"a choice constraint is too large: more than {MaxNodes} choices.");
        return new Grammar(new ChoiceNode([.. choices.Select(c => new LiteralNode(System.Text.Encoding.UTF8.GetBytes(c)))]), "the choice list");
    }

    /// <summary>The start node.</summary>
    public GrammarNode Root { get; }
    /// <summary>Nodes in the grammar.</summary>
    public int Nodes { get; }

    static IEnumerable<GrammarNode> Children(GrammarNode n) => n switch
    {
        SequenceNode s => s.Items,
        ChoiceNode c => c.Items,
        ListNode l => [l.Item],
        ObjectNode o => [.. o.First, .. o.Later],
        ReferenceNode r => r.Node is { } t ? [t] : [],
        _ => [],
    };
}

/// <summary>A constraint (schema, choice list, pattern) that cannot be compiled; the message says why.</summary>
public sealed class ConstraintException(string message) : ArgumentException(message);
