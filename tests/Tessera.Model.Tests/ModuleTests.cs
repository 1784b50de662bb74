using System.Runtime.InteropServices;
using Tessera.Model.Modules;
using Tessera.Tensors;

namespace Tessera.Model.Tests;

public class ModuleTests
{
    static readonly ModelConfig Moe = new ModelConfig
    {
        VocabSize = 40, Dim = 16, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 24, Experts = 2, TopK = 2, ContextLength = 8, TiedEmbeddings = false,
    }.Validate();
    // Top-2 of 2 experts: the base routing cannot flip under a finite-difference nudge (the module routers are checked for flips).
    static readonly ModelConfig Dense = (Moe with { Experts = 1, TopK = 1 }).Validate();

    public static TheoryData<bool, ModuleKind> Cases => new()
    {
        { false, ModuleKind.Experts }, { false, ModuleKind.Lora }, { true, ModuleKind.Experts }, { true, ModuleKind.Lora },
    };

    static ModelModule NewModule(string id, ModuleKind kind, ModelConfig c, ulong seed)
    {
        var m = new ModelModule(new ModuleSpec(id, kind, [0, 1], Experts: 2, Rank: 4), c, seed);
        // A fresh LoRA B is zero; give it values so "on" differs from "off".
        var rng = new Rng(seed + 99);
        // Experts are scaled up from the 0.02 init so their gradients stand well above fp32 roundoff.
        foreach (var t in m.Parameters.All)
            if (t.Name.EndsWith(".b.weight", StringComparison.Ordinal)) rng.FillNormal(t.AsSpan(), 0f, 0.2f);
            else if (kind == ModuleKind.Experts) foreach (ref float v in t.AsSpan()) v *= 10f;
        return m;
    }

    static (int[] Ids, int[] Targets) Batch(ModelConfig c, ulong seed)
    {
        var rng = new Rng(seed);
        var ids = new int[2 * c.ContextLength]; var tgt = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++) { ids[i] = rng.NextInt(c.VocabSize); tgt[i] = rng.NextInt(c.VocabSize); }
        return (ids, tgt);
    }

    static float[] Logits(Transformer m, int[] ids)
    {
        using var g = new Graph(recordGradients: false);
        return m.Forward(g, ids, 2, ids.Length / 2).Logits.ToArray();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RoutedOffIsBitIdenticalToTheBaseAndOnIsNot(bool moe, ModuleKind kind)
    {
        var c = moe ? Moe : Dense;
        using var model = new Transformer(c, seed: 3);
        var (ids, _) = Batch(c, 5);
        var reference = Logits(model, ids);
        model.Modules.Attach(NewModule("a", kind, c, 11));
        model.Modules.Attach(NewModule("b", kind, c, 12));
        var on = Logits(model, ids);
        model.Modules.RouteOff();
        var off = Logits(model, ids);
        Assert.True(MemoryMarshal.AsBytes(off.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(reference.AsSpan())), "routed-off logits differ from the base's");
        Assert.False(on.AsSpan().SequenceEqual(reference), "routed-on modules changed nothing");
        model.Modules.Route(["b"]);
        var onlyB = Logits(model, ids);
        Assert.False(onlyB.AsSpan().SequenceEqual(on), "naming one module per request should differ from both on");
    }

    [Fact]
    public void AttachRefusesDuplicateIdsAndRoutingUnknownIds()
    {
        using var model = new Transformer(Dense);
        model.Modules.Attach(NewModule("code", ModuleKind.Lora, Dense, 1));
        var e = Assert.Throws<ArgumentException>(() => model.Modules.Attach(NewModule("code", ModuleKind.Experts, Dense, 2)));
        Assert.Contains("'code' is already attached", e.Message);
        Assert.Contains("'nope' is not attached", Assert.Throws<ArgumentException>(() => model.Modules.Route(["nope"])).Message);
        Assert.Contains("layer 5 does not exist", Assert.Throws<ArgumentException>(() => new ModelModule(new ModuleSpec("x", ModuleKind.Experts, [5]), Dense)).Message);
        Assert.Contains("dense base's MLP", Assert.Throws<ArgumentException>(() => new ModelModule(new ModuleSpec("x", ModuleKind.Lora, [0], Projections: ["up_proj"]), Moe)).Message);
    }

    /// <summary>
    /// Every module tensor's gradient (cross-entropy through the whole model, base frozen) against
    /// central differences of the fp64-summed loss; elements whose nudge flips a routing decision
    /// (top-1 is piecewise) are skipped, and the check must compare many elements.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void ModuleGradientsMatchFiniteDifferences(bool moe, ModuleKind kind)
    {
        var c = moe ? Moe : Dense;
        using var model = new Transformer(c, seed: 3);
        foreach (var t in model.Parameters.All) t.RequiresGrad = false;
        var module = NewModule("m", kind, c, 21);
        model.Modules.Attach(module);
        var (ids, tgt) = Batch(c, 9);
        module.Parameters.ZeroGrad();
        using (var g = new Graph())
        {
            var ce = model.Forward(g, ids, 2, c.ContextLength, tgt).CrossEntropy!;
            g.Backward(ce);
        }
        foreach (var t in model.Parameters.All) Assert.Null(t.Grad);   // frozen: no gradient buffers at all
        (double Loss, string Routes) Loss()
        {
            using var g = new Graph(recordGradients: false);
            double l = model.Forward(g, ids, 2, c.ContextLength, tgt).CrossEntropy!.Item();
            return (l, string.Join(";", module.LastRouting.OrderBy(kv => kv.Key).Select(kv => string.Join(",", kv.Value))));
        }
        var rng = new Rng(4);
        int compared = 0;
        double largest = 0;
        foreach (var t in module.Parameters.All)
        {
            var w = t.AsSpan(); var grad = t.Grad!.ToArray();
            for (int k = 0; k < 6; k++)
            {
                int i = rng.NextInt(w.Length);
                float x = w[i], h = 1f / 64;
                string routes = Loss().Routes;
                w[i] = x + h; var (plus, rp) = Loss();
                w[i] = x - h; var (minus, rm) = Loss();
                w[i] = x;
                if (rp != routes || rm != routes) continue;
                double fd = (plus - minus) / (2 * h);
                // fp32 loss roundoff (~1e-6 relative over a few hundred terms) over 2h, plus fp32 gradient rounding.
                double tol = 4e-6 * Math.Abs(plus) / h + 1e-2 * Math.Abs(grad[i]) + 2e-5;
                Assert.True(Math.Abs(fd - grad[i]) <= tol + 0.05 * Math.Abs(fd), $"{t.Name}[{i}]: analytic {grad[i]:G6}, finite difference {fd:G6}");
                compared++;
                largest = Math.Max(largest, Math.Abs(grad[i]));
            }
        }
        Assert.True(compared >= module.Parameters.Count * 3, $"only {compared} elements compared (routing flipped on the rest)");
        Assert.True(largest > 1e-2, $"gradients too small to test ({largest:G3}) against the ~1e-3 roundoff bound");
    }
}
