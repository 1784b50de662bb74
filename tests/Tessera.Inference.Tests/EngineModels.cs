using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Inference.Tests;

/// <summary>Tiny model shapes that cover each code path of the fast engine, and shared test plumbing.</summary>
public static class EngineModels
{
    /// <summary>Dense, grouped-query attention (2 query heads per kv head).</summary>
    public static readonly ModelConfig Dense = new() { VocabSize = 40, Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 48, ContextLength = 48 };
    /// <summary>Mixture, top-1 (raw router probability as gate).</summary>
    public static readonly ModelConfig MoeTop1 = Dense with { Experts = 4, TopK = 1, HiddenDim = 24 };
    /// <summary>Mixture, top-2 (renormalised gates).</summary>
    public static readonly ModelConfig MoeTop2 = Dense with { Experts = 4, TopK = 2, HiddenDim = 24, TiedEmbeddings = false };
    /// <summary>Sliding-window attention.</summary>
    public static readonly ModelConfig Windowed = Dense with { SlidingWindow = 5, KvHeads = 1 };

    /// <summary>64-wide heads: the attention's register path.</summary>
    public static readonly ModelConfig Head64 = Dense with { Dim = 128, Heads = 2, KvHeads = 1, HiddenDim = 64 };

    /// <summary>Three 64-wide query heads per kv head and a window: a pair of heads, then a single one.</summary>
    public static readonly ModelConfig Head64Odd = Dense with { Dim = 192, Heads = 3, KvHeads = 1, HiddenDim = 64, SlidingWindow = 7 };

    /// <summary>Qwen2: q/k/v biases.</summary>
    public static readonly ModelConfig Qwen2 = Family("qwen2", Dense);

    /// <summary>Qwen3-MoE: head_dim 16 ≠ dim/heads, per-head QK-norm, top-2 experts without renormalisation.</summary>
    public static readonly ModelConfig Qwen3Moe = Family("qwen3", MoeTop2 with { HeadDim = 16, NormalizeTopK = false });

    /// <summary>Gemma2: 1 + w norms, √D, GeGLU, post-norms, soft-caps, query scale, alternating local (window 5) and global layers.</summary>
    public static readonly ModelConfig Gemma2 = Family("gemma2", Dense with { HeadDim = 16, SlidingWindow = 5, AttentionSoftCap = 5f, FinalSoftCap = 20f, QueryPreAttnScalar = 25f });

    /// <summary>Gemma3 with 64-wide heads: QK-norm, local base 10k vs global 1M with linear scaling on the global layer.</summary>
    public static readonly ModelConfig Gemma3 = Family("gemma3", Head64 with { HeadDim = 64, SlidingWindow = 6, SlidingWindowPattern = 2, RopeTheta = 1e6f, RopeScaling = new RopeScaling("linear", 4f) });

    static ModelConfig Family(string arch, ModelConfig c) => Tessera.Model.Architectures.ArchitectureRegistry.Get(arch).Apply(c).Validate();

    public static TheoryData<string> Names => new() { "dense", "moe1", "moe2", "window", "head64", "head64odd", "qwen2", "qwen3moe", "gemma2", "gemma3" };

    public static ModelConfig ByName(string name) => name switch
    {
        "dense" => Dense, "moe1" => MoeTop1, "moe2" => MoeTop2, "window" => Windowed, "head64" => Head64, "head64odd" => Head64Odd,
        "qwen2" => Qwen2, "qwen3moe" => Qwen3Moe, "gemma2" => Gemma2, "gemma3" => Gemma3,
        _ => throw new ArgumentException(name),
    };

    /// <summary>
    /// A randomly initialised model whose logits are scaled up (through the final norm's gain, which
    /// feeds only the head), so next-token distributions are peaked and differ between seeds: the
    /// 0.02 init gives almost uniform ones, where greedy near-ties and trivially accepting
    /// speculation would make tests weak.
    /// </summary>
    public static Transformer Build(ModelConfig config, ulong seed, float logitScale = 30f)
    {
        var m = new Transformer(config, seed);
        // Layer matrices ×6 so the layers, not the token's own embedding, decide the prediction
        // (with the 0.02 init every model's argmax is just "repeat the last token").
        var rng = new Rng(seed + 1000);
        foreach (var t in m.Parameters.All)
        {
            if (t.Name.StartsWith("model.layers.", StringComparison.Ordinal) && t.Rank == 2)
                foreach (ref float w in t.AsSpan()) w *= 6f;
            // Biases and (1 + w) gains start at 0: give them values so their code paths matter.
            else if (t.Rank == 1 && (t.Name.EndsWith(".bias", StringComparison.Ordinal) || (config.NormGainOffset != 0 && t.Name != "model.norm.weight")))
                rng.FillNormal(t.AsSpan(), 0f, 0.3f);
        }
        float offset = config.NormGainOffset;
        foreach (ref float g in m.Parameters["model.norm.weight"].AsSpan()) g = (g + offset) * logitScale - offset;
        return m;
    }

    public static async Task<List<TokenEvent>> Collect(IAsyncEnumerable<TokenEvent> events, int? cancelAfter = null, CancellationTokenSource? cts = null)
    {
        var list = new List<TokenEvent>();
        await foreach (var e in events)
        {
            list.Add(e);
            if (cancelAfter is { } n && list.Count == n) cts!.Cancel();
        }
        return list;
    }

    /// <summary>Logits (V) after <paramref name="ids"/> from the plain graph forward.</summary>
    public static float[] ReferenceLogits(Transformer model, IReadOnlyList<int> ids)
    {
        int V = model.Config.VocabSize, T = ids.Count;
        using var g = new Graph(recordGradients: false);
        return model.Forward(g, ids.ToArray(), 1, T).Logits.AsSpan().Slice((T - 1) * V, V).ToArray();
    }

    /// <summary>Final hidden state (D) after <paramref name="ids"/> from the plain graph forward.</summary>
    public static float[] ReferenceHidden(Transformer model, IReadOnlyList<int> ids)
    {
        int D = model.Config.Dim, T = ids.Count;
        using var g = new Graph(recordGradients: false);
        return model.Forward(g, ids.ToArray(), 1, T).Hidden.AsSpan().Slice((T - 1) * D, D).ToArray();
    }

    /// <summary><paramref name="count"/> greedy tokens after <paramref name="prompt"/> from the KV-cache decoder.</summary>
    public static List<int> Greedy(InferenceWeights w, int[] prompt, int count)
    {
        using var d = new SequenceDecoder(w);
        d.Feed(prompt);
        var output = new List<int>();
        for (int i = 0; i < count; i++)
        {
            int next = Sampler.ArgMax(d.Logits(0));
            output.Add(next);
            d.Feed([next]);
        }
        return output;
    }

    public static int[] Prompt(int length, int vocab, int salt)
    {
        var p = new int[length];
        for (int i = 0; i < length; i++) p[i] = (i * 7 + salt * 13 + 1) % vocab;
        return p;
    }
}
