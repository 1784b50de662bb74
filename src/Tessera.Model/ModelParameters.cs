using Tessera.Tensors;

namespace Tessera.Model;

/// <summary>How a parameter is initialised and whether weight decay applies to it.</summary>
public enum ParameterKind
{
    /// <summary>A linear map into the residual stream's inputs (q/k/v, MLP up/gate, router, lm_head): normal(0, 0.02).</summary>
    Linear,
    /// <summary>A projection that writes into the residual stream (o_proj, down_proj / w2): normal(0, 0.02/√(2·layers)).</summary>
    ResidualOutput,
    /// <summary>The token embedding table: normal(0, 0.02); no weight decay.</summary>
    Embedding,
    /// <summary>An RMSNorm gain: the identity gain (1, or 0 where the norm adds 1 itself); no weight decay.</summary>
    NormGain,
    /// <summary>A bias vector: zeros; no weight decay.</summary>
    Bias,
}

/// <summary>
/// The model's parameters in a fixed order, under their family's Hugging Face names.
/// Registration order is the checkpoint order and the initialisation order, so a seed fixes
/// every weight. Owns the tensors.
/// </summary>
public sealed class ModelParameters : IDisposable
{
    /// <summary>Standard deviation of every normal initialisation (GPT-2 / nanoGPT).</summary>
    public const float InitStd = 0.02f;

    readonly List<Tensor> list = [];
    readonly List<ParameterKind> kinds = [];
    readonly Dictionary<string, Tensor> byName = new(StringComparer.Ordinal);

    /// <summary>Parameters in registration (checkpoint) order; each tensor's Name is its HF name.</summary>
    public IReadOnlyList<Tensor> All => list;

    /// <summary>Number of parameter tensors.</summary>
    public int Count => list.Count;

    /// <summary>Total scalar count.</summary>
    public long ElementCount
    {
        get { long n = 0; foreach (var t in list) n += t.Length; return n; }
    }

    /// <summary>The tensor named <paramref name="name"/>; throws naming it when absent.</summary>
    public Tensor this[string name]
        => byName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"The model has no parameter '{name}'.");

    /// <summary>True when a parameter of that name exists.</summary>
    public bool Contains(string name) => byName.ContainsKey(name);

    /// <summary>The kind a parameter was registered with.</summary>
    public ParameterKind KindOf(Tensor t)
    {
        int i = list.IndexOf(t);
        return i >= 0 ? kinds[i] : throw new ArgumentException($"'{t.Name}' is not a parameter of this model.");
    }

    /// <summary>
    /// Whether AdamW decays this parameter. Decayed: every matrix used as a linear map (attention,
    /// MLP/experts, router, an untied lm_head). Not decayed: RMSNorm gains (decaying them toward 0
    /// fights the normalisation) and the embedding table (rare tokens get few gradients, so decay
    /// would erase their rows; when tied, the table is also the output head and is not decayed).
    /// </summary>
    public bool Decays(Tensor t) => KindOf(t) is ParameterKind.Linear or ParameterKind.ResidualOutput;

    /// <summary>Creates a zero-filled parameter (requires grad) under <paramref name="name"/>.</summary>
    public Tensor Add(string name, ParameterKind kind, params int[] shape)
    {
        if (byName.ContainsKey(name)) throw new ArgumentException($"Duplicate parameter name '{name}'.");
        var t = Tensor.Zeros(shape, name);
        t.RequiresGrad = true;
        list.Add(t);
        kinds.Add(kind);
        byName[name] = t;
        return t;
    }

    /// <summary>
    /// Deterministic initialisation from <paramref name="seed"/>, in registration order:
    /// normal(0, 0.02) for linear maps and the embedding, scaled by 1/√(2·layers) for the
    /// projections that add into the residual stream (GPT-2: keeps the stream's variance
    /// independent of depth), the identity for norm gains (1 − <paramref name="normGainOffset"/>),
    /// zeros for biases.
    /// </summary>
    public void Initialize(ulong seed, int layers, float normGainOffset = 0f)
    {
        var rng = new Rng(seed);
        float residualStd = InitStd / MathF.Sqrt(2f * layers);
        for (int i = 0; i < list.Count; i++)
        {
            var span = list[i].AsSpan("Initialize");
            switch (kinds[i])
            {
                case ParameterKind.NormGain: span.Fill(1f - normGainOffset); break;
                case ParameterKind.Bias: span.Clear(); break;
                case ParameterKind.ResidualOutput: rng.FillNormal(span, 0f, residualStd); break;
                default: rng.FillNormal(span, 0f, InitStd); break;
            }
        }
    }

    /// <summary>Copies <paramref name="values"/> into the named parameter, checking the element count.</summary>
    public void Load(string name, ReadOnlySpan<float> values)
    {
        var t = this[name];
        if (values.Length != t.Length)
            throw new ArgumentException($"Parameter '{name}' {t.ShapeString} has {t.Length} elements, got {values.Length}.");
        values.CopyTo(t.AsSpan("Load"));
    }

    /// <summary>Zeroes every gradient (keeps the buffers).</summary>
    public void ZeroGrad()
    {
        foreach (var t in list) t.ZeroGrad();
    }

    /// <summary>Frees every parameter and its gradient.</summary>
    public void Dispose()
    {
        foreach (var t in list) t.Dispose();
        list.Clear();
        byName.Clear();
    }
}
