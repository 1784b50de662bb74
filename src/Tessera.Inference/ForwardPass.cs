using System.Numerics.Tensors;
using Tessera.Kernels;
using Tessera.Model;
using Tessera.Model.Architectures;

namespace Tessera.Inference;

/// <summary>
/// The inference forward pass, written directly on the kernels (no autograd graph), running the
/// same <see cref="ModelRecipe"/> as the training graph for every architecture: any mix of
/// input rows (token ids or caller-supplied vectors) — prompt chunks of some sequences, single decode rows of others, a speculative
/// block — goes through the model as one stacked matrix, so every weight matrix is read once per
/// pass whatever the number of sequences. Each row's key and value land in its sequence's cache
/// slot at its position; attention then reads the cache (<see cref="CachedAttention"/>). Mixtures
/// route per token and run only the experts that some row chose. Activation buffers are kept and
/// only grow, so steady-state decoding allocates nothing.
/// <para>Per layer (rows stacked as (N, ·); bracketed steps exist where the recipe has them):</para>
/// <code>
///   h = norm(x);  [q k v] = h·[Wq Wk Wv]ᵀ [+ b];  [q, k = norm per head];  rope(q, k) at each row's position
///   cache[slot, layer, :, pos] = k, v;  a = attend(q, cache; window, scale, soft-cap)·Woᵀ;  x += [norm](a)
///   h = norm(x);  f = glu(h) or Σ_top-k gate·expert(h);  x += [norm](f)
/// </code>
/// Phases are timed by <see cref="DecodeProfile"/> when it is enabled.
/// Not thread-safe: one pass at a time (the engines serialise their callers).
/// </summary>
public sealed unsafe class ForwardPass
{
    readonly ModelConfig c;
    readonly ModelRecipe recipe;
    readonly CachedAttention attention;
    readonly int qWidth, kvWidth, qkvWidth;
    int rowCapacity, outCapacity;
    float[] x = [], h = [], rstd = [], qkv = [], att = [], proj = [], gateUp = [], act = [];
    float[] routerLogits = [], routerProbs = [], topValues = [], xe = [], ye = [];
    int[] topIds = [], expertRows = [];
    float[] expertGates = [];
    float[] outHidden = [], outNormed = [], outRstd = [], logits = [];
    int outputs;

    // Modules (InferenceModules): which are on per cache slot, and the rows of the pass in progress.
    InferenceModules? modules;
    ulong[] slotModules = [];
    bool anyModules;
    ReadOnlyMemory<TokenRow> passRows;
    readonly InferenceModules.Scratch moduleScratch = new();

    // Row-parallel elementwise phases (norms, RoPE + cache writes, SwiGLU): the phase's inputs are
    // set in these fields and a cached delegate runs a range of rows, so steady-state decoding
    // still allocates nothing. Below RowParallelMin rows they run inline.
    const int RowParallelMin = 8;
    readonly Action<int, int> normRows, ropeRows, gluRows, addRows;
    float[] addFrom = [];
    [ThreadStatic] static float[]? headScratch;
    NormWeights normGain = null!;
    float[] normFrom = [], normTo = [];
    LayerWeights ropeWeights = null!;
    int ropeLayer;
    ReadOnlyMemory<TokenRow> ropeTokens;

    /// <summary>A pass over <paramref name="weights"/> writing into <paramref name="cache"/>, with buffers for <paramref name="rows"/> rows up front.</summary>
    public ForwardPass(InferenceWeights weights, KvCache cache, int rows = 1)
    {
        Weights = weights; Cache = cache; c = weights.Config; recipe = weights.Recipe;
        if (cache.Layers != c.Layers || cache.KvHeads != c.KvHeads || cache.HeadDim != c.HeadDim)
            throw new ArgumentException("ForwardPass: the KV cache was built for another model shape.");
        qWidth = c.Heads * c.HeadDim; kvWidth = c.KvHeads * c.HeadDim; qkvWidth = qWidth + 2 * kvWidth;
        attention = new CachedAttention(c.Heads, c.KvHeads, c.HeadDim, cache.Positions);
        normRows = NormRows; ropeRows = RopeRows; gluRows = GluRows; addRows = AddRows;
        EnsureRows(Math.Max(1, rows));
        EnsureOutputs(Math.Max(1, rows));
    }

    /// <summary>The model weights this pass reads (shared with other passes over the same model).</summary>
    public InferenceWeights Weights { get; }
    /// <summary>The key/value cache the pass appends each row's keys and values to.</summary>
    public KvCache Cache { get; }

    /// <summary>Rows the last pass produced outputs for.</summary>
    public int Outputs => outputs;

    /// <summary>Logits (V) of the i-th output row of the last pass.</summary>
    public ReadOnlySpan<float> Logits(int i) => logits.AsSpan(Check(i) * c.VocabSize, c.VocabSize);

    /// <summary>Final RMS-normalised hidden state (D) of the i-th output row of the last pass.</summary>
    public ReadOnlySpan<float> Hidden(int i) => outNormed.AsSpan(Check(i) * c.Dim, c.Dim);

    /// <summary>
    /// Modules attached to the base (null: none). A sequence's rows go through the modules its slot
    /// turned on (<see cref="SetModules"/>); a slot with none on runs exactly the base arithmetic.
    /// </summary>
    public InferenceModules? Modules
    {
        get => modules;
        set
        {
            if (value is not null && (value.Config.Dim != c.Dim || value.Config.Layers != c.Layers || value.Config.HiddenDim != c.HiddenDim))
                throw new ArgumentException("ForwardPass: the modules were read from a base of another shape.");
            modules = value;
            slotModules = new ulong[Cache.Slots];
        }
    }

    /// <summary>Turns on the modules of <paramref name="mask"/> (<see cref="InferenceModules.Mask"/>) for the sequence in <paramref name="slot"/>; 0 = the base only.</summary>
    public void SetModules(int slot, ulong mask)
    {
        if ((uint)slot >= (uint)Cache.Slots) throw new ArgumentException($"ForwardPass: slot {slot} is outside the cache's {Cache.Slots}.");
        if (mask != 0 && (modules is null || mask >> modules.Ids.Count != 0))
            throw new ArgumentException($"ForwardPass: module mask {mask:x} names modules that are not attached ({modules?.Ids.Count ?? 0} are).");
        if (modules is not null) slotModules[slot] = mask;
    }

    /// <summary>
    /// When set, per expert module i: [2i] rows its router saw, [2i+1] rows it sent to one of its
    /// experts (not "base only"); counted by every pass (the caller reads and resets it between passes).
    /// </summary>
    public long[]? ModuleRouting { get; set; }

    int Check(int i) => (uint)i < (uint)outputs ? i : throw new ArgumentOutOfRangeException(nameof(i), i, $"ForwardPass: the last pass has {outputs} outputs.");

    /// <summary>
    /// Runs <paramref name="rows"/> through the model. For each index in <paramref name="outputRows"/>
    /// (into <paramref name="rows"/>) the final hidden state and, when <paramref name="computeLogits"/>,
    /// the logits become readable as output i. Every row's slot must have been
    /// <see cref="KvCache.Ensure"/>d, and each sequence's earlier positions must be in the cache.
    /// A row whose token is negative takes the next D values of <paramref name="vectors"/> as its
    /// input instead of an embedding row (image patches, retrieved chunks, soft prompts); the
    /// embedding scale applies to both, so a vector equal to an embedding row is bit-identical to its id.
    /// </summary>
    public void Run(ReadOnlyMemory<TokenRow> rows, ReadOnlySpan<int> outputRows, bool computeLogits = true, ReadOnlySpan<float> vectors = default)
    {
        int n = rows.Length, vectorRows = 0;
        foreach (var r in rows.Span)
        {
            if (r.Token < 0) vectorRows++;
            else if (r.Token >= c.VocabSize) throw new ArgumentException($"ForwardPass: token id {r.Token} is outside the vocabulary of {c.VocabSize}.");
            if ((uint)r.Position >= (uint)Cache.Positions) throw new ArgumentException($"ForwardPass: position {r.Position} is outside the context of {Cache.Positions}.");
            if ((uint)r.Slot >= (uint)Cache.Slots) throw new ArgumentException($"ForwardPass: slot {r.Slot} is outside the cache's {Cache.Slots}.");
        }
        foreach (int o in outputRows)
            if ((uint)o >= (uint)n) throw new ArgumentException($"ForwardPass: output row {o} is outside the {n} rows.");
        if (vectors.Length != (long)vectorRows * c.Dim)
            throw new ArgumentException($"ForwardPass: {vectorRows} rows take a vector, so {vectorRows}·{c.Dim} values are needed; {vectors.Length} were given.");
        outputs = 0;
        if (n == 0) return;
        EnsureRows(n);
        passRows = rows;
        anyModules = false;
        if (modules is not null) foreach (var r in rows.Span) anyModules |= slotModules[r.Slot] != 0;
        EnsureOutputs(outputRows.Length);

        int D = c.Dim;
        var rs = rows.Span;
        long t = DecodeProfile.Start();
        for (int i = 0, v = 0; i < n; i++)                                                           // (N, D)
            (rs[i].Token >= 0 ? Weights.Embedding.Row(rs[i].Token) : vectors.Slice(v++ * D, D)).CopyTo(x.AsSpan(i * D, D));
        if (c.ScaleEmbeddings) TensorPrimitives.Multiply(x.AsSpan(0, n * D), recipe.EmbeddingScale, x.AsSpan(0, n * D));
        DecodeProfile.Add(DecodePhase.Embed, t);
        for (int l = 0; l < c.Layers; l++) Layer(l, Weights.Layers[l], rows, n);

        t = DecodeProfile.Start();
        int L = outputRows.Length;
        for (int i = 0; i < L; i++) x.AsSpan(outputRows[i] * D, D).CopyTo(outHidden.AsSpan(i * D, D));
        var fn = Weights.FinalNorm;
        RmsNorm.Forward(outHidden.AsSpan(0, L * D), fn.Gain, outNormed.AsSpan(0, L * D), outRstd.AsSpan(0, L), L, D, c.NormEps, fn.Offset);   // (L, D)
        t = DecodeProfile.Add(DecodePhase.Norm, t);
        if (computeLogits)
        {
            var lg = logits.AsSpan(0, L * c.VocabSize);
            Weights.LmHead.MatMul(outNormed.AsSpan(0, L * D), L, lg);                              // (L, V)
            if (c.FinalSoftCap > 0) Activations.SoftCap(lg, lg, c.FinalSoftCap);
        }
        DecodeProfile.Add(DecodePhase.Head, t);
        outputs = L;
    }

    void Layer(int layer, LayerWeights w, ReadOnlyMemory<TokenRow> rows, int n)
    {
        int D = c.Dim;
        var xs = x.AsSpan(0, n * D);
        var hs = h.AsSpan(0, n * D);
        var ps = proj.AsSpan(0, n * D);

        // Attention half.
        long t = DecodeProfile.Start();
        Norm(w.AttentionNorm, x, h, n);
        t = DecodeProfile.Add(DecodePhase.Norm, t);
        w.Qkv.MatMul(hs, n, qkv.AsSpan(0, n * qkvWidth));     // (N, H·Dh + 2·Hkv·Dh): q | k | v
        if (anyModules)
        {
            Adapt(layer, "q_proj", hs, D, qkv, qkvWidth, 0);
            Adapt(layer, "k_proj", hs, D, qkv, qkvWidth, qWidth);
            Adapt(layer, "v_proj", hs, D, qkv, qkvWidth, qWidth + kvWidth);
        }
        if (w.QkvBias is { } bias)
            for (int i = 0; i < n; i++) { var row = qkv.AsSpan(i * qkvWidth, qkvWidth); TensorPrimitives.Add(row, bias, row); }
        t = DecodeProfile.Add(DecodePhase.Qkv, t);
        ropeLayer = layer; ropeTokens = rows; ropeWeights = w;
        Rows(n, ropeRows);
        t = DecodeProfile.Add(DecodePhase.RopeCache, t);
        fixed (float* pq = qkv, pa = att)
            attention.Forward(Cache.View, layer, rows.Span, pq, qkvWidth, pa, recipe.Windows[layer], recipe.AttentionScale, c.AttentionSoftCap);   // (N, H·Dh)
        t = DecodeProfile.Add(DecodePhase.Attention, t);
        w.O.MatMul(att.AsSpan(0, n * qWidth), n, ps);
        if (anyModules) Adapt(layer, "o_proj", att.AsSpan(0, n * qWidth), qWidth, proj, D, 0);
        AddBranch(w.AttentionPostNorm, n);
        t = DecodeProfile.Add(DecodePhase.OutProj, t);

        // Feed-forward half.
        Norm(w.MlpNorm, x, h, n);
        DecodeProfile.Add(DecodePhase.Norm, t);
        if (w.Mlp is { } mlp) Glu(mlp, hs, n, proj, anyModules ? layer : -1);
        else Mixture(w, hs, n);
        if (anyModules) modules!.AddExperts(layer, passRows.Span[..n], slotModules, hs, proj.AsSpan(0, n * D), c.Activation, moduleScratch, ModuleRouting);
        AddBranch(w.MlpPostNorm, n);
    }

    /// <summary>x += proj, or x += norm(proj) for a family with post-norms (h is free by then).</summary>
    void AddBranch(NormWeights? postNorm, int n)
    {
        if (postNorm is null) addFrom = proj;
        else { Norm(postNorm, proj, h, n); addFrom = h; }
        // A prompt's rows are split between the threads (an element-wise add: the split changes no bits);
        // a decode step's few rows are not worth the hand-off.
        if (n >= AddParallelMin) Rows(n, addRows);
        else AddRows(0, n);
    }

    /// <summary>Rows from which <see cref="AddBranch"/> splits the add between threads (a prompt, not a decode step).</summary>
    const int AddParallelMin = 64;

    void AddRows(int start, int end)
    {
        int D = c.Dim;
        var xs = x.AsSpan(start * D, (end - start) * D);
        TensorPrimitives.Add(xs, addFrom.AsSpan(start * D, (end - start) * D), xs);
    }

    /// <summary>Runs <paramref name="body"/> over rows [0, n): split between threads from <see cref="RowParallelMin"/> rows, else inline.</summary>
    static void Rows(int n, Action<int, int> body)
    {
        var workers = WorkerPool.Shared;
        if (n < RowParallelMin || workers.ThreadCount == 1) body(0, n);
        else workers.For(n, workers.ThreadCount, body);
    }

    /// <summary>to = norm(from) for the first n rows (each row on its own: the split does not change results).</summary>
    void Norm(NormWeights gain, float[] from, float[] to, int n)
    {
        normGain = gain; normFrom = from; normTo = to;
        Rows(n, normRows);
    }

    void NormRows(int start, int end)
    {
        int D = c.Dim;
        RmsNorm.Forward(normFrom.AsSpan(start * D, (end - start) * D), normGain.Gain, normTo.AsSpan(start * D, (end - start) * D), rstd.AsSpan(start, end - start), end - start, D, c.NormEps, normGain.Offset);
    }

    /// <summary>
    /// Rows [start, end): the per-head q/k norms (where the recipe has them), RoPE on the q and k
    /// heads with the layer's table, then each row's k and v into its cache slot at its position.
    /// </summary>
    void RopeRows(int start, int end)
    {
        int hd = c.HeadDim, layer = ropeLayer;
        var rs = ropeTokens.Span;
        var rope = Weights.Ropes[recipe.RopeIndex[layer]];
        var w = ropeWeights;
        Span<float> headRstd = stackalloc float[Math.Max(c.Heads, c.KvHeads)];
        for (int i = start; i < end; i++)
        {
            var row = qkv.AsSpan(i * qkvWidth, qkvWidth);
            if (w.QueryNorm is { } qn)
            {
                // The norm kernel is not in-place (its gain is formed in the output), so normalise a copy.
                var scratch = headScratch is { } buffer && buffer.Length >= qWidth ? buffer : headScratch = new float[qWidth];
                var q = row[..qWidth];
                q.CopyTo(scratch);
                RmsNorm.Forward(scratch.AsSpan(0, qWidth), qn.Gain, q, headRstd[..c.Heads], c.Heads, hd, c.NormEps, qn.Offset);
                var k = row.Slice(qWidth, kvWidth);
                k.CopyTo(scratch);
                RmsNorm.Forward(scratch.AsSpan(0, kvWidth), w.KeyNorm!.Gain, k, headRstd[..c.KvHeads], c.KvHeads, hd, c.NormEps, w.KeyNorm.Offset);
            }
            int pos = rs[i].Position;
            Tessera.Kernels.Rope.RotateHeads(row[..(qWidth + kvWidth)], c.Heads + c.KvHeads, hd, rope.Cos, rope.Sin, pos);   // q heads, then k heads
            fixed (float* prow = row)
                for (int g = 0; g < c.KvHeads; g++)
                {
                    new ReadOnlySpan<float>(prow + qWidth + g * hd, hd).CopyTo(new Span<float>(Cache.Keys(rs[i].Slot, layer, g) + (long)pos * hd, hd));
                    new ReadOnlySpan<float>(prow + qWidth + kvWidth + g * hd, hd).CopyTo(new Span<float>(Cache.Values(rs[i].Slot, layer, g) + (long)pos * hd, hd));
                }
        }
    }

    /// <summary>act = silu(gate) ⊙ up (or tanh-GELU(gate) ⊙ up) for rows [start, end) of the gate|up product.</summary>
    void GluRows(int start, int end)
    {
        int F = c.HiddenDim;
        for (int i = start; i < end; i++)
        {
            var gate = gateUp.AsSpan(i * 2 * F, F); var up = gateUp.AsSpan(i * 2 * F + F, F); var y = act.AsSpan(i * F, F);
            if (c.Activation == GluActivation.GeluTanh) Activations.GeGlu(gate, up, y);
            else Activations.SwiGlu(gate, up, y);
        }
    }

    /// <summary>
    /// output[0..m·D) = down(act(gate·x) ⊙ up·x) for m rows of <paramref name="input"/>; with
    /// <paramref name="adaptLayer"/> ≥ 0 (the dense MLP of that layer, every row of the pass) the
    /// modules' gate/up/down adapters add to their projections.
    /// </summary>
    void Glu(ExpertWeights e, ReadOnlySpan<float> input, int m, float[] output, int adaptLayer = -1)
    {
        int F = c.HiddenDim;
        long t = DecodeProfile.Start();
        e.GateUp.MatMul(input, m, gateUp.AsSpan(0, m * 2 * F));   // (M, 2F): gate | up
        if (adaptLayer >= 0)
        {
            Adapt(adaptLayer, "gate_proj", input, c.Dim, gateUp, 2 * F, 0);
            Adapt(adaptLayer, "up_proj", input, c.Dim, gateUp, 2 * F, F);
        }
        t = DecodeProfile.Add(DecodePhase.GateUp, t);
        Rows(m, gluRows);
        t = DecodeProfile.Add(DecodePhase.SwiGlu, t);
        e.Down.MatMul(act.AsSpan(0, m * F), m, output.AsSpan(0, m * c.Dim));   // (M, D)
        if (adaptLayer >= 0) Adapt(adaptLayer, "down_proj", act.AsSpan(0, m * F), F, output, c.Dim, 0);
        DecodeProfile.Add(DecodePhase.Down, t);
    }

    /// <summary>The modules' adapters on (layer, projection) for the rows of the pass in progress (see <see cref="InferenceModules"/>).</summary>
    void Adapt(int layer, string projection, ReadOnlySpan<float> input, int inWidth, float[] output, int stride, int offset)
    {
        if (!modules!.HasAdapter(layer, projection)) return;
        int n = passRows.Length;
        modules.Adapt(layer, projection, passRows.Span, slotModules, input[..(n * inWidth)], inWidth, output.AsSpan(0, n * stride), stride, offset, moduleScratch);
    }

    /// <summary>
    /// proj = Σ over each row's top-k experts of gate · expert(row), the gates being the router's
    /// softmax probabilities, renormalised over the k chosen when k &gt; 1 (as in training).
    /// Experts are visited in id order and gather only their own rows, in row order.
    /// </summary>
    void Mixture(LayerWeights w, ReadOnlySpan<float> hs, int n)
    {
        int D = c.Dim, E = c.Experts, K = c.TopK;
        long t = DecodeProfile.Start();
        w.Router!.MatMul(hs, n, routerLogits.AsSpan(0, n * E));                                       // (N, E)
        Softmax.Forward(routerLogits.AsSpan(0, n * E), routerProbs.AsSpan(0, n * E), n, E);
        TopK.Select(routerProbs.AsSpan(0, n * E), n, E, K, topIds.AsSpan(0, n * K), topValues.AsSpan(0, n * K));
        if (K > 1 && c.NormalizeTopK)
            for (int i = 0; i < n; i++)
            {
                var g = topValues.AsSpan(i * K, K);
                float sum = 0;
                foreach (float p in g) sum += p;
                for (int j = 0; j < K; j++) g[j] /= sum;
            }
        DecodeProfile.Add(DecodePhase.Router, t);
        var y = proj.AsSpan(0, n * D);
        y.Clear();
        for (int e = 0; e < E; e++)
        {
            int m = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < K; j++)
                    if (topIds[i * K + j] == e) { expertRows[m] = i; expertGates[m] = topValues[i * K + j]; m++; }
            if (m == 0) continue;                                                                     // untouched experts are never read
            for (int r = 0; r < m; r++) hs.Slice(expertRows[r] * D, D).CopyTo(xe.AsSpan(r * D, D));   // (Mₑ, D)
            Glu(w.Experts[e], xe.AsSpan(0, m * D), m, ye);                                         // (Mₑ, D)
            for (int r = 0; r < m; r++)
            {
                var yr = y.Slice(expertRows[r] * D, D);
                TensorPrimitives.MultiplyAdd(ye.AsSpan(r * D, D), expertGates[r], yr, yr);
            }
        }
    }

    void EnsureRows(int n)
    {
        if (n <= rowCapacity) return;
        int cap = Math.Max(n, rowCapacity * 2);
        int D = c.Dim, F = c.HiddenDim, E = Math.Max(1, c.Experts), K = c.TopK;
        x = new float[cap * D]; h = new float[cap * D]; rstd = new float[cap];
        qkv = new float[cap * qkvWidth]; att = new float[cap * qWidth];
        proj = new float[cap * D]; gateUp = new float[cap * 2 * F]; act = new float[cap * F];
        routerLogits = new float[cap * E]; routerProbs = new float[cap * E]; topIds = new int[cap * K]; topValues = new float[cap * K];
        expertRows = new int[cap]; expertGates = new float[cap]; xe = new float[cap * D]; ye = new float[cap * D];
        rowCapacity = cap;
    }

    void EnsureOutputs(int n)
    {
        if (n <= outCapacity) return;
        int cap = Math.Max(n, outCapacity * 2);
        outHidden = new float[cap * c.Dim]; outNormed = new float[cap * c.Dim]; outRstd = new float[cap];
        logits = new float[(long)cap * c.VocabSize];
        outCapacity = cap;
    }
}
