using System.Numerics.Tensors;
using Tessera.Kernels;
using Tessera.Model;
using Tessera.Model.Architectures;
using Tessera.Model.Modules;

namespace Tessera.Inference;

/// <summary>
/// The modules attached to a base (<see cref="ModuleSet.Attached"/>) as the inference forward pass
/// reads them: every matrix borrowed from the module's tensors and packed (<see cref="PanelWeights"/>),
/// so, like the base weights, a row's result does not depend on which other rows share the pass.
/// Each sequence names which modules are on for it (a bit mask over <see cref="Ids"/>, at most 64
/// modules); the forward pass applies a module only to the rows of sequences that turned it on, so
/// one batch mixes requests with different modules and each gets the logits it would get alone.
/// Per layer, in the order the training forward (<see cref="Transformer.Forward"/>) uses: LoRA
/// adapters add (α/r)·B(A x) after their projection (before a bias); expert modules add, after the
/// base's feed-forward and before its post-norm, p·expert(h) for the top-1 of their E+1 router
/// entries (entry 0 = base only, adds nothing).
/// </summary>
public sealed class InferenceModules
{
    /// <summary>Most modules one base serves at once (one bit each in a sequence's mask).</summary>
    public const int MaxModules = 64;

    readonly Entry[] modules;

    sealed record Entry(string Id, ModuleKind Kind, float Scale, Dictionary<int, (IWeightMatrix Router, ExpertWeights[] Experts, int Hidden)> Experts,
        Dictionary<(int Layer, string Projection), (IWeightMatrix A, IWeightMatrix B)> Adapters);

    /// <summary>Reads the modules attached to <paramref name="model"/> (borrowed: keep the model and its modules alive).</summary>
    public InferenceModules(Transformer model)
    {
        var attached = model.Modules.Attached;
        if (attached.Count > MaxModules)
            throw new ArgumentException($"InferenceModules: {attached.Count} modules are attached; the engine serves at most {MaxModules} at once.");
        Config = model.Config;
        modules = new Entry[attached.Count];
        for (int i = 0; i < attached.Count; i++)
        {
            var m = attached[i];
            var p = m.Parameters;
            IWeightMatrix Packed(string name) => PanelWeights.Pack(DenseWeights.Borrow(p[name]));
            var experts = new Dictionary<int, (IWeightMatrix, ExpertWeights[], int)>();
            var adapters = new Dictionary<(int, string), (IWeightMatrix, IWeightMatrix)>();
            foreach (int l in m.Spec.Layers)
            {
                string pre = $"modules.{m.Id}.layers.{l}.";
                if (m.Spec.Kind == ModuleKind.Experts)
                {
                    var e = new ExpertWeights[m.Spec.Experts];
                    for (int k = 0; k < e.Length; k++)
                        e[k] = new ExpertWeights(
                            PanelWeights.Pack(DenseWeights.Stack(DenseWeights.Borrow(p[$"{pre}experts.{k}.w1.weight"]), DenseWeights.Borrow(p[$"{pre}experts.{k}.w3.weight"]))),   // gate | up
                            Packed($"{pre}experts.{k}.w2.weight"));
                    experts[l] = (Packed(pre + "router.weight"), e, m.Spec.HiddenDim);
                }
                else
                    foreach (var proj in m.Spec.LoraProjections)
                        if (m.TryAdapter(l, proj, out _, out _))
                            adapters[(l, proj)] = (Packed($"{pre}lora.{proj}.a.weight"), Packed($"{pre}lora.{proj}.b.weight"));
            }
            modules[i] = new Entry(m.Id, m.Spec.Kind, m.Spec.Alpha / m.Spec.Rank, experts, adapters);
        }
        Ids = Array.ConvertAll(modules, e => e.Id);
    }

    /// <summary>The base's shape.</summary>
    public ModelConfig Config { get; }

    /// <summary>The module ids, in attach order (bit i of a mask is module i).</summary>
    public IReadOnlyList<string> Ids { get; }

    /// <summary>
    /// The mask that turns on exactly <paramref name="ids"/> (null or empty: 0, the base only). An id
    /// that is not attached is refused naming the attached ones; naming one twice is the same as once.
    /// </summary>
    public ulong Mask(IReadOnlyList<string>? ids)
    {
        ulong mask = 0;
        if (ids is null) return 0;
        foreach (var id in ids)
        {
            int i = Array.FindIndex(modules, e => e.Id == id);
            if (i < 0) throw new ArgumentException($"Module '{id}' is not attached to this base (attached: {(modules.Length == 0 ? "none" : string.Join(", ", Ids))}).");
            mask |= 1UL << i;
        }
        return mask;
    }

    /// <summary>True when some module has an adapter on (<paramref name="layer"/>, <paramref name="projection"/>).</summary>
    internal bool HasAdapter(int layer, string projection)
    {
        foreach (var m in modules) if (m.Adapters.ContainsKey((layer, projection))) return true;
        return false;
    }

    /// <summary>Scratch of one forward pass (grown, never shrunk).</summary>
    internal sealed class Scratch
    {
        public int[] Rows = [];
        public float[] X = [], T = [], Y = [], Logits = [], Probs = [], GateUp = [], Act = [], TopValues = [];
        public int[] TopIds = [], ExpertRows = [];
        public float[] ExpertGates = [], Xe = [];

        public static void Grow(ref float[] a, long n) { if (a.Length < n) a = new float[Math.Max(n, a.Length * 2L)]; }
        public static void Grow(ref int[] a, int n) { if (a.Length < n) a = new int[Math.Max(n, a.Length * 2)]; }
    }

    /// <summary>The rows (indices into <paramref name="rows"/>) whose sequence turned module <paramref name="bit"/> on; their count.</summary>
    static int Select(ReadOnlySpan<TokenRow> rows, ReadOnlySpan<ulong> slotMasks, int bit, Scratch s)
    {
        Scratch.Grow(ref s.Rows, rows.Length);
        int m = 0;
        for (int i = 0; i < rows.Length; i++)
            if ((slotMasks[rows[i].Slot] >> bit & 1) != 0) s.Rows[m++] = i;
        return m;
    }

    /// <summary>
    /// y[i, offset..offset+out) += (α/r)·B(A x[i]) for every module with an adapter on (layer,
    /// projection) and every row i whose sequence turned it on; x rows are <paramref name="inWidth"/>
    /// wide, y rows <paramref name="yStride"/>.
    /// </summary>
    internal void Adapt(int layer, string projection, ReadOnlySpan<TokenRow> rows, ReadOnlySpan<ulong> slotMasks,
        ReadOnlySpan<float> x, int inWidth, Span<float> y, int yStride, int yOffset, Scratch s)
    {
        for (int bit = 0; bit < modules.Length; bit++)
        {
            if (!modules[bit].Adapters.TryGetValue((layer, projection), out var ab)) continue;
            int m = Select(rows, slotMasks, bit, s);
            if (m == 0) continue;
            int r = ab.A.Rows, o = ab.B.Rows;
            Scratch.Grow(ref s.X, (long)m * inWidth); Scratch.Grow(ref s.T, (long)m * r); Scratch.Grow(ref s.Y, (long)m * o);
            for (int j = 0; j < m; j++) x.Slice(s.Rows[j] * inWidth, inWidth).CopyTo(s.X.AsSpan(j * inWidth, inWidth));   // (M, in)
            ab.A.MatMul(s.X.AsSpan(0, m * inWidth), m, s.T.AsSpan(0, m * r));                                            // (M, r)
            ab.B.MatMul(s.T.AsSpan(0, m * r), m, s.Y.AsSpan(0, m * o));                                                  // (M, out)
            float scale = modules[bit].Scale;
            for (int j = 0; j < m; j++)
            {
                var target = y.Slice(s.Rows[j] * yStride + yOffset, o);
                var add = s.Y.AsSpan(j * o, o);
                TensorPrimitives.Multiply(add, scale, add);   // scale, then add: the training graph's order
                TensorPrimitives.Add(target, add, target);
            }
        }
    }

    /// <summary>
    /// f[i] += p·expert_e(h[i]) for every expert module in <paramref name="layer"/> and every row whose
    /// sequence turned it on, e being the top-1 of the module's E+1 router entries and p its softmax
    /// probability; entry 0 ("base only") adds nothing. <paramref name="routed"/>, when given, counts
    /// per module the rows it saw and the rows it sent to an expert.
    /// </summary>
    internal void AddExperts(int layer, ReadOnlySpan<TokenRow> rows, ReadOnlySpan<ulong> slotMasks, ReadOnlySpan<float> h, Span<float> f,
        GluActivation activation, Scratch s, long[]? routed)
    {
        int D = Config.Dim;
        for (int bit = 0; bit < modules.Length; bit++)
        {
            if (!modules[bit].Experts.TryGetValue(layer, out var ex)) continue;
            int m = Select(rows, slotMasks, bit, s);
            if (m == 0) continue;
            int entries = ex.Experts.Length + 1, F = ex.Hidden;
            Scratch.Grow(ref s.X, (long)m * D); Scratch.Grow(ref s.Logits, (long)m * entries); Scratch.Grow(ref s.Probs, (long)m * entries);
            Scratch.Grow(ref s.TopIds, m); Scratch.Grow(ref s.TopValues, m);
            for (int j = 0; j < m; j++) h.Slice(s.Rows[j] * D, D).CopyTo(s.X.AsSpan(j * D, D));                        // (M, D)
            ex.Router.MatMul(s.X.AsSpan(0, m * D), m, s.Logits.AsSpan(0, m * entries));                                  // (M, E+1)
            Softmax.Forward(s.Logits.AsSpan(0, m * entries), s.Probs.AsSpan(0, m * entries), m, entries);
            TopK.Select(s.Probs.AsSpan(0, m * entries), m, entries, 1, s.TopIds.AsSpan(0, m), s.TopValues.AsSpan(0, m));
            if (routed is not null)
            {
                routed[2 * bit] += m;
                for (int j = 0; j < m; j++) if (s.TopIds[j] != 0) routed[2 * bit + 1]++;
            }
            for (int e = 1; e < entries; e++)
            {
                int me = 0;
                Scratch.Grow(ref s.ExpertRows, m); Scratch.Grow(ref s.ExpertGates, m);
                for (int j = 0; j < m; j++)
                    if (s.TopIds[j] == e) { s.ExpertRows[me] = s.Rows[j]; s.ExpertGates[me] = s.TopValues[j]; me++; }
                if (me == 0) continue;
                var w = ex.Experts[e - 1];
                Scratch.Grow(ref s.Xe, (long)me * D); Scratch.Grow(ref s.GateUp, (long)me * 2 * F); Scratch.Grow(ref s.Act, (long)me * F); Scratch.Grow(ref s.Y, (long)me * D);
                for (int j = 0; j < me; j++) h.Slice(s.ExpertRows[j] * D, D).CopyTo(s.Xe.AsSpan(j * D, D));            // (Mₑ, D)
                w.GateUp.MatMul(s.Xe.AsSpan(0, me * D), me, s.GateUp.AsSpan(0, me * 2 * F));                           // (Mₑ, 2F): gate | up
                for (int j = 0; j < me; j++)
                {
                    var gate = s.GateUp.AsSpan(j * 2 * F, F); var up = s.GateUp.AsSpan(j * 2 * F + F, F); var act = s.Act.AsSpan(j * F, F);
                    if (activation == GluActivation.GeluTanh) Activations.GeGlu(gate, up, act);
                    else Activations.SwiGlu(gate, up, act);
                }
                w.Down.MatMul(s.Act.AsSpan(0, me * F), me, s.Y.AsSpan(0, me * D));                                     // (Mₑ, D)
                for (int j = 0; j < me; j++)
                {
                    var target = f.Slice(s.ExpertRows[j] * D, D);
                    var add = s.Y.AsSpan(j * D, D);
                    TensorPrimitives.Multiply(add, s.ExpertGates[j], add);
                    TensorPrimitives.Add(target, add, target);
                }
            }
        }
    }
}
