using Tessera.Model.Architectures;
using Tessera.Tensors;

namespace Tessera.Model.Modules;

/// <summary>What a module adds to a frozen base.</summary>
public enum ModuleKind
{
    /// <summary>New GLU experts in chosen layers plus a router per layer whose entry 0 means "base only".</summary>
    Experts,
    /// <summary>Low-rank adapters (LoRA) on chosen projections: W x + (α/r)·B(A x).</summary>
    Lora,
}

/// <summary>
/// The shape of a module: its id, kind and the layers it attaches to. Experts: <see cref="Experts"/>
/// new GLU experts of width <see cref="HiddenDim"/> per layer. LoRA: rank <see cref="Rank"/>, scale
/// <see cref="Alpha"/>/rank, on <see cref="Projections"/> (q_proj, k_proj, v_proj, o_proj; gate_proj,
/// up_proj, down_proj on a dense base's MLP).
/// </summary>
public sealed record ModuleSpec(string Id, ModuleKind Kind, int[] Layers, int Experts = 2, int HiddenDim = 0, int Rank = 8, float Alpha = 16f,
    string[]? Projections = null)
{
    /// <summary>Projections LoRA attaches to when none are named.</summary>
    public static readonly string[] DefaultProjections = ["q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>The LoRA projections, defaults resolved.</summary>
    public string[] LoraProjections => Projections is { Length: > 0 } p ? p : DefaultProjections;

    /// <summary>Throws one clear message when the spec cannot attach to a base of <paramref name="config"/>.</summary>
    public void CheckFits(ModelConfig config)
    {
        if (string.IsNullOrWhiteSpace(Id) || Id.IndexOfAny(['/', '\\', '.', ' ']) >= 0)
            throw new ArgumentException($"Module id '{Id}' must be a non-empty name without '/', '\\', '.' or spaces.");
        if (Layers.Length == 0) throw new ArgumentException($"Module '{Id}': no layers chosen.");
        foreach (int l in Layers)
            if (l < 0 || l >= config.Layers)
                throw new ArgumentException($"Module '{Id}': layer {l} does not exist in a base of {config.Layers} layers (expected 0..{config.Layers - 1}).");
        if (Layers.Distinct().Count() != Layers.Length) throw new ArgumentException($"Module '{Id}': a layer is named twice in {string.Join(",", Layers)}.");
        if (Kind == ModuleKind.Experts && (Experts < 1 || HiddenDim < 1))
            throw new ArgumentException($"Module '{Id}': an experts module needs at least 1 expert of positive width (got {Experts} × {HiddenDim}).");
        if (Kind == ModuleKind.Lora)
        {
            if (Rank < 1) throw new ArgumentException($"Module '{Id}': LoRA rank must be ≥ 1 (got {Rank}).");
            foreach (var p in LoraProjections)
            {
                if (Array.IndexOf(AllProjections, p) < 0)
                    throw new ArgumentException($"Module '{Id}': unknown LoRA projection '{p}' (expected one of {string.Join(", ", AllProjections)}).");
                if (config.IsMoe && p is "gate_proj" or "up_proj" or "down_proj" && Projections is { Length: > 0 })
                    throw new ArgumentException($"Module '{Id}': '{p}' exists only in a dense base's MLP; this base is a mixture of {config.Experts} experts.");
            }
        }
    }

    /// <summary>Every projection a LoRA adapter can attach to.</summary>
    public static readonly string[] AllProjections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>(out, in) of <paramref name="projection"/> in a base of <paramref name="c"/>.</summary>
    public static (int Out, int In) ProjectionShape(ModelConfig c, string projection) => projection switch
    {
        "q_proj" => (c.Heads * c.HeadDim, c.Dim),
        "k_proj" or "v_proj" => (c.KvHeads * c.HeadDim, c.Dim),
        "o_proj" => (c.Dim, c.Heads * c.HeadDim),
        "gate_proj" or "up_proj" => (c.HiddenDim, c.Dim),
        "down_proj" => (c.Dim, c.HiddenDim),
        _ => throw new ArgumentException($"Unknown projection '{projection}'."),
    };
}

/// <summary>
/// One module's weights, under names <c>modules.&lt;id&gt;.layers.&lt;l&gt;.…</c>, and its forward
/// pieces. Experts kind, per layer: <c>router.weight</c> (E+1, D), row 0 the "base only" entry, and
/// <c>experts.&lt;e&gt;.w1/w3/w2.weight</c>. LoRA kind: <c>lora.&lt;proj&gt;.a.weight</c> (r, in) and
/// <c>.b.weight</c> (out, r); B starts at zero so a fresh adapter changes nothing.
/// </summary>
public sealed class ModelModule : IDisposable
{
    readonly Dictionary<int, (Tensor Router, Tensor[] W1, Tensor[] W3, Tensor[] W2)> experts = [];
    readonly Dictionary<(int Layer, string Projection), (Tensor A, Tensor B)> adapters = [];
    readonly GluActivation activation;

    /// <summary>Builds the module for a base of <paramref name="config"/>, initialised from <paramref name="seed"/>.</summary>
    public ModelModule(ModuleSpec spec, ModelConfig config, ulong seed = 0)
    {
        var resolved = spec.Kind == ModuleKind.Experts && spec.HiddenDim == 0 ? spec with { HiddenDim = config.HiddenDim } : spec;
        resolved.CheckFits(config);
        Spec = resolved;
        activation = config.Activation;
        var p = Parameters = new ModelParameters();
        foreach (int l in Spec.Layers.Order())
        {
            string pre = $"modules.{Spec.Id}.layers.{l}.";
            if (Spec.Kind == ModuleKind.Experts)
            {
                var router = p.Add(pre + "router.weight", ParameterKind.Linear, Spec.Experts + 1, config.Dim);
                var (w1, w3, w2) = (new Tensor[Spec.Experts], new Tensor[Spec.Experts], new Tensor[Spec.Experts]);
                for (int e = 0; e < Spec.Experts; e++)
                {
                    w1[e] = p.Add($"{pre}experts.{e}.w1.weight", ParameterKind.Linear, Spec.HiddenDim, config.Dim);
                    w3[e] = p.Add($"{pre}experts.{e}.w3.weight", ParameterKind.Linear, Spec.HiddenDim, config.Dim);
                    w2[e] = p.Add($"{pre}experts.{e}.w2.weight", ParameterKind.ResidualOutput, config.Dim, Spec.HiddenDim);
                }
                experts[l] = (router, w1, w3, w2);
            }
            else
                foreach (var proj in Spec.LoraProjections)
                {
                    if (config.IsMoe && proj is "gate_proj" or "up_proj" or "down_proj") continue;   // an MoE base has no dense MLP
                    var (o, i) = ModuleSpec.ProjectionShape(config, proj);
                    var a = p.Add($"{pre}lora.{proj}.a.weight", ParameterKind.Linear, Spec.Rank, i);
                    var b = p.Add($"{pre}lora.{proj}.b.weight", ParameterKind.Bias, o, Spec.Rank);   // Bias kind: zero init
                    adapters[(l, proj)] = (a, b);
                }
        }
        p.Initialize(seed, config.Layers);
    }

    /// <summary>The module's shape (expert width resolved).</summary>
    public ModuleSpec Spec { get; }

    /// <summary>Module id.</summary>
    public string Id => Spec.Id;

    /// <summary>The module's own weights (the only tensors module training updates).</summary>
    public ModelParameters Parameters { get; }

    /// <summary>Token routing of the latest forward, per layer: the chosen router entry per token (0 = base only).</summary>
    public Dictionary<int, int[]> LastRouting { get; } = [];

    /// <summary>
    /// Router logits (N, E+1) of the latest forward, per layer: tensors of that forward's graph, valid
    /// while it lives (module training adds a router loss on them, see <c>ModuleTrainer</c>).
    /// </summary>
    public Dictionary<int, Tensor> LastRouterLogits { get; } = [];

    /// <summary>True when the module has experts in <paramref name="layer"/>.</summary>
    public bool HasExperts(int layer) => experts.ContainsKey(layer);

    /// <summary>The adapter on (layer, projection), when there is one.</summary>
    public bool TryAdapter(int layer, string projection, out Tensor a, out Tensor b)
    {
        bool found = adapters.TryGetValue((layer, projection), out var ab);
        (a, b) = ab;
        return found;
    }

    /// <summary>
    /// The module's experts in <paramref name="layer"/> for h (N, D) → (N, D): top-1 over the E+1
    /// router entries; entry 0 adds nothing (the token keeps the base's output), entry e adds
    /// p_e · expert_e(h), so the router gets a gradient from every token it sends to an expert.
    /// </summary>
    public Tensor ExpertsForward(Graph g, int layer, Tensor h)
    {
        var (router, w1, w3, w2) = experts[layer];
        int entries = w1.Length + 1;
        var logits = g.Linear(h, router);                                     // (N, E+1)
        LastRouterLogits[layer] = logits;
        var probs = g.Softmax(logits);                                       // (N, E+1)
        var top = g.TopK(probs, 1);                                          // N entries
        var gates = g.GatherColumns(probs, top, 1);                          // (N, 1)
        var plan = ExpertDispatch.Build(top, 1, entries);
        LastRouting[layer] = [.. top];
        var outputs = new Tensor[entries];
        outputs[0] = g.Scale(g.GatherRows(h, plan.Rows[0]), 0f);             // (M₀, D) zeros: "base only"
        for (int e = 1; e < entries; e++)
            outputs[e] = Mlp.Glu(g, g.GatherRows(h, plan.Rows[e]), w1[e - 1], w3[e - 1], w2[e - 1], activation);   // (Mₑ, D)
        return g.CombineExperts(outputs, gates, plan);                       // (N, D)
    }

    /// <summary>Frees the module's weights.</summary>
    public void Dispose() => Parameters.Dispose();
}
