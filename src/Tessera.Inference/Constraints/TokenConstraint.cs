namespace Tessera.Inference.Constraints;

/// <summary>
/// The model's vocabulary as bytes, in a trie: each id's bytes (null for special tokens, which
/// constrained text never contains). Build once per tokenizer and share.
/// </summary>
public sealed class TokenVocabulary
{
    // Trie, flattened: node n's children are childByte/childNode[childStart[n] .. childStart[n+1]), its ids tokenIds[tokenStart[n] .. tokenStart[n+1]).
    readonly int[] childStart, childNode, tokenStart, tokenIds;
    readonly byte[] childByte;
    readonly byte[]?[] bytes;

    /// <summary>A vocabulary of <paramref name="tokenBytes"/>.Count ids (a null entry: never allowed in constrained text).</summary>
    public TokenVocabulary(IReadOnlyList<byte[]?> tokenBytes)
    {
        bytes = [.. tokenBytes];
        var children = new List<SortedDictionary<byte, int>> { new() };
        var ids = new List<List<int>> { new() };
        var singles = new bool[256];
        for (int id = 0; id < bytes.Length; id++)
        {
            var b = bytes[id];
            if (b is null || b.Length == 0) continue;
            if (b.Length == 1) singles[b[0]] = true;
            int n = 0;
            foreach (byte x in b)
            {
                if (!children[n].TryGetValue(x, out int c)) { c = children.Count; children[n][x] = c; children.Add(new()); ids.Add(new()); }
                n = c;
            }
            ids[n].Add(id);
        }
        Nodes = children.Count;
        childStart = new int[Nodes + 1]; tokenStart = new int[Nodes + 1];
        var cb = new List<byte>(); var cn = new List<int>(); var ti = new List<int>();
        for (int n = 0; n < Nodes; n++)
        {
            childStart[n] = cb.Count; tokenStart[n] = ti.Count;
            foreach (var (x, c) in children[n]) { cb.Add(x); cn.Add(c); }
            ti.AddRange(ids[n]);
        }
        childStart[Nodes] = cb.Count; tokenStart[Nodes] = ti.Count;
        childByte = [.. cb]; childNode = [.. cn]; tokenIds = [.. ti];
        EveryByteIsAToken = Array.TrueForAll(singles, x => x);
    }

    /// <summary>Ids in the vocabulary.</summary>
    public int Count => bytes.Length;
    /// <summary>Trie nodes.</summary>
    public int Nodes { get; }
    /// <summary>
    /// True when each of the 256 bytes is a token by itself (byte-level BPE, byte fallback): then a
    /// text of k bytes can always be finished in k tokens, which is what the budget guarantee needs.
    /// </summary>
    public bool EveryByteIsAToken { get; }

    /// <summary>The bytes of one id (null: special).</summary>
    public byte[]? Bytes(int id) => (uint)id < (uint)bytes.Length ? bytes[id] : null;

    internal ReadOnlySpan<int> TokensAt(int node) => tokenIds.AsSpan(tokenStart[node], tokenStart[node + 1] - tokenStart[node]);
    internal int ChildCount(int node) => childStart[node + 1] - childStart[node];
    internal byte ChildByte(int node, int i) => childByte[childStart[node] + i];
    internal int Child(int node, int i) => childNode[childStart[node] + i];
}

/// <summary>
/// Which tokens may come next in one grammar state: the allowed ids and, for each, the fewest bytes
/// that finish the text after it.
/// </summary>
public sealed record TokenMask(int[] Ids, int[] MinToFinish);

/// <summary>
/// A grammar over a vocabulary: token masks for each <see cref="MatchState"/>, found by walking the
/// vocabulary trie with the matcher (a prefix the grammar refuses prunes its whole subtree) and
/// cached per state, so a state met again (inside a free string, between properties, at the same
/// spot of a repeated structure) costs a dictionary look-up. Thread-safe; share it between the
/// sequences of one schema.
/// </summary>
public sealed class TokenConstraint
{
    /// <summary>States whose masks are kept; past this the cache starts afresh.</summary>
    public const int MaxCachedStates = 4096;

    readonly Dictionary<MatchState, TokenMask> cache = [];
    readonly Lock gate = new();
    long hits, misses;

    /// <summary>A constraint of <paramref name="grammar"/> over <paramref name="vocabulary"/>.</summary>
    public TokenConstraint(Grammar grammar, TokenVocabulary vocabulary)
    {
        Matcher = new GrammarMatcher(grammar);
        Vocabulary = vocabulary;
        Start = Matcher.Start();
    }

    /// <summary>The byte-level matcher.</summary>
    public GrammarMatcher Matcher { get; }
    /// <summary>The vocabulary tokens are drawn from.</summary>
    public TokenVocabulary Vocabulary { get; }
    /// <summary>The state before any token.</summary>
    public MatchState Start { get; }
    /// <summary>Fewest tokens any complete output needs (bytes, when every byte is a token).</summary>
    public int MinTokens => Start.MinToFinish;

    /// <summary>Mask look-ups answered from the cache, and those that walked the trie.</summary>
    public (long Hits, long Misses) CacheStats { get { lock (gate) return (hits, misses); } }

    /// <summary>The state after token <paramref name="id"/> (dead for a special or refused token).</summary>
    public MatchState Advance(MatchState state, int id) => Vocabulary.Bytes(id) is { } b ? Matcher.Step(state, b) : Dead;

    static readonly MatchState Dead = new([], false);

    /// <summary>The allowed tokens in <paramref name="state"/>.</summary>
    public TokenMask Mask(MatchState state)
    {
        lock (gate)
        {
            if (cache.TryGetValue(state, out var m)) { hits++; return m; }
            misses++;
        }
        var ids = new List<int>(); var mins = new List<int>();
        Walk(0, state, ids, mins);
        var mask = new TokenMask([.. ids], [.. mins]);
        lock (gate)
        {
            if (cache.Count >= MaxCachedStates) cache.Clear();
            cache[state] = mask;
        }
        return mask;
    }

    void Walk(int node, MatchState state, List<int> ids, List<int> mins)
    {
        int n = Vocabulary.ChildCount(node);
        for (int i = 0; i < n; i++)
        {
            var next = Matcher.Step(state, Vocabulary.ChildByte(node, i));
            if (next.Dead) continue;
            int child = Vocabulary.Child(node, i);
            foreach (int id in Vocabulary.TokensAt(child)) { ids.Add(id); mins.Add(next.MinToFinish); }
            if (next.CanContinue) Walk(child, next, ids, mins);
        }
    }

    /// <summary>
    /// A per-sequence logits processor: <paramref name="promptLength"/> ids of the history are the
    /// prompt, at most <paramref name="maxNewTokens"/> follow, and <paramref name="endIds"/> end the
    /// text (allowed once it is complete). Throws <see cref="ConstraintException"/> when the budget
    /// cannot hold even the shortest valid output.
    /// </summary>
    public ConstrainedLogits Processor(int promptLength, int maxNewTokens, IReadOnlySet<int> endIds)
    {
        if (endIds.Count == 0) throw new ConstraintException("constrained output needs at least one end-of-text id.");
        if (MinTokens > maxNewTokens)
            throw new ConstraintException($"the shortest output the constraint allows needs {MinTokens} tokens, but the budget is {maxNewTokens}; raise max_tokens.");
        return new ConstrainedLogits(this, promptLength, maxNewTokens, endIds);
    }
}

/// <summary>
/// Masks one sequence's logits to its constraint: a token is kept when the grammar accepts its
/// bytes and what is left can still be finished within the remaining budget (so the output is
/// complete even when it runs to max_tokens, provided every byte is a token); end ids are kept once
/// the text is complete. Stateful: one per sequence.
/// </summary>
public sealed class ConstrainedLogits : ILogitsProcessor
{
    readonly TokenConstraint constraint;
    readonly int promptLength, maxNewTokens;
    readonly IReadOnlySet<int> endIds;
    MatchState state;
    int consumed;
    int[] kept = [];

    internal ConstrainedLogits(TokenConstraint constraint, int promptLength, int maxNewTokens, IReadOnlySet<int> endIds)
    {
        this.constraint = constraint; this.promptLength = promptLength; this.maxNewTokens = maxNewTokens; this.endIds = endIds;
        state = constraint.Start;
        consumed = promptLength;
    }

    /// <summary>The grammar state after the tokens seen so far.</summary>
    public MatchState State => state;

    /// <inheritdoc/>
    public void Process(ReadOnlySpan<int> history, Span<float> logits)
    {
        if (history.Length < consumed) throw new InvalidOperationException($"ConstrainedLogits: the sequence shrank from {consumed} to {history.Length} ids (rollback is not supported).");
        for (; consumed < history.Length; consumed++) state = constraint.Advance(state, history[consumed]);
        Restrict(constraint, state, maxNewTokens - (history.Length - promptLength), endIds, logits, ref kept);
    }

    /// <summary>
    /// Sets every logit to −∞ but those of the tokens <paramref name="state"/> allows with
    /// <paramref name="remaining"/> tokens left (this one included), and of the end ids when the
    /// text is complete (or, should it ever happen, when nothing else is allowed).
    /// </summary>
    internal static void Restrict(TokenConstraint constraint, MatchState state, int remaining, IReadOnlySet<int> endIds, Span<float> logits, ref int[] kept)
    {
        if (kept.Length != logits.Length) kept = new int[logits.Length];
        int allowed = 0;
        if (state.CanContinue)
        {
            var mask = constraint.Mask(state);
            var ids = mask.Ids; var mins = mask.MinToFinish;
            for (int i = 0; i < ids.Length; i++)
                if (mins[i] <= remaining - 1 && ids[i] < logits.Length) kept[allowed++] = ids[i];
        }
        // Keep the chosen logits, then blank the row and put them back.
        Span<float> values = allowed <= 1024 ? stackalloc float[allowed] : new float[allowed];
        for (int i = 0; i < allowed; i++) values[i] = logits[kept[i]];
        bool ending = state.Accepted || allowed == 0;
        Span<float> ends = stackalloc float[endIds.Count];
        int e = 0;
        if (ending) foreach (int id in endIds) ends[e++] = (uint)id < (uint)logits.Length ? logits[id] : 0;
        logits.Fill(float.NegativeInfinity);
        for (int i = 0; i < allowed; i++) logits[kept[i]] = values[i];
        e = 0;
        if (ending) foreach (int id in endIds) { if ((uint)id < (uint)logits.Length) logits[id] = ends[e]; e++; }
    }
}

/// <summary>
/// Free text unless the output starts with the constraint's opening bytes (<c>&lt;tool_call&gt;</c>):
/// while the output is still a prefix of them, tokens that would start them wrongly are refused;
/// once it holds them, the rest is constrained like <see cref="ConstrainedLogits"/>; once it has
/// left them, nothing is masked. This is tool_choice "auto": the model decides whether to call,
/// and a call it starts is always well formed. One per sequence.
/// </summary>
public sealed class TriggeredLogits : ILogitsProcessor
{
    readonly TokenConstraint constraint;
    readonly byte[] trigger;
    readonly int promptLength, maxNewTokens;
    readonly IReadOnlySet<int> endIds;
    readonly List<byte> prefix = [];
    MatchState state;
    int consumed;
    int[] kept = [];

    /// <summary>A processor whose constraint starts with <paramref name="trigger"/>.</summary>
    public TriggeredLogits(TokenConstraint constraint, byte[] trigger, int promptLength, int maxNewTokens, IReadOnlySet<int> endIds)
    {
        if (trigger.Length == 0) throw new ArgumentException("TriggeredLogits: the trigger must not be empty.");
        this.constraint = constraint; this.trigger = trigger; this.promptLength = promptLength; this.maxNewTokens = maxNewTokens; this.endIds = endIds;
        state = constraint.Start;
        consumed = promptLength;
    }

    /// <summary>Free text so far (still undecided or decided against the constraint) or constrained.</summary>
    public bool Triggered { get; private set; }
    /// <summary>True once the output has left the trigger: plain text from then on.</summary>
    public bool Free { get; private set; }

    /// <inheritdoc/>
    public void Process(ReadOnlySpan<int> history, Span<float> logits)
    {
        for (; consumed < history.Length; consumed++)
        {
            int id = history[consumed];
            if (Triggered) { state = constraint.Advance(state, id); continue; }
            if (Free) continue;
            if (constraint.Vocabulary.Bytes(id) is not { } b) { Free = true; continue; }
            prefix.AddRange(b);
            if (!Compatible(CollectionsMarshal(prefix), [])) { Free = true; continue; }
            if (prefix.Count >= trigger.Length) { Triggered = true; state = constraint.Matcher.Step(constraint.Start, CollectionsMarshal(prefix)); }
        }
        int remaining = maxNewTokens - (history.Length - promptLength);
        if (Free) return;
        if (Triggered) { ConstrainedLogits.Restrict(constraint, state, remaining, endIds, logits, ref kept); return; }
        // Undecided: a token that keeps to (or completes) the trigger must also keep to the grammar, within the budget.
        var here = constraint.Matcher.Step(constraint.Start, CollectionsMarshal(prefix));
        var vocab = constraint.Vocabulary;
        for (int id = 0; id < logits.Length && id < vocab.Count; id++)
        {
            if (vocab.Bytes(id) is not { } b || !Compatible(CollectionsMarshal(prefix), b)) continue;
            var next = constraint.Matcher.Step(here, b);
            if (next.Dead || next.MinToFinish > remaining - 1) logits[id] = float.NegativeInfinity;
        }
    }

    static ReadOnlySpan<byte> CollectionsMarshal(List<byte> list) => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list);

    // Do prefix + more and the trigger agree on their common length?
    bool Compatible(ReadOnlySpan<byte> head, ReadOnlySpan<byte> more)
    {
        int n = Math.Min(head.Length + more.Length, trigger.Length);
        for (int i = 0; i < n; i++)
            if ((i < head.Length ? head[i] : more[i - head.Length]) != trigger[i]) return false;
        return true;
    }
}
