using Tessera.Model.Architectures;
using Tessera.Model.Modules;
using Tessera.Tensors;

namespace Tessera.Model;

/// <summary>
/// What one forward pass returns. <see cref="Loss"/> (the training objective) is
/// <see cref="CrossEntropy"/> + LoadBalanceCoef·<see cref="LoadBalance"/> + RouterZLossCoef·<see cref="RouterZ"/>,
/// where the auxiliary terms are the mean over MoE layers (so their scale does not grow with
/// depth). The loss tensors are null when no targets were given, the auxiliary ones also for a
/// dense model. <see cref="Hidden"/> is the final normalised hidden state (B·T, D), the
/// input of the output head (embeddings are pooled from it). All tensors belong to the graph.
/// </summary>
public sealed record ModelOutput(Tensor Logits, Tensor? Loss, Tensor? CrossEntropy, Tensor? LoadBalance, Tensor? RouterZ,
    IReadOnlyList<ExpertLoad> ExpertLoads, Tensor Hidden);

/// <summary>
/// The decoder-only transformer of any registered architecture, as the training graph: it runs
/// the <see cref="ModelRecipe"/> of its config (llama, qwen2, qwen3, gemma, gemma2, gemma3; dense
/// or MoE). Parameters carry the family's Hugging Face names (see <see cref="Parameters"/>), so
/// checkpoints load in other tools.
/// </summary>
public sealed class Transformer : IDisposable
{
    readonly Tensor embedTokens, finalNorm, lmHead;
    readonly TransformerBlock[] layers;
    IReadOnlyList<ExpertLoad> lastLoads = [];

    /// <summary>Builds the model for a validated <paramref name="config"/> and initialises it from <paramref name="seed"/>.</summary>
    public Transformer(ModelConfig config, ulong seed = 0)
    {
        Recipe = new ModelRecipe(config);
        Config = Recipe.Config;
        RopeTables = Recipe.BuildRopeTables(config.ContextLength);
        var names = Recipe.Names;
        var p = Parameters = new ModelParameters();
        embedTokens = p.Add(names.Hf(TensorRole.TokenEmbedding), ParameterKind.Embedding, config.VocabSize, config.Dim);
        layers = new TransformerBlock[config.Layers];
        for (int i = 0; i < layers.Length; i++) layers[i] = new TransformerBlock(Recipe, p, i, RopeTables[Recipe.RopeIndex[i]]);
        finalNorm = p.Add(names.Hf(TensorRole.OutputNorm), ParameterKind.NormGain, config.Dim);
        lmHead = config.TiedEmbeddings ? embedTokens : p.Add(names.Hf(TensorRole.Output), ParameterKind.Linear, config.VocabSize, config.Dim);
        p.Initialize(seed, config.Layers, config.NormGainOffset);
    }

    /// <summary>The shape of this model.</summary>
    public ModelConfig Config { get; }

    /// <summary>The block recipe this model runs (shared with the inference engine).</summary>
    public ModelRecipe Recipe { get; }

    /// <summary>Every weight, in checkpoint order, under its Hugging Face name.</summary>
    public ModelParameters Parameters { get; }

    /// <summary>The rotary tables, one per RoPE variant of <see cref="Recipe"/> (positions [0, ContextLength)).</summary>
    public RopeTable[] RopeTables { get; }

    /// <summary>The rotary table of the first layer (every layer's, unless local and global layers differ).</summary>
    public RopeTable Rope => RopeTables[0];

    /// <summary>Modules attached to this (frozen) base; empty unless attached (see docs/modules.md).</summary>
    public ModuleSet Modules { get; } = new();

    /// <summary>Routing statistics of the latest forward pass, one entry per MoE layer (empty for a dense model).</summary>
    public IReadOnlyList<ExpertLoad> LastExpertLoads => lastLoads;

    /// <summary>
    /// Forward over <paramref name="ids"/> (B·T, row-major (B, T)). With <paramref name="targets"/>
    /// (B·T ids; −100 = ignore) the output also holds the losses; call <c>g.Backward(output.Loss)</c>.
    /// With <paramref name="vectors"/> (M, D), every negative id takes the next vector as its input
    /// row instead of an embedding row (image patches, retrieved chunks, soft prompts); the
    /// embedding scale applies to both alike, so a vector equal to an embedding row gives
    /// bit-identical logits. <paramref name="prefix"/> (empty, or one length per batch row) makes
    /// row b's first prefix[b] positions attend to each other both ways and causally after them
    /// (prefix-LM, PaliGemma-style: bidirectional over an image plus its prompt); 0 keeps a row causal.
    /// </summary>
    public ModelOutput Forward(Graph g, ReadOnlySpan<int> ids, int batch, int seq, ReadOnlySpan<int> targets = default, Tensor? vectors = null,
        ReadOnlySpan<int> prefix = default)
    {
        CheckInputs(ids, batch, seq, targets);
        var stats = new RouterStats();
        var x = g.EmbedInputs(embedTokens, ids, vectors);                         // (B·T, D)
        if (Config.ScaleEmbeddings) x = g.Scale(x, Recipe.EmbeddingScale);
        x = g.Dropout(x, Config.Dropout);
        foreach (var layer in layers) x = layer.Forward(g, x, batch, seq, stats, prefix, Modules); // (B·T, D)
        var hidden = g.RmsNorm(x, finalNorm, Config.NormEps, Config.NormGainOffset);   // (B·T, D)
        Tensor logits;
        using (OpProfile.Tagged("head")) logits = g.Linear(hidden, lmHead); // (B·T, V); tagged for bench train --profile
        if (Config.FinalSoftCap > 0) logits = g.SoftCap(logits, Config.FinalSoftCap);
        lastLoads = stats.Loads;
        if (targets.IsEmpty) return new ModelOutput(logits, null, null, null, null, stats.Loads, hidden);

        var ce = g.CrossEntropy(logits, targets);
        if (!Config.IsMoe) return new ModelOutput(logits, ce, ce, null, null, stats.Loads, hidden);
        var balance = MeanOf(g, stats.LoadBalanceLosses);
        var z = MeanOf(g, stats.ZLosses);
        var loss = g.Add(ce, g.Add(g.Scale(balance, Config.LoadBalanceCoef), g.Scale(z, Config.RouterZLossCoef)));
        return new ModelOutput(logits, loss, ce, balance, z, stats.Loads, hidden);
    }

    static Tensor MeanOf(Graph g, IReadOnlyList<Tensor> terms)
    {
        var sum = terms[0];
        for (int i = 1; i < terms.Count; i++) sum = g.Add(sum, terms[i]);
        return terms.Count == 1 ? sum : g.Scale(sum, 1f / terms.Count);
    }

    void CheckInputs(ReadOnlySpan<int> ids, int batch, int seq, ReadOnlySpan<int> targets)
    {
        if (batch < 1 || seq < 1)
            throw new ArgumentException($"Transformer: batch ({batch}) and sequence length ({seq}) must be positive.");
        if (seq > Config.ContextLength)
            throw new ArgumentException($"Transformer: sequence length {seq} exceeds the model's context length {Config.ContextLength}.");
        if (ids.Length != batch * seq)
            throw new ArgumentException($"Transformer: {ids.Length} token ids do not form (B={batch}, T={seq}).");
        if (!targets.IsEmpty && targets.Length != ids.Length)
            throw new ArgumentException($"Transformer: {targets.Length} targets for {ids.Length} inputs.");
    }

    /// <summary>Frees every parameter, and every attached module's.</summary>
    public void Dispose()
    {
        foreach (var m in Modules.Attached) m.Dispose();
        Parameters.Dispose();
    }
}
