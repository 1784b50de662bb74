using Tessera.Model;
using Tessera.Model.Architectures;

namespace Tessera.Training;

/// <summary>
/// Branch-train-mix (Sukhbaatar et al. 2024): dense branches trained apart from one base become
/// one mixture of experts. Expert e of layer l is branch e's layer-l MLP; every other weight
/// (attention, norms, embeddings, head) is the element-wise mean over the branches, summed in
/// branch order; each layer gets a new router drawn from the seed (normal, std
/// <see cref="ModelParameters.InitStd"/> = 0.02), to be learned in a short joint fine-tune.
/// </summary>
public static class BranchMerge
{
    /// <summary>
    /// Checks that <paramref name="branches"/> can be merged: at least two, all dense, one family,
    /// identical shapes. Throws one <see cref="ArgumentException"/> naming the first offending branch.
    /// </summary>
    public static ModelConfig Config(IReadOnlyList<ModelConfig> branches, IReadOnlyList<string> labels, int topK)
    {
        if (branches.Count < 2) throw new ArgumentException($"btm merge needs at least 2 branches, got {branches.Count}.");
        var first = branches[0];
        for (int b = 0; b < branches.Count; b++)
        {
            var c = branches[b];
            if (c.IsMoe) throw new ArgumentException($"Branch {labels[b]} is a mixture of experts ({c.Experts} experts); branch-train-mix merges dense branches.");
            if (b == 0) continue;
            if (c.Architecture != first.Architecture)
                throw new ArgumentException($"Branch {labels[b]} is a {c.Architecture} model, branch {labels[0]} a {first.Architecture} model: branches must be one family.");
            string? diff = FirstDifference(first, c);
            if (diff is not null) throw new ArgumentException($"Branch {labels[b]} does not have the shape of branch {labels[0]}: {diff}.");
        }
        if (topK < 1 || topK > branches.Count) throw new ArgumentException($"--top-k {topK} must be between 1 and the number of branches ({branches.Count}).");
        return (first with { Experts = branches.Count, TopK = topK, NormalizeTopK = true, CapacityFactor = 0 }).Validate();
    }

    static string? FirstDifference(ModelConfig a, ModelConfig b)
    {
        (string, object, object)[] keys =
        [
            ("vocab size", a.VocabSize, b.VocabSize), ("dim", a.Dim, b.Dim), ("layers", a.Layers, b.Layers), ("heads", a.Heads, b.Heads),
            ("kv heads", a.KvHeads, b.KvHeads), ("head dim", a.HeadDim, b.HeadDim), ("hidden dim", a.HiddenDim, b.HiddenDim),
            ("context length", a.ContextLength, b.ContextLength), ("tied embeddings", a.TiedEmbeddings, b.TiedEmbeddings),
        ];
        foreach (var (name, x, y) in keys)
            if (!x.Equals(y)) return $"{name} {y}, expected {x}";
        return a.ToHuggingFaceJson() == b.ToHuggingFaceJson() ? null : "their config.json files differ";
    }

    /// <summary>The merged MoE model (the caller disposes it). Branch order is expert order.</summary>
    public static Transformer Merge(IReadOnlyList<Transformer> branches, IReadOnlyList<string> labels, int topK, ulong seed)
    {
        var config = Config([.. branches.Select(b => b.Config)], labels, topK);
        var moe = new Transformer(config, seed);
        try
        {
            var names = moe.Recipe.Names;
            var dense = branches[0].Recipe.Names;
            var own = new HashSet<string>(StringComparer.Ordinal);   // routers and experts: not averaged
            for (int l = 0; l < config.Layers; l++)
            {
                own.Add(names.Hf(TensorRole.Router, l));
                for (int e = 0; e < branches.Count; e++)
                {
                    var from = branches[e].Parameters;
                    foreach (var (role, expertRole) in new[] { (TensorRole.Gate, TensorRole.ExpertGate), (TensorRole.Up, TensorRole.ExpertUp), (TensorRole.Down, TensorRole.ExpertDown) })
                    {
                        string target = names.Hf(expertRole, l, e);
                        Upcycling.Copy(from[dense.Hf(role, l)], moe.Parameters[target]);
                        own.Add(target);
                    }
                }
            }
            float inv = 1f / branches.Count;
            foreach (var p in moe.Parameters.All)
            {
                if (own.Contains(p.Name)) continue;
                var sum = p.AsSpan("BranchMerge");
                sum.Clear();
                foreach (var b in branches)
                {
                    var src = b.Parameters[p.Name];
                    if (!src.Shape.SequenceEqual(p.Shape)) throw new InvalidDataException($"Tensor '{p.Name}' {src.ShapeString} does not fit {p.ShapeString}.");
                    var s = src.AsSpan("BranchMerge");
                    for (int i = 0; i < sum.Length; i++) sum[i] += s[i];
                }
                for (int i = 0; i < sum.Length; i++) sum[i] *= inv;
            }
            return moe;
        }
        catch
        {
            moe.Dispose();
            throw;
        }
    }
}
