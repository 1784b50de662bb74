using Tessera.Model;
using Tessera.Text;

namespace Tessera.Evals.Tests;

/// <summary>Small randomly initialised models and the byte tokenizer for tests.</summary>
static class TinyModels
{
    public static ByteTokenizer Bytes { get; } = new(ChatTemplate.DefaultSpecialTokens);
    public static int Bos => Bytes.SpecialTokens.Id(ChatTemplate.Bos);

    public static Transformer Random(int context = 32, ulong seed = 3, int experts = 1)
        => new(new ModelConfig { VocabSize = Bytes.VocabSize, Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 64,
            ContextLength = context, Experts = experts, TopK = experts > 1 ? 2 : 1 }, seed);

    /// <summary>A model whose logits are all zero (the final norm gain is zero), so log p = −ln V for every token.</summary>
    public static Transformer Uniform(int context = 32)
    {
        var m = Random(context);
        foreach (var p in m.Parameters.All)
            if (p.Name == "model.norm.weight") p.AsSpan().Clear();
        return m;
    }

    public static int[] Tokens(int n, ulong seed, int alphabet = 256)
    {
        var r = new Tessera.Tensors.Rng(seed);
        var a = new int[n];
        for (int i = 0; i < n; i++) a[i] = r.NextInt(alphabet);
        return a;
    }
}
