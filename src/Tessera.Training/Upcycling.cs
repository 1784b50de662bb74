using Tessera.Model;
using Tessera.Model.Architectures;
using Tessera.Tensors;

namespace Tessera.Training;

/// <summary>
/// Sparse upcycling (Komatsuzaki et al. 2022): a dense model becomes a mixture of experts whose
/// every expert starts as a copy of that layer's dense MLP. Attention, norms, embeddings and head
/// are copied unchanged; each layer gets a new router, drawn from the seed the way every linear
/// map of a fresh model is (normal, std <see cref="ModelParameters.InitStd"/> = 0.02).
/// <para>
/// Why the upcycled model starts as the dense one: with top-k gates renormalised to sum to 1
/// (k ≥ 2, <see cref="ModelConfig.NormalizeTopK"/>) and dropless routing, a token's output is
/// Σ gᵢ·MLP(x) = MLP(x)·Σ gᵢ = MLP(x), whatever the router scores. Only float rounding separates
/// the two: the gate sum is 1 to a few ulps and the weighted sum rounds once per expert, so
/// the logits agree to a small relative tolerance rather than bit for bit. With k = 1 the raw
/// router probability scales the output (Switch), so that is refused here.
/// </para>
/// </summary>
public static class Upcycling
{
    /// <summary>
    /// The MoE config of <paramref name="dense"/> with <paramref name="experts"/> experts of the dense
    /// MLP's width, top-<paramref name="topK"/>, renormalised gates and dropless routing; one clear
    /// <see cref="ArgumentException"/> for anything that would not start as the dense model.
    /// </summary>
    public static ModelConfig Config(ModelConfig dense, int experts, int topK)
    {
        if (dense.IsMoe) throw new ArgumentException($"Upcycling starts from a dense model; this one already has {dense.Experts} experts per layer.");
        if (experts < 2) throw new ArgumentException($"--experts {experts}: upcycling needs at least 2 experts.");
        if (topK < 2 || topK > experts)
            throw new ArgumentException($"--top-k {topK}: upcycling needs 2 ≤ k ≤ experts ({experts}); with k = 1 the gate is the raw router probability, so the model would not start equal to the dense one.");
        return (dense with { Experts = experts, TopK = topK, NormalizeTopK = true, CapacityFactor = 0 }).Validate();
    }

    /// <summary>
    /// A new MoE model (the caller disposes it): every expert of layer l is a copy of
    /// <paramref name="dense"/>'s layer-l MLP, the routers are drawn from <paramref name="seed"/>,
    /// everything else is copied.
    /// </summary>
    public static Transformer Upcycle(Transformer dense, int experts, int topK, ulong seed)
    {
        var config = Config(dense.Config, experts, topK);
        var moe = new Transformer(config, seed);
        try
        {
            var from = dense.Parameters;
            var names = moe.Recipe.Names;
            var denseNames = dense.Recipe.Names;
            var routers = new HashSet<string>(StringComparer.Ordinal);
            for (int l = 0; l < config.Layers; l++)
            {
                routers.Add(names.Hf(TensorRole.Router, l));
                for (int e = 0; e < experts; e++)
                {
                    Copy(from[denseNames.Hf(TensorRole.Gate, l)], moe.Parameters[names.Hf(TensorRole.ExpertGate, l, e)]);
                    Copy(from[denseNames.Hf(TensorRole.Up, l)], moe.Parameters[names.Hf(TensorRole.ExpertUp, l, e)]);
                    Copy(from[denseNames.Hf(TensorRole.Down, l)], moe.Parameters[names.Hf(TensorRole.ExpertDown, l, e)]);
                }
            }
            foreach (var p in moe.Parameters.All)
            {
                if (routers.Contains(p.Name) || !from.Contains(p.Name)) continue;
                Copy(from[p.Name], p);
            }
            CheckEveryWeightSet(moe, from, routers, experts);
            return moe;
        }
        catch
        {
            moe.Dispose();
            throw;
        }
    }

    /// <summary>Every MoE parameter is either a router, an expert, or a dense parameter of the same name.</summary>
    static void CheckEveryWeightSet(Transformer moe, ModelParameters from, HashSet<string> routers, int experts)
    {
        var names = moe.Recipe.Names;
        var expertNames = new HashSet<string>(StringComparer.Ordinal);
        for (int l = 0; l < moe.Config.Layers; l++)
            for (int e = 0; e < experts; e++)
            {
                expertNames.Add(names.Hf(TensorRole.ExpertGate, l, e));
                expertNames.Add(names.Hf(TensorRole.ExpertUp, l, e));
                expertNames.Add(names.Hf(TensorRole.ExpertDown, l, e));
            }
        foreach (var p in moe.Parameters.All)
            if (!routers.Contains(p.Name) && !expertNames.Contains(p.Name) && !from.Contains(p.Name))
                throw new InvalidOperationException($"Upcycling: the MoE parameter '{p.Name}' has no dense counterpart.");
    }

    internal static void Copy(Tensor source, Tensor target)
    {
        if (!source.Shape.SequenceEqual(target.Shape))
            throw new InvalidDataException($"Tensor '{source.Name}' {source.ShapeString} does not fit '{target.Name}' {target.ShapeString}.");
        source.AsSpan("Upcycling").CopyTo(target.AsSpan("Upcycling"));
    }
}
