using Tessera.Tensors;

namespace Tessera.Model.Architectures;

/// <summary>
/// The block recipe both executors run — the training graph (<see cref="Transformer"/>) and the
/// inference engine's forward pass — derived once from a config and its family's tensor table:
/// <code>
///   x = rows (embedding[id] or a caller's vector) · (√D if ScaleEmbeddings)
///   per layer l:
///     h = norm(x; AttentionNorm)                                  norm(v; w) = v·rstd(v)·(w + NormGainOffset)
///     q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ (+ biases if QkvBias)
///     q, k = norm per head (QueryNorm, KeyNorm) if QkNorm
///     q, k = rope(q, k; Ropes[l])                                 rotate-half
///     a = attention(q, k, v; Windows[l], Scale, SoftCap)·Woᵀ       GQA, causal, soft-capped scores
///     x = x + (norm(a; AttentionPostNorm) if PostNorms else a)
///     h = norm(x; FeedForwardNorm)
///     f = down(act(gate·h) ⊙ up·h)  or  Σ top-k gate·expert(h)    act = silu | tanh-GELU
///     x = x + (norm(f; FeedForwardPostNorm) if PostNorms else f)
///   logits = softcap(norm(x; OutputNorm)·Woutᵀ; FinalSoftCap)
/// </code>
/// </summary>
public sealed class ModelRecipe
{
    /// <summary>The recipe of <paramref name="config"/>.</summary>
    public ModelRecipe(ModelConfig config)
    {
        Config = config.Validate();
        Names = ArchitectureRegistry.Get(config.Architecture).Tensors(config);
        var ropes = new List<(float, RopeScaling?)>();
        RopeIndex = new int[config.Layers];
        Windows = new int[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            Windows[l] = config.WindowOf(l);
            var rope = config.RopeOf(l);
            int i = ropes.IndexOf(rope);
            if (i < 0) { i = ropes.Count; ropes.Add(rope); }
            RopeIndex[l] = i;
        }
        Ropes = ropes;
    }

    /// <summary>The config.</summary>
    public ModelConfig Config { get; }

    /// <summary>The family's tensor names.</summary>
    public TensorTable Names { get; }

    /// <summary>Distinct (base, scaling) RoPE variants; layer l uses <c>Ropes[RopeIndex[l]]</c>.</summary>
    public IReadOnlyList<(float Theta, RopeScaling? Scaling)> Ropes { get; }

    /// <summary>Which RoPE variant each layer uses.</summary>
    public int[] RopeIndex { get; }

    /// <summary>Each layer's attention window (0 = global).</summary>
    public int[] Windows { get; }

    /// <summary>The factor applied to input rows (√D for Gemma, else 1).</summary>
    public float EmbeddingScale => Config.ScaleEmbeddings ? MathF.Sqrt(Config.Dim) : 1f;

    /// <summary>The attention score scale.</summary>
    public float AttentionScale => Config.EffectiveAttentionScale;

    /// <summary>Builds one rotary table per variant for <paramref name="positions"/> positions.</summary>
    public RopeTable[] BuildRopeTables(int positions)
    {
        var tables = new RopeTable[Ropes.Count];
        for (int i = 0; i < tables.Length; i++) tables[i] = new RopeTable(positions, Config.HeadDim, Ropes[i].Theta, Ropes[i].Scaling);
        return tables;
    }
}
