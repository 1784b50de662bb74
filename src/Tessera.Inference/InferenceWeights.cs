using Tessera.Model;
using Tessera.Model.Architectures;
using Tessera.Tensors;

namespace Tessera.Inference;

/// <summary>An RMSNorm gain as the kernel applies it: x·rstd·(<see cref="Gain"/> + <see cref="Offset"/>).</summary>
public sealed record NormWeights(float[] Gain, float Offset);

/// <summary>
/// One decoder layer's weights as the inference forward pass reads them. <see cref="Qkv"/> is the
/// q, k and v projections stacked by rows (Heads·Dh + 2·KvHeads·Dh outputs), so one product per
/// layer computes all three (<see cref="QkvBias"/> likewise stacked). Exactly one of
/// <see cref="Mlp"/> (dense) or <see cref="Router"/> + <see cref="Experts"/> (mixture) is set. The
/// optional members exist for the families whose recipe has them (see <see cref="Tessera.Model.Architectures.ModelRecipe"/>).
/// </summary>
public sealed record LayerWeights(NormWeights AttentionNorm, IWeightMatrix Qkv, IWeightMatrix O,
    NormWeights MlpNorm, ExpertWeights? Mlp, IWeightMatrix? Router, ExpertWeights[] Experts)
{
    /// <summary>q|k|v biases (Qwen2), stacked like <see cref="Qkv"/>.</summary>
    public float[]? QkvBias { get; init; }
    /// <summary>Per-head norm of q (Qwen3, Gemma3).</summary>
    public NormWeights? QueryNorm { get; init; }
    /// <summary>Per-head norm of k.</summary>
    public NormWeights? KeyNorm { get; init; }
    /// <summary>Norm of the attention output before the residual add (Gemma2/3).</summary>
    public NormWeights? AttentionPostNorm { get; init; }
    /// <summary>Norm of the feed-forward output before the residual add (Gemma2/3).</summary>
    public NormWeights? MlpPostNorm { get; init; }
}

/// <summary>
/// A GLU block: down(act(gate·x) ⊙ up·x); for experts gate/up/down are the expert's.
/// <see cref="GateUp"/> stacks gate over up (2·F outputs: gate first), one product for both.
/// </summary>
public sealed record ExpertWeights(IWeightMatrix GateUp, IWeightMatrix Down)
{
    /// <summary>Bytes one token streams through this block.</summary>
    public long Bytes => GateUp.Bytes + Down.Bytes;
}

/// <summary>
/// Where <see cref="InferenceWeights.Build"/> reads a model's tensors from: a <see cref="Transformer"/>,
/// a GGUF file or an HF safetensors folder. Names come from the family's tensor table, so every
/// source serves every architecture.
/// </summary>
public interface IWeightSource
{
    /// <summary>The (rows, cols) matrix in <paramref name="role"/> (of <paramref name="layer"/>, <paramref name="expert"/>).</summary>
    IWeightMatrix Matrix(TensorRole role, int layer, int expert, int rows, int cols);

    /// <summary>A norm gain of <paramref name="length"/> values, with the offset it must be applied with.</summary>
    NormWeights Norm(TensorRole role, int layer, int length);

    /// <summary>A plain vector (a bias).</summary>
    float[] Vector(TensorRole role, int layer, int length);

    /// <summary>The fp32 embedding table (V, D) for row lookups.</summary>
    DenseWeights Embedding(int rows, int cols);

    /// <summary>The output head of a tied model (the table itself, or its stored quantized form).</summary>
    IWeightMatrix TiedHead(DenseWeights embedding);
}

/// <summary>
/// Everything the inference engine reads from a model: the embedding table (fp32, for row lookups),
/// per-layer weights, the final norm, the output head and the rotary tables, plus the
/// <see cref="ModelRecipe"/> the forward pass runs. Built by <see cref="Build"/> from any
/// <see cref="IWeightSource"/> (a <see cref="Transformer"/>, GGUF with quantized tensors kept
/// quantized, HF safetensors), or by quantizing another set (<see cref="Quantize"/>).
/// </summary>
public sealed class InferenceWeights
{
    /// <summary>Assembles the weights from their parts.</summary>
    public InferenceWeights(ModelConfig config, DenseWeights embedding, LayerWeights[] layers, NormWeights finalNorm, IWeightMatrix lmHead, RopeTable[] ropes)
    {
        Recipe = new ModelRecipe(config);
        Config = Recipe.Config;
        if (layers.Length != config.Layers) throw new ArgumentException($"InferenceWeights: {layers.Length} layers for a {config.Layers}-layer config.");
        if (embedding.Rows != config.VocabSize || embedding.Cols != config.Dim || lmHead.Rows != config.VocabSize || lmHead.Cols != config.Dim)
            throw new ArgumentException("InferenceWeights: embedding or lm_head shape does not match the config.");
        if (ropes.Length != Recipe.Ropes.Count) throw new ArgumentException($"InferenceWeights: {ropes.Length} rotary tables for {Recipe.Ropes.Count} RoPE variants.");
        int qkv = (config.Heads + 2 * config.KvHeads) * config.HeadDim;
        foreach (var l in layers)
        {
            if (l.Qkv.Rows != qkv || l.Qkv.Cols != config.Dim || l.O.Rows != config.Dim || l.O.Cols != config.Heads * config.HeadDim)
                throw new ArgumentException("InferenceWeights: attention weights do not match the config.");
            if (config.QkvBias != l.QkvBias is not null || config.QkNorm != l.QueryNorm is not null || config.PostNorms != l.AttentionPostNorm is not null)
                throw new ArgumentException("InferenceWeights: the layer's optional weights do not match the recipe.");
            foreach (var e in l.Mlp is null ? l.Experts : [l.Mlp])
                if (e.GateUp.Rows != 2 * config.HiddenDim || e.GateUp.Cols != config.Dim || e.Down.Rows != config.Dim || e.Down.Cols != config.HiddenDim)
                    throw new ArgumentException("InferenceWeights: feed-forward weights do not match the config.");
        }
        Embedding = embedding; Layers = layers; FinalNorm = finalNorm; LmHead = lmHead; Ropes = ropes;
    }

    /// <summary>The shape.</summary>
    public ModelConfig Config { get; }
    /// <summary>The block recipe the forward pass runs.</summary>
    public ModelRecipe Recipe { get; }
    /// <summary>fp32 token embedding table (V, D).</summary>
    public DenseWeights Embedding { get; }
    /// <summary>Per-layer weights.</summary>
    public IReadOnlyList<LayerWeights> Layers { get; }
    /// <summary>Final norm gain.</summary>
    public NormWeights FinalNorm { get; }
    /// <summary>Output head (V, D).</summary>
    public IWeightMatrix LmHead { get; }
    /// <summary>Rotary tables, one per RoPE variant of <see cref="Recipe"/>.</summary>
    public RopeTable[] Ropes { get; }

    /// <summary>
    /// The weights of <paramref name="config"/>'s family read from <paramref name="source"/> through
    /// its tensor table: q/k/v and gate/up are stacked for one product each.
    /// </summary>
    /// <param name="config">The model's shape and family.</param>
    /// <param name="source">Where the tensors come from.</param>
    /// <param name="ropes">Rotary tables already built for this recipe (a model's own), or null to build them.</param>
    public static InferenceWeights Build(ModelConfig config, IWeightSource source, RopeTable[]? ropes = null)
    {
        var recipe = new ModelRecipe(config);
        var c = recipe.Config;
        int D = c.Dim, F = c.HiddenDim, qW = c.Heads * c.HeadDim, kvW = c.KvHeads * c.HeadDim;
        var layers = new LayerWeights[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            ExpertWeights Glu(TensorRole gate, TensorRole up, TensorRole down, int e)
                => new(StackedWeights.Of(source.Matrix(gate, l, e, F, D), source.Matrix(up, l, e, F, D)), source.Matrix(down, l, e, D, F));
            ExpertWeights? mlp = null;
            IWeightMatrix? router = null;
            var experts = Array.Empty<ExpertWeights>();
            if (c.IsMoe)
            {
                router = source.Matrix(TensorRole.Router, l, -1, c.Experts, D);
                experts = new ExpertWeights[c.Experts];
                for (int e = 0; e < c.Experts; e++) experts[e] = Glu(TensorRole.ExpertGate, TensorRole.ExpertUp, TensorRole.ExpertDown, e);
            }
            else mlp = Glu(TensorRole.Gate, TensorRole.Up, TensorRole.Down, -1);
            var qkv = StackedWeights.Of(source.Matrix(TensorRole.Query, l, -1, qW, D), source.Matrix(TensorRole.Key, l, -1, kvW, D), source.Matrix(TensorRole.Value, l, -1, kvW, D));
            layers[l] = new LayerWeights(source.Norm(TensorRole.AttentionNorm, l, D), qkv, source.Matrix(TensorRole.AttentionOutput, l, -1, D, qW),
                source.Norm(TensorRole.FeedForwardNorm, l, D), mlp, router, experts)
            {
                QkvBias = c.QkvBias ? [.. source.Vector(TensorRole.QueryBias, l, qW), .. source.Vector(TensorRole.KeyBias, l, kvW), .. source.Vector(TensorRole.ValueBias, l, kvW)] : null,
                QueryNorm = c.QkNorm ? source.Norm(TensorRole.QueryNorm, l, c.HeadDim) : null,
                KeyNorm = c.QkNorm ? source.Norm(TensorRole.KeyNorm, l, c.HeadDim) : null,
                AttentionPostNorm = c.PostNorms ? source.Norm(TensorRole.AttentionPostNorm, l, D) : null,
                MlpPostNorm = c.PostNorms ? source.Norm(TensorRole.FeedForwardPostNorm, l, D) : null,
            };
        }
        var embedding = source.Embedding(c.VocabSize, D);
        var head = c.TiedEmbeddings ? source.TiedHead(embedding) : source.Matrix(TensorRole.Output, -1, -1, c.VocabSize, D);
        return new InferenceWeights(c, embedding, layers, source.Norm(TensorRole.OutputNorm, -1, D), head, ropes ?? recipe.BuildRopeTables(c.ContextLength));
    }

    /// <summary>
    /// Every weight of <paramref name="model"/>, borrowed (the model must outlive this). With
    /// <paramref name="pack"/> (the default) the projections are copied into <see cref="PanelWeights"/>
    /// (see <see cref="Packed"/>); without it they stay row-major (q/k/v and gate/up stacked
    /// without copying) and are multiplied by <see cref="Tessera.Kernels.DecodeMatMul"/>/<see cref="Tessera.Kernels.Gemm"/>.
    /// </summary>
    public static InferenceWeights FromTransformer(Transformer model, bool pack = true)
    {
        var weights = Build(model.Config, new TransformerSource(model), model.RopeTables);   // the model's tables, not a second copy
        return pack ? weights.Packed() : weights;
    }

    /// <summary>A <see cref="Transformer"/>'s parameters by their HF names (borrowed, not copied).</summary>
    sealed class TransformerSource(Transformer model) : IWeightSource
    {
        readonly TensorTable names = model.Recipe.Names;
        Tensor P(TensorRole role, int layer, int expert = -1) => model.Parameters[names.Hf(role, layer, expert)];
        public IWeightMatrix Matrix(TensorRole role, int layer, int expert, int rows, int cols) => DenseWeights.Borrow(P(role, layer, expert));
        public NormWeights Norm(TensorRole role, int layer, int length) => new(P(role, layer).AsSpan("InferenceWeights").ToArray(), model.Config.NormGainOffset);
        public float[] Vector(TensorRole role, int layer, int length) => P(role, layer).AsSpan("InferenceWeights").ToArray();
        public DenseWeights Embedding(int rows, int cols) => DenseWeights.Borrow(P(TensorRole.TokenEmbedding, -1));
        public IWeightMatrix TiedHead(DenseWeights embedding) => embedding;
    }

    /// <summary>
    /// These weights with every fp32 projection (q/k/v, o, gate/up, down, experts, the output head)
    /// repacked as <see cref="PanelWeights"/>, the form the forward pass multiplies fastest at any
    /// row count. The embedding table stays row-major for lookups (a tied head gets its own packed
    /// copy); quantized matrices are kept as they are. The router is packed too (a few rows padded
    /// to one panel), so routing is also the same for a row whatever else shares the pass.
    /// </summary>
    public InferenceWeights Packed()
    {
        static IWeightMatrix P(IWeightMatrix m) => m is DenseWeights d ? PanelWeights.Pack(d) : m;
        static ExpertWeights E(ExpertWeights e) => new(P(e.GateUp), P(e.Down));
        var layers = new LayerWeights[Layers.Count];
        for (int i = 0; i < layers.Length; i++)
        {
            var l = Layers[i];
            layers[i] = l with
            {
                Qkv = P(l.Qkv), O = P(l.O), Mlp = l.Mlp is null ? null : E(l.Mlp), Experts = Array.ConvertAll(l.Experts, E),
                Router = l.Router is null ? null : P(l.Router),
            };
        }
        return new InferenceWeights(Config, Embedding, layers, FinalNorm, P(LmHead), Ropes);
    }

    /// <summary>
    /// These weights with every projection matrix (q/k/v, o, gate/up, down, experts, the output
    /// head) quantized to <paramref name="format"/>; the embedding table stays fp32 (it is read one
    /// row per token), as do the norms and the router (tiny, and routing is sensitive to it).
    /// Already-quantized matrices are dequantized first. <see cref="WeightFormat.F32"/> returns this.
    /// </summary>
    public InferenceWeights Quantize(WeightFormat format)
    {
        if (format == WeightFormat.F32) return this;
        IWeightMatrix Q(IWeightMatrix m) => QuantizedWeights.Quantize(ToFloat(m), m.Rows, m.Cols, format);
        var layers = new LayerWeights[Layers.Count];
        for (int i = 0; i < layers.Length; i++)
        {
            var l = Layers[i];
            ExpertWeights E(ExpertWeights e) => new(Q(e.GateUp), Q(e.Down));
            layers[i] = l with { Qkv = Q(l.Qkv), O = Q(l.O), Mlp = l.Mlp is null ? null : E(l.Mlp), Experts = Array.ConvertAll(l.Experts, E) };
        }
        return new InferenceWeights(Config, Embedding, layers, FinalNorm, Q(LmHead), Ropes);
    }

    /// <summary>The fp32 values of any weight matrix (a copy).</summary>
    public static float[] ToFloat(IWeightMatrix m) => m switch
    {
        DenseWeights d => d.ToArray(),
        PanelWeights p => p.ToArray(),
        QuantizedWeights q => q.Dequantize(),
        _ => throw new ArgumentException($"InferenceWeights: cannot read the values of a {m.GetType().Name}."),
    };

    /// <summary>
    /// Bytes of weights one decoded token streams: every attention matrix, the router and the
    /// top-k experts of each layer (the average expert size), and the output head. Norm gains and
    /// the one embedding row are negligible and left out.
    /// </summary>
    public long BytesPerToken
    {
        get
        {
            long total = LmHead.Bytes;
            foreach (var l in Layers)
            {
                total += l.Qkv.Bytes + l.O.Bytes;
                if (l.Mlp is not null) total += l.Mlp.Bytes;
                else
                {
                    long experts = 0;
                    foreach (var e in l.Experts) experts += e.Bytes;
                    total += l.Router!.Bytes + experts / l.Experts.Length * Config.TopK;
                }
            }
            return total;
        }
    }

    /// <summary>Bytes of every weight matrix (all experts).</summary>
    public long TotalBytes
    {
        get
        {
            long total = LmHead.Bytes + (ReferenceEquals(LmHead, Embedding) || Config.TiedEmbeddings ? 0 : Embedding.Bytes);
            foreach (var l in Layers)
            {
                total += l.Qkv.Bytes + l.O.Bytes;
                if (l.Mlp is not null) total += l.Mlp.Bytes;
                else { total += l.Router!.Bytes; foreach (var e in l.Experts) total += e.Bytes; }
            }
            return total;
        }
    }
}
