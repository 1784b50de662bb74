using Tessera.Tensors;

namespace Tessera.Model.Modules;

/// <summary>
/// The modules attached to one base model, and which of them are routed on. A block asks it for
/// its layer's LoRA adapters and expert outputs; with no module on for a layer it returns nothing,
/// so the block runs exactly the base arithmetic (no zero is added anywhere): "routed off" gives
/// bit-identical logits. Expert modules are routed per token (each module's router may send a
/// token to "base only"); naming module ids (<see cref="Route"/>) selects them per request.
/// </summary>
public sealed class ModuleSet
{
    readonly List<ModelModule> attached = [];
    HashSet<string>? on;   // null: every attached module is on

    /// <summary>The attached modules, in attach order.</summary>
    public IReadOnlyList<ModelModule> Attached => attached;

    /// <summary>Attaches <paramref name="module"/> (routed on); a second module with the same id is refused.</summary>
    public void Attach(ModelModule module)
    {
        foreach (var m in attached)
            if (m.Id == module.Id) throw new ArgumentException($"Module id '{module.Id}' is already attached to this base; module ids must be unique.");
        attached.Add(module);
    }

    /// <summary>Detaches the module <paramref name="id"/> (not disposed); false when it was not attached.</summary>
    public bool Detach(string id) => attached.RemoveAll(m => m.Id == id) > 0;

    /// <summary>Routes only the named modules on (null = all attached; empty = all off). Unknown ids are refused.</summary>
    public void Route(IEnumerable<string>? ids)
    {
        if (ids is null) { on = null; return; }
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            if (!attached.Exists(m => m.Id == id))
                throw new ArgumentException($"Module '{id}' is not attached (attached: {(attached.Count == 0 ? "none" : string.Join(", ", attached.Select(m => m.Id)))}).");
            set.Add(id);
        }
        on = set;
    }

    /// <summary>The ids routed on (null: every attached module), as <see cref="Route"/> takes them back.</summary>
    public IReadOnlyList<string>? RoutedIds => on is null ? null : [.. on];

    /// <summary>Routes every module off: the forward is the base's, bit for bit.</summary>
    public void RouteOff() => on = [];

    /// <summary>True when module <paramref name="m"/> is routed on.</summary>
    public bool IsOn(ModelModule m) => on is null || on.Contains(m.Id);

    /// <summary>Every parameter of every attached module (what module training optimises).</summary>
    public IReadOnlyList<Tensor> Parameters => [.. attached.SelectMany(m => m.Parameters.All)];

    /// <summary>y = x·Wᵀ plus every on module's adapter on (layer, projection): y + (α/r)·(x·Aᵀ)·Bᵀ. With none on, exactly x·Wᵀ.</summary>
    public Tensor Linear(Graph g, Tensor x, Tensor w, int layer, string projection)
    {
        var y = g.Linear(x, w);
        foreach (var m in attached)
            if (IsOn(m) && m.TryAdapter(layer, projection, out var a, out var b))
                y = g.Add(y, g.Scale(g.Linear(g.Linear(x, a), b), m.Spec.Alpha / m.Spec.Rank));   // (N, out)
        return y;
    }

    /// <summary>True when some on module has an adapter in <paramref name="layer"/> (the block then takes the adapted path).</summary>
    public bool HasAdapters(int layer)
    {
        foreach (var m in attached)
            if (IsOn(m) && m.Spec.Kind == ModuleKind.Lora && Array.IndexOf(m.Spec.Layers, layer) >= 0) return true;
        return false;
    }

    /// <summary>f plus every on module's experts in <paramref name="layer"/> on the FFN input h; f itself when none.</summary>
    public Tensor AddExperts(Graph g, int layer, Tensor h, Tensor f)
    {
        foreach (var m in attached)
            if (IsOn(m) && m.HasExperts(layer)) f = g.Add(f, m.ExpertsForward(g, layer, h));   // (N, D)
        return f;
    }
}
