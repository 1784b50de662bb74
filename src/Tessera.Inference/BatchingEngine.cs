using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Tessera.Model;

namespace Tessera.Inference;

/// <summary>
/// One forward step of a <see cref="BatchingEngine"/>: rows in the pass, how many of them were
/// prompt rows (prefill), tokens produced, and the <see cref="System.Diagnostics.Stopwatch"/>
/// timestamp when the step finished.
/// </summary>
public readonly record struct EngineStep(int Rows, int PromptRows, int Tokens, long Timestamp);

/// <summary>How a <see cref="BatchingEngine"/> shares the machine between sequences.</summary>
public sealed record BatchingOptions
{
    /// <summary>Sequences decoded together (KV cache slots); later requests wait for a free slot.</summary>
    public int MaxSequences { get; init; } = 32;

    /// <summary>Prompt tokens fed per step over all joining sequences, so a long prompt does not stall the others' decoding for long.</summary>
    public int PrefillChunk { get; init; } = 256;

    /// <summary>
    /// Tokens a sequence may have produced but its caller not yet read; past that it sits out steps
    /// until the caller catches up, so a slow reader costs memory for at most this many events.
    /// </summary>
    public int MaxBufferedTokens { get; init; } = 64;

    /// <summary>
    /// Bytes of KV blocks kept across requests (<see cref="PrefixCache"/>); 0 = no prefix cache. A
    /// prompt whose keys and values alone exceed it is refused.
    /// </summary>
    public long PrefixCacheBytes { get; init; }

    /// <summary>
    /// The prefix-cache budget a server uses when none is given: the keys and values of every
    /// slot at full context (the live KV cache's own size), at most 256 MB. The pool is committed
    /// at start (<see cref="PrefixCache"/>), so a small model does not reserve 256 MB for it.
    /// </summary>
    public static long DefaultPrefixCacheBytes(ModelConfig config, int maxSequences = 32)
    {
        long kv = (long)maxSequences * config.ContextLength * 2L * config.Layers * config.KvHeads * config.HeadDim * sizeof(float);
        return Math.Min(256L << 20, kv);
    }

    /// <summary>Throws one clear <see cref="ArgumentException"/> for an impossible setting.</summary>
    public BatchingOptions Validate()
    {
        if (PrefixCacheBytes < 0) throw new ArgumentException($"prefix cache bytes must be ≥ 0, got {PrefixCacheBytes}.");
        if (MaxSequences < 1) throw new ArgumentException($"max sequences must be ≥ 1, got {MaxSequences}.");
        if (PrefillChunk < 1) throw new ArgumentException($"prefill chunk must be ≥ 1, got {PrefillChunk}.");
        if (MaxBufferedTokens < 1) throw new ArgumentException($"max buffered tokens must be ≥ 1, got {MaxBufferedTokens}.");
        return this;
    }
}

/// <summary>
/// Continuous batching over a KV cache: a scheduler thread runs one forward pass per step over
/// every active sequence — one decode row each, plus chunks of the prompts of sequences that just
/// joined — so the weights are streamed once per step however many sequences share it. Requests
/// join and leave between steps; a finished or cancelled sequence frees its slot at once.
/// Score and Embed run on the same thread between steps. Safe to call from many threads.
/// Greedy output is the same token for token as <see cref="ReferenceEngine"/>'s.
/// </summary>
public sealed class BatchingEngine : IGenerationEngine, IDisposable
{
    readonly BatchingOptions options;
    readonly KvCache cache;
    readonly ForwardPass pass;
    readonly object gate = new();
    readonly Queue<Work> waiting = new();
    readonly List<Work> active = [];
    readonly Stack<int> freeSlots = new();
    readonly AutoResetEvent wake = new(false);
    readonly Thread scheduler;
    bool disposed;
    TokenRow[] rows = new TokenRow[64];
    float[] vectors = [];
    int[] outputRows = new int[64];
    readonly List<Generation> outputOwners = [];

    /// <summary>
    /// An engine over <paramref name="model"/>'s fp32 weights (borrowed: keep the model alive), and
    /// over the modules attached to it, which requests turn on by id (<see cref="GenerationRequest.Modules"/>).
    /// </summary>
    public BatchingEngine(Transformer model, BatchingOptions? options = null)
        : this(InferenceWeights.FromTransformer(model), options, model.Modules.Attached.Count > 0 ? new InferenceModules(model) : null) { }

    /// <summary>An engine over prepared (possibly quantized) weights.</summary>
    public BatchingEngine(InferenceWeights weights, BatchingOptions? options = null) : this(weights, options, null) { }

    /// <summary>An engine over prepared weights plus attached <paramref name="modules"/> (null: none).</summary>
    public BatchingEngine(InferenceWeights weights, BatchingOptions? options, InferenceModules? modules)
    {
        this.options = (options ?? new BatchingOptions()).Validate();
        Weights = weights;
        cache = new KvCache(weights.Config, this.options.MaxSequences);
        pass = new ForwardPass(weights, cache, this.options.PrefillChunk + this.options.MaxSequences) { Modules = modules };
        if (modules is not null) pass.ModuleRouting = moduleRouting = new long[2 * modules.Ids.Count];
        Modules = modules;
        if (this.options.PrefixCacheBytes > 0) Prefixes = new PrefixCache(cache, this.options.PrefixCacheBytes);
        for (int s = this.options.MaxSequences - 1; s >= 0; s--) freeSlots.Push(s);
        scheduler = new Thread(Loop) { IsBackground = true, Name = "tessera-batching" };
        scheduler.Start();
    }

    /// <inheritdoc />
    public ModelConfig Config => Weights.Config;

    /// <summary>The weights this engine reads.</summary>
    public InferenceWeights Weights { get; }

    /// <summary>The modules requests can turn on (null: none attached).</summary>
    public InferenceModules? Modules { get; }

    readonly long[]? moduleRouting;

    /// <summary>
    /// Tokens routed so far by each expert module's router (index = module, attach order): rows it
    /// saw, and rows it sent to one of its experts rather than "base only". A snapshot; LoRA modules count 0.
    /// </summary>
    public (long Seen, long ToExperts)[] ModuleRouting()
    {
        if (moduleRouting is null) return [];
        lock (moduleRouting)
        {
            var r = new (long, long)[moduleRouting.Length / 2];
            for (int i = 0; i < r.Length; i++) r[i] = (moduleRouting[2 * i], moduleRouting[2 * i + 1]);
            return r;
        }
    }

    /// <summary>The prefix cache (null when off). Its counters are read between requests; the scheduler thread owns it.</summary>
    public PrefixCache? Prefixes { get; }

    /// <summary>Sequences holding a cache slot right now.</summary>
    public int ActiveSequences { get { lock (gate) return active.Count; } }

    /// <summary>Requests waiting for a slot.</summary>
    public int Waiting { get { lock (gate) return waiting.Count; } }

    /// <summary>Forward passes run so far.</summary>
    public long Steps { get; private set; }

    /// <summary>Token rows processed so far (prompt and generated).</summary>
    public long Rows { get; private set; }

    /// <summary>
    /// Raised on the scheduler thread after every forward step, once its tokens are handed out
    /// (benchmarks time decode-only windows with it). Handlers must be quick.
    /// </summary>
    public event Action<EngineStep>? StepCompleted;

    /// <inheritdoc />
    public IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, CancellationToken cancel = default)
    {
        EngineChecks.Request(request, Config, takesVectors: true);   // before any work, on the caller's thread
        ObjectDisposedException.ThrowIf(disposed, this);
        if (Prefixes is { } p && (long)request.Prompt.Count * cache.BytesPerPosition > p.BudgetBytes)
            throw new ArgumentException($"The prompt has {request.Prompt.Count} tokens, whose keys and values ({(long)request.Prompt.Count * cache.BytesPerPosition / 1e6:F1} MB) overflow the prefix cache budget of {p.BudgetBytes / 1e6:F1} MB.");
        ulong mask = ModuleMask(request.Modules);
        return Stream(new Generation(request, options.MaxBufferedTokens) { Mask = mask }, cancel);
    }

    async IAsyncEnumerable<TokenEvent> Stream(Generation g, [EnumeratorCancellation] CancellationToken cancel)
    {
        if (g.Request.MaxNewTokens == 0) yield break;
        using var registration = cancel.Register(() => Cancel(g));
        Submit(g);
        try
        {
            var reader = g.Output.Reader;
            while (true)
            {
                bool more;
                try { more = await reader.WaitToReadAsync(cancel).ConfigureAwait(false); }
                catch (OperationCanceledException) when (cancel.IsCancellationRequested) { more = false; }
                if (!more) yield break;
                while (!cancel.IsCancellationRequested && reader.TryRead(out var ev)) yield return ev;
                if (cancel.IsCancellationRequested) yield break;
                if (Interlocked.Exchange(ref g.Stalled, 0) == 1) wake.Set();
            }
        }
        finally { Cancel(g); }   // no-op once finished; frees the slot when the caller stops early
    }

    /// <inheritdoc />
    public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs) => Score(prompt, topLogprobs, null);

    /// <summary><see cref="Score(IReadOnlyList{int}, int)"/> with the attached modules <paramref name="modules"/> on (null or empty: the base).</summary>
    public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs, IReadOnlyList<string>? modules)
    {
        EngineChecks.Prompt(prompt, Config);
        var job = new OneShot(prompt, topLogprobs, embed: false) { Mask = ModuleMask(modules) };
        Submit(job);
        return (IReadOnlyList<TokenEvent>)job.Result.Task.GetAwaiter().GetResult();
    }

    /// <inheritdoc />
    public float[] Embed(IReadOnlyList<int> ids) => Embed(ids, null);

    /// <summary><see cref="Embed(IReadOnlyList{int})"/> with the attached modules <paramref name="modules"/> on (null or empty: the base).</summary>
    public float[] Embed(IReadOnlyList<int> ids, IReadOnlyList<string>? modules)
    {
        EngineChecks.Prompt(ids, Config);
        var job = new OneShot(ids, 0, embed: true) { Mask = ModuleMask(modules) };
        Submit(job);
        return (float[])job.Result.Task.GetAwaiter().GetResult();
    }

    /// <summary>The module mask of a request's ids; an id that is not attached is refused before any work.</summary>
    ulong ModuleMask(IReadOnlyList<string>? ids)
    {
        if (ids is null || ids.Count == 0) return 0;
        if (Modules is null) throw new ArgumentException($"Module '{ids[0]}' is not attached to this base (attached: none).");
        return Modules.Mask(ids);
    }

    void Submit(Work w)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            waiting.Enqueue(w);
        }
        wake.Set();
    }

    void Cancel(Generation g)
    {
        if (g.Finished) return;
        g.Cancelled = true;
        wake.Set();
    }

    void Loop()
    {
        var batch = new List<Work>();
        while (true)
        {
            lock (gate)
            {
                if (disposed) return;
                // Leave: cancelled sequences give their slot back before anyone joins.
                for (int i = active.Count - 1; i >= 0; i--)
                    if (active[i] is Generation { Cancelled: true } g) { Finish(g, null); active.RemoveAt(i); }
                // Join: first come, first served, while slots last.
                while (waiting.Count > 0 && freeSlots.Count > 0)
                {
                    var w = waiting.Dequeue();
                    if (w is Generation { Cancelled: true } g) { g.Finished = true; g.Output.Writer.TryComplete(); continue; }
                    w.Slot = freeSlots.Pop();
                    pass.SetModules(w.Slot, w.Mask);
                    active.Add(w);
                }
                batch.Clear();
                batch.AddRange(active);
            }
            if (batch.Count == 0) { wake.WaitOne(); continue; }
            bool progressed = true;
            try { progressed = Step(batch); }
            catch (Exception e) { lock (gate) foreach (var w in batch) { Fail(w, e); active.Remove(w); } }
            // Every sequence waits on its reader: sleep until one drains (it wakes us) — the timeout only guards against a lost wake-up.
            if (!progressed) wake.WaitOne(10);
        }
    }

    /// <summary>One scheduler step: the one-shot jobs, then one forward pass over every generating sequence.</summary>
    bool Step(List<Work> batch)
    {
        foreach (var w in batch)
        {
            if (w is not OneShot job) continue;
            try
            {
                object result;
                lock (moduleRouting ?? gate)
                    result = job.Embed ? SequenceReadout.Embed(pass, job.Slot, job.Ids) : SequenceReadout.Score(pass, job.Slot, job.Ids, job.Top);
                job.Result.TrySetResult(result);
            }
            catch (Exception e) { job.Result.TrySetException(e); }
            lock (gate) { active.Remove(job); freeSlots.Push(job.Slot); job.Slot = -1; }
        }

        // Stack the rows: every decoding sequence's pending token, then prompt chunks within the budget.
        long t = DecodeProfile.Start();
        int n = 0, promptRows = 0, budget = options.PrefillChunk;
        outputOwners.Clear();
        foreach (var w in batch)
        {
            if (w is not Generation g || g.Cancelled) continue;
            // Mark before looking, so a reader that drains in between sees the mark and wakes us.
            Interlocked.Exchange(ref g.Stalled, 1);
            if (g.Output.Reader.Count >= options.MaxBufferedTokens) continue;
            Volatile.Write(ref g.Stalled, 0);
            if (g.Fed == 0 && Prefixes is { } prefixes && Shareable(g))
            {
                // A new sequence: copy in the longest cached prefix of its prompt, then feed the rest.
                cache.Ensure(g.Slot);
                g.Fed = prefixes.Restore(g.Request.Prompt, g.Slot);
            }
            int pending = g.Tokens.Count - g.Fed;
            int take = pending == 1 ? 1 : Math.Min(pending, budget);
            // A bidirectional prefix must reach the cache in one pass: it may overrun the chunk budget.
            if (g.Fed < g.Request.PrefixLength && budget > 0) take = Math.Max(take, g.Request.PrefixLength - g.Fed);
            if (take == 0) continue;
            if (pending > 1) { budget = Math.Max(0, budget - take); promptRows += take; }
            EnsureRows(n + take);
            cache.Ensure(g.Slot);
            for (int i = 0; i < take; i++)
            {
                int id = g.Tokens[g.Fed + i];
                rows[n + i] = new TokenRow(g.Slot, g.Fed + i, id, g.Request.PrefixLength);
                if (id < 0) AppendVector(g);
            }
            n += take;
            g.Fed += take;
            if (g.Fed == g.Tokens.Count) { outputRows[outputOwners.Count] = n - 1; outputOwners.Add(g); }
        }
        if (n == 0) return false;
        t = DecodeProfile.Add(DecodePhase.Schedule, t);
        if (moduleRouting is null) pass.Run(rows.AsMemory(0, n), outputRows.AsSpan(0, outputOwners.Count), vectors: vectors.AsSpan(0, vectorCount));
        else lock (moduleRouting) pass.Run(rows.AsMemory(0, n), outputRows.AsSpan(0, outputOwners.Count), vectors: vectors.AsSpan(0, vectorCount));
        vectorCount = 0;
        Steps++;
        Rows += n;
        t = DecodeProfile.Start();

        for (int i = 0; i < outputOwners.Count; i++)
        {
            var g = outputOwners[i];
            // The prompt is in the slot now: share it at once (n choices, concurrent requests), not only when the sequence ends.
            if (g.Produced == 0 && Shareable(g)) Prefixes?.Store(g.Request.Prompt, g.Request.Prompt.Count, g.Slot);
            var logits = pass.Logits(i);
            int next = g.Sampler.Next(logits);
            var ev = ReferenceEngine.Describe(logits, next, g.Request.TopLogprobs);
            t = DecodeProfile.Add(DecodePhase.Sample, t);
            g.Tokens.Add(next);
            g.Produced++;
            bool stop = g.Request.StopIds?.Contains(next) == true;
            bool last = stop || g.Produced == g.Request.MaxNewTokens || g.Tokens.Count >= Config.ContextLength;
            if (!last) { g.Output.Writer.TryWrite(ev); t = DecodeProfile.Add(DecodePhase.Events, t); continue; }
            g.Output.Writer.TryWrite(ev with { Finish = stop ? FinishReason.Stop : FinishReason.Length });
            lock (gate) { Finish(g, null); active.Remove(g); }
            t = DecodeProfile.Add(DecodePhase.Events, t);
        }
        StepCompleted?.Invoke(new EngineStep(n, promptRows, outputOwners.Count, System.Diagnostics.Stopwatch.GetTimestamp()));
        return true;
    }

    /// <summary>
    /// Whether a request's KV may be shared through the prefix cache, which is keyed by token ids:
    /// not when input vectors (images) stand behind −1 ids, nor under a bidirectional prefix, which
    /// changes the KV of every position inside it, nor with modules on (they change the KV too).
    /// </summary>
    static bool Shareable(Generation g) => g.Request.InputVectors is null && g.Request.PrefixLength == 0 && g.Mask == 0;

    /// <summary>Completes a sequence's stream and frees its slot (caller holds the gate).</summary>
    void Finish(Generation g, Exception? error)
    {
        // Keep what this sequence computed (prompt and reply so far) for the requests that share it.
        if (error is null && g.Slot >= 0 && g.Fed > 0 && Shareable(g)) Prefixes?.Store(g.Tokens, g.Fed, g.Slot);
        g.Finished = true;
        g.Output.Writer.TryComplete(error);
        if (g.Slot >= 0) { freeSlots.Push(g.Slot); g.Slot = -1; }
    }

    void Fail(Work w, Exception e)
    {
        if (w is Generation g) Finish(g, e);
        else if (w is OneShot job) { job.Result.TrySetException(e); if (job.Slot >= 0) { freeSlots.Push(job.Slot); job.Slot = -1; } }
    }

    int vectorCount;

    /// <summary>Queues g's next input vector for this pass.</summary>
    void AppendVector(Generation g)
    {
        int d = Config.Dim;
        if (vectorCount + d > vectors.Length) Array.Resize(ref vectors, Math.Max(vectorCount + d, vectors.Length * 2));
        g.Request.InputVectors.AsSpan(g.VectorsFed++ * d, d).CopyTo(vectors.AsSpan(vectorCount));
        vectorCount += d;
    }

    void EnsureRows(int n)
    {
        if (n <= rows.Length) return;
        int cap = Math.Max(n, rows.Length * 2);
        Array.Resize(ref rows, cap);
        Array.Resize(ref outputRows, cap);
    }

    /// <summary>Stops the scheduler; streams still open end with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
        }
        wake.Set();
        scheduler.Join();
        var gone = new ObjectDisposedException(nameof(BatchingEngine));
        lock (gate)
        {
            foreach (var w in active) Fail(w, gone);
            foreach (var w in waiting) Fail(w, gone);
            active.Clear(); waiting.Clear();
        }
        Prefixes?.Dispose();
        cache.Dispose();
        wake.Dispose();
    }

    abstract class Work
    {
        public int Slot = -1;
        public ulong Mask;   // modules on for this sequence
    }

    sealed class Generation(GenerationRequest request, int buffer) : Work
    {
        public readonly GenerationRequest Request = request;
        public readonly Sampler Sampler = new(request.Sampling, request.Prompt);
        public readonly List<int> Tokens = new(request.Prompt);
        public readonly Channel<TokenEvent> Output = Channel.CreateBounded<TokenEvent>(new BoundedChannelOptions(buffer) { SingleReader = true, SingleWriter = true });
        public int Fed, Produced, Stalled, VectorsFed;
        public volatile bool Cancelled, Finished;
    }

    sealed class OneShot(IReadOnlyList<int> ids, int top, bool embed) : Work
    {
        public readonly IReadOnlyList<int> Ids = ids;
        public readonly int Top = top;
        public readonly bool Embed = embed;
        public readonly TaskCompletionSource<object> Result = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
