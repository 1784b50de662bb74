namespace Tessera.Inference.Constraints;

/// <summary>
/// Where a partial output stands in a <see cref="Grammar"/>: every way the bytes so far can be read
/// (a set of frame stacks, each topped by a frame that takes the next byte), and whether the text
/// may end here. Immutable, compared by value, so it keys the token-mask cache.
/// </summary>
public sealed class MatchState : IEquatable<MatchState>
{
    internal readonly MatchStack[] Stacks;
    readonly int hash;

    internal MatchState(MatchStack[] stacks, bool accepted)
    {
        Stacks = stacks;
        Accepted = accepted;
        var h = new HashCode();
        h.Add(accepted);
        foreach (var s in stacks) h.Add(s.GetHashCode());
        hash = h.ToHashCode();
        int min = accepted ? 0 : GrammarNode.Infinite;
        foreach (var s in stacks) min = Math.Min(min, s.MinToFinish);
        MinToFinish = min;
    }

    /// <summary>True when the text so far is a complete instance.</summary>
    public bool Accepted { get; }
    /// <summary>True when no continuation and no ending is possible (the text left the grammar).</summary>
    public bool Dead => Stacks.Length == 0 && !Accepted;
    /// <summary>Fewest bytes that complete the text (0 when it may end here).</summary>
    public int MinToFinish { get; }
    /// <summary>True when some byte may follow.</summary>
    public bool CanContinue => Stacks.Length > 0;

    /// <inheritdoc/>
    public bool Equals(MatchState? other)
    {
        if (other is null || other.hash != hash || other.Accepted != Accepted || other.Stacks.Length != Stacks.Length) return false;
        for (int i = 0; i < Stacks.Length; i++) if (!Stacks[i].Equals(other.Stacks[i])) return false;
        return true;
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as MatchState);
    /// <inheritdoc/>
    public override int GetHashCode() => hash;
}

/// <summary>What a stack frame is waiting for.</summary>
internal abstract record Frame;
/// <summary>Leaf: the rest of a literal.</summary>
internal sealed record LiteralFrame(byte[] Bytes, int Pos) : Frame;
/// <summary>Leaf: a string, before its opening quote (Open false) or inside it.</summary>
internal sealed record StringFrame(StringNode Node, bool Open, int Count, int Need, byte Lo, byte Hi, bool Escape) : Frame;
/// <summary>Leaf: one byte of a set.</summary>
internal sealed record ByteSetFrame(ByteSetNode Node) : Frame;
/// <summary>Leaf: a number, its text so far.</summary>
internal sealed record NumberFrame(NumberNode Node, string Text) : Frame;
/// <summary>Continuation: the sequence's items from Next on.</summary>
internal sealed record SequenceFrame(SequenceNode Node, int Next) : Frame;
/// <summary>Continuation: a list after Count items (−1: after the opening byte); ItemNext: an item comes first.</summary>
internal sealed record ListFrame(ListNode Node, int Count, bool ItemNext) : Frame;
/// <summary>Continuation: an object whose properties from Next on are still to come.</summary>
internal sealed record ObjectFrame(ObjectNode Node, int Next, bool Wrote) : Frame;

/// <summary>An immutable linked stack of frames with its hash and the bytes needed to finish it, both computed once.</summary>
internal sealed class MatchStack : IEquatable<MatchStack>
{
    public readonly Frame Top;
    public readonly MatchStack? Below;
    public readonly int Depth, MinToFinish;
    readonly int hash;

    public MatchStack(Frame top, MatchStack? below)
    {
        Top = top; Below = below;
        Depth = (below?.Depth ?? 0) + 1;
        hash = HashCode.Combine(top, below?.hash ?? 0);
        MinToFinish = GrammarNode.Add(FrameMin(top), below?.MinToFinish ?? 0);
    }

    static int FrameMin(Frame f) => f switch
    {
        LiteralFrame l => l.Bytes.Length - l.Pos,
        ByteSetFrame => 1,
        StringFrame s when !s.Open => s.Node.MinBytes,
        StringFrame s => s.Need + (s.Escape ? 1 : 0) + Math.Max(0, s.Node.MinLength - s.Count - (s.Escape ? 1 : 0)) + 1,
        NumberFrame n => n.Node.Remaining(n.Text),
        SequenceFrame q => SumFrom(q.Node.Items, q.Next),
        ListFrame l => l.ItemNext ? GrammarNode.Add(l.Node.Item.MinBytes, l.Node.RemainingAfter(l.Count)) : l.Node.RemainingAfter(l.Count),
        ObjectFrame o => o.Node.RemainingFrom(o.Next, o.Wrote),
        _ => throw new InvalidOperationException(f.GetType().Name),
    };

    static int SumFrom(GrammarNode[] items, int from)
    {
        int m = 0;
        for (int i = from; i < items.Length; i++) m = GrammarNode.Add(m, items[i].MinBytes);
        return m;
    }

    public bool Equals(MatchStack? other)
    {
        var a = this; var b = other;
        while (true)
        {
            if (ReferenceEquals(a, b)) return true;
            if (a is null || b is null || a.hash != b.hash || a.Depth != b.Depth || !a.Top.Equals(b.Top)) return false;
            a = a.Below; b = b.Below;
        }
    }

    public override bool Equals(object? obj) => Equals(obj as MatchStack);
    public override int GetHashCode() => hash;
}

/// <summary>
/// Runs a <see cref="Grammar"/> over bytes, many readings at once (a small GLR-style set of
/// stacks): <see cref="Start"/>, then <c>Step</c> per byte. Nesting deeper than
/// <see cref="MaxDepth"/> frames is cut off, so recursive schemas stay bounded.
/// </summary>
public sealed class GrammarMatcher(Grammar grammar)
{
    /// <summary>Deepest frame stack followed (about a third as many levels of JSON nesting).</summary>
    public const int MaxDepth = 96;
    /// <summary>Most readings kept at once; an ambiguous grammar past this is cut down (never below one).</summary>
    public const int MaxStacks = 256;

    static readonly byte[][] Single = Enumerable.Range(0, 256).Select(b => new[] { (byte)b }).ToArray();

    /// <summary>The grammar being matched.</summary>
    public Grammar Grammar { get; } = grammar;

    /// <summary>The state before any byte.</summary>
    public MatchState Start()
    {
        var sink = new Sink();
        Expand(Grammar.Root, null, sink, 0);
        return sink.ToState();
    }

    /// <summary>The state after one more byte (<see cref="MatchState.Dead"/> when the byte is not allowed).</summary>
    public MatchState Step(MatchState state, byte b)
    {
        var sink = new Sink();
        foreach (var s in state.Stacks) StepStack(s, b, sink);
        return sink.ToState();
    }

    /// <summary>The state after several bytes.</summary>
    public MatchState Step(MatchState state, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            if (state.Dead) return state;
            state = Step(state, b);
        }
        return state;
    }

    /// <summary>True when <paramref name="text"/> is a complete instance of the grammar.</summary>
    public bool Matches(ReadOnlySpan<byte> text) => Step(Start(), text).Accepted;

    sealed class Sink
    {
        public readonly HashSet<MatchStack> Stacks = [];
        public readonly List<MatchStack> Order = [];
        public bool Accepted;
        public void Add(MatchStack s) { if (Order.Count < MaxStacks && Stacks.Add(s)) Order.Add(s); }
        public MatchState ToState()
        {
            // A finished number at the end of everything leaves no byte to trigger its ending: accept it here.
            foreach (var s in Order)
                if (s.Top is NumberFrame n && (s.Below?.MinToFinish ?? 0) == 0 && n.Node.Complete(n.Text)) Accepted = true;
            return new([.. Order], Accepted);
        }
    }

    static MatchStack? Push(Frame f, MatchStack? below) => (below?.Depth ?? 0) >= MaxDepth ? null : new MatchStack(f, below);

    // Expands a node into leaf-topped stacks (or acceptance) without consuming a byte. Nodes with no
    // finite text are skipped; `hops` guards against references that expand to themselves.
    void Expand(GrammarNode n, MatchStack? below, Sink sink, int hops)
    {
        if (n.MinBytes >= GrammarNode.Infinite || hops > MaxDepth) return;
        switch (n)
        {
            case LiteralNode l:
                if (l.Bytes.Length == 0) Resume(below, sink, hops + 1);
                else Leaf(new LiteralFrame(l.Bytes, 0), below, sink);
                break;
            case SequenceNode q:
                if (q.Items.Length == 0) { Resume(below, sink, hops + 1); break; }
                if (q.Items.Length == 1) { Expand(q.Items[0], below, sink, hops + 1); break; }
                if (Push(new SequenceFrame(q, 1), below) is { } sq) Expand(q.Items[0], sq, sink, hops + 1);
                break;
            case ChoiceNode c:
                foreach (var item in c.Items) Expand(item, below, sink, hops + 1);
                break;
            case ByteSetNode b: Leaf(new ByteSetFrame(b), below, sink); break;
            case StringNode s: Leaf(new StringFrame(s, false, 0, 0, 0, 0, false), below, sink); break;
            case NumberNode num: Leaf(new NumberFrame(num, ""), below, sink); break;
            case ListNode list:
                if (Push(new ListFrame(list, -1, false), below) is { } lf) Leaf(new LiteralFrame(Single[list.Open], 0), lf, sink);
                break;
            case ObjectNode o:
                if (Push(new ObjectFrame(o, 0, false), below) is { } of) Leaf(new LiteralFrame(Single['{'], 0), of, sink);
                break;
            case ReferenceNode r:
                if (r.Node is { } target) Expand(target, below, sink, hops + 1);
                break;
            default: throw new InvalidOperationException($"GrammarMatcher: unknown node {n.GetType().Name}.");
        }
    }

    static void Leaf(Frame f, MatchStack? below, Sink sink)
    {
        if (Push(f, below) is { } s && s.MinToFinish < GrammarNode.Infinite) sink.Add(s);
    }

    // The frame on top of `s` (a continuation) is resumed: its node's next part is expanded.
    void Resume(MatchStack? s, Sink sink, int hops)
    {
        if (s is null) { sink.Accepted = true; return; }
        var below = s.Below;
        switch (s.Top)
        {
            case SequenceFrame q:
                var rest = q.Next + 1 < q.Node.Items.Length ? Push(new SequenceFrame(q.Node, q.Next + 1), below) : below;
                if (q.Next + 1 < q.Node.Items.Length && rest is null) return;
                Expand(q.Node.Items[q.Next], rest, sink, hops);
                break;
            case ListFrame { ItemNext: true } l:
                if (Push(l with { ItemNext = false }, below) is { } after) Expand(l.Node.Item, after, sink, hops);
                break;
            case ListFrame l:
                var n = l.Node;
                int count = Math.Max(l.Count, 0);
                if (count >= n.MinItems) Leaf(new LiteralFrame(Single[n.Close], 0), below, sink);
                if (n.MaxItems < 0 || count < n.MaxItems)
                {
                    if (l.Count < 0) { if (Push(new ListFrame(n, 1, false), below) is { } first) Expand(n.Item, first, sink, hops); }
                    else if (Push(new ListFrame(n, count + 1, true), below) is { } next) Leaf(new LiteralFrame(Single[','], 0), next, sink);
                }
                break;
            case ObjectFrame o:
                var props = o.Node.Properties;
                bool requiredLeft = false;
                for (int j = o.Next; j < props.Length; j++)
                {
                    if (Push(new ObjectFrame(o.Node, j + 1, true), below) is { } rest2)
                        Expand(o.Wrote ? o.Node.Later[j] : o.Node.First[j], rest2, sink, hops);
                    if (props[j].Required) { requiredLeft = true; break; }
                }
                if (!requiredLeft) Leaf(new LiteralFrame(Single['}'], 0), below, sink);
                break;
            default: throw new InvalidOperationException($"GrammarMatcher: {s.Top.GetType().Name} is not a continuation.");
        }
    }

    void StepStack(MatchStack s, byte b, Sink sink)
    {
        var below = s.Below;
        switch (s.Top)
        {
            case LiteralFrame l:
                if (l.Bytes[l.Pos] != b) return;
                if (l.Pos + 1 == l.Bytes.Length) Resume(below, sink, 0);
                else Leaf(l with { Pos = l.Pos + 1 }, below, sink);
                return;
            case ByteSetFrame set:
                if (set.Node.Contains(b)) Resume(below, sink, 0);
                return;
            case NumberFrame num:
                if (b is (>= (byte)'0' and <= (byte)'9') or (byte)'.' or (byte)'-')
                {
                    string u = num.Text + (char)b;
                    if (num.Node.Feasible(u)) Leaf(num with { Text = u }, below, sink);
                }
                if (num.Node.Complete(num.Text))
                {
                    // The number may end here: whatever follows it takes the byte.
                    var after = new Sink();
                    Resume(below, after, 0);
                    foreach (var t in after.Order) StepStack(t, b, sink);
                }
                return;
            case StringFrame str:
                StepString(str, below, b, sink);
                return;
            default: throw new InvalidOperationException($"GrammarMatcher: {s.Top.GetType().Name} is not a leaf.");
        }
    }

    void StepString(StringFrame s, MatchStack? below, byte b, Sink sink)
    {
        var n = s.Node;
        if (!s.Open) { if (b == '"') Leaf(s with { Open = true }, below, sink); return; }
        if (s.Escape)
        {
            if (b is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t')
                Leaf(s with { Escape = false }, below, sink);
            return;
        }
        if (s.Need > 0)
        {
            if (b >= s.Lo && b <= s.Hi) Leaf(s with { Need = s.Need - 1, Lo = 0x80, Hi = 0xBF }, below, sink);
            return;
        }
        if (b == '"') { if (s.Count >= n.MinLength) Resume(below, sink, 0); return; }
        if (b < 0x20) return;
        if (n.Bounded)
        {
            // Printable ASCII only, one byte per character, no escapes: every validator counts the same length.
            if (b > 0x7E || b == '\\' || (n.MaxLength >= 0 && s.Count >= n.MaxLength)) return;
            Leaf(s with { Count = s.Count + 1 }, below, sink);
            return;
        }
        if (b == '\\') { Leaf(s with { Escape = true }, below, sink); return; }
        if (b < 0x80) { Leaf(s, below, sink); return; }
        // UTF-8 lead bytes with the range their first continuation byte must fall in (no overlongs, no surrogates, ≤ U+10FFFF).
        (int need, byte lo, byte hi) = b switch
        {
            >= 0xC2 and <= 0xDF => (1, (byte)0x80, (byte)0xBF),
            0xE0 => (2, (byte)0xA0, (byte)0xBF),
            >= 0xE1 and <= 0xEC or 0xEE or 0xEF => (2, (byte)0x80, (byte)0xBF),
            0xED => (2, (byte)0x80, (byte)0x9F),
            0xF0 => (3, (byte)0x90, (byte)0xBF),
            >= 0xF1 and <= 0xF3 => (3, (byte)0x80, (byte)0xBF),
            0xF4 => (3, (byte)0x80, (byte)0x8F),
            _ => (0, (byte)0, (byte)0),
        };
        if (need > 0) Leaf(s with { Need = need, Lo = lo, Hi = hi }, below, sink);
    }
}
