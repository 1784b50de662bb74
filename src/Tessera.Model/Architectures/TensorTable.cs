namespace Tessera.Model.Architectures;

/// <summary>What a weight tensor does in the block recipe, whatever a family calls it in its files.</summary>
public enum TensorRole
{
    /// <summary>Token embedding table (V, D).</summary>
    TokenEmbedding,
    /// <summary>Final norm gain (D).</summary>
    OutputNorm,
    /// <summary>Untied output head (V, D).</summary>
    Output,
    /// <summary>Norm before attention (D).</summary>
    AttentionNorm,
    /// <summary>q projection (H·Dh, D).</summary>
    Query,
    /// <summary>k projection (Hkv·Dh, D).</summary>
    Key,
    /// <summary>v projection (Hkv·Dh, D).</summary>
    Value,
    /// <summary>Attention output projection (D, H·Dh).</summary>
    AttentionOutput,
    /// <summary>q bias (H·Dh).</summary>
    QueryBias,
    /// <summary>k bias (Hkv·Dh).</summary>
    KeyBias,
    /// <summary>v bias (Hkv·Dh).</summary>
    ValueBias,
    /// <summary>Per-head RMSNorm gain on q (Dh).</summary>
    QueryNorm,
    /// <summary>Per-head RMSNorm gain on k (Dh).</summary>
    KeyNorm,
    /// <summary>Norm on the attention output before the residual add (D).</summary>
    AttentionPostNorm,
    /// <summary>Norm before the feed-forward half (D).</summary>
    FeedForwardNorm,
    /// <summary>Norm on the feed-forward output before the residual add (D).</summary>
    FeedForwardPostNorm,
    /// <summary>Dense GLU gate projection (F, D).</summary>
    Gate,
    /// <summary>Dense GLU up projection (F, D).</summary>
    Up,
    /// <summary>Dense down projection (D, F).</summary>
    Down,
    /// <summary>MoE router (E, D).</summary>
    Router,
    /// <summary>Expert e's gate projection (F, D).</summary>
    ExpertGate,
    /// <summary>Expert e's up projection (F, D).</summary>
    ExpertUp,
    /// <summary>Expert e's down projection (D, F).</summary>
    ExpertDown,
}

/// <summary>How a tensor is stored in GGUF compared with the Hugging Face layout.</summary>
[Flags]
public enum GgufTransform
{
    /// <summary>Stored as in the HF file.</summary>
    None = 0,
    /// <summary>Rows permuted from rotate-half to interleaved-pair RoPE order within each head (llama.cpp's llama arch).</summary>
    PermuteHeads = 1,
    /// <summary>Stored as 1 + w (llama.cpp's Gemma norms, which it runs as plain RMSNorm).</summary>
    AddOne = 2,
    /// <summary>All experts of a layer stacked in one (E, out, in) tensor.</summary>
    StackedExperts = 4,
}

/// <summary>One tensor's names: an HF name and a GGUF name template ({L} = layer, {E} = expert).</summary>
public sealed record TensorName(TensorRole Role, string Hf, string Gguf, GgufTransform Transform = GgufTransform.None);

/// <summary>
/// The one tensor-name table of an architecture: role → HF safetensors name and GGUF name. The
/// training parameters are registered under the HF names, the GGUF reader and writer and the
/// inference weights look tensors up through the same table, so a family's names live in one place.
/// </summary>
public sealed class TensorTable
{
    readonly Dictionary<TensorRole, TensorName> byRole = [];

    /// <summary>A table from its entries (one per role the family has).</summary>
    public TensorTable(IEnumerable<TensorName> names)
    {
        foreach (var n in names)
            if (!byRole.TryAdd(n.Role, n)) throw new ArgumentException($"TensorTable: role {n.Role} is named twice.");
    }

    /// <summary>True when the family has a tensor in this role.</summary>
    public bool Has(TensorRole role) => byRole.ContainsKey(role);

    /// <summary>The entry of a role; throws naming it when the family has none.</summary>
    public TensorName this[TensorRole role] => byRole.TryGetValue(role, out var n) ? n : throw new KeyNotFoundException($"The architecture has no tensor in role {role}.");

    /// <summary>The HF name of a role in <paramref name="layer"/> (and <paramref name="expert"/>).</summary>
    public string Hf(TensorRole role, int layer = -1, int expert = -1) => Fill(this[role].Hf, layer, expert);

    /// <summary>The GGUF name of a role in <paramref name="layer"/> (experts are stacked: no expert index).</summary>
    public string Gguf(TensorRole role, int layer = -1, int expert = -1) => Fill(this[role].Gguf, layer, expert);

    /// <summary>The GGUF storage transform of a role.</summary>
    public GgufTransform Transform(TensorRole role) => this[role].Transform;

    static string Fill(string template, int layer, int expert)
    {
        string s = template;
        if (s.Contains("{L}", StringComparison.Ordinal))
            s = layer >= 0 ? s.Replace("{L}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) : throw new ArgumentException($"TensorTable: '{template}' needs a layer index.");
        if (s.Contains("{E}", StringComparison.Ordinal))
            s = expert >= 0 ? s.Replace("{E}", expert.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) : throw new ArgumentException($"TensorTable: '{template}' needs an expert index.");
        return s;
    }
}

/// <summary>Every tensor a config has: each role of its table in each layer (and each expert).</summary>
public static class TensorInstances
{
    /// <summary>(role, layer, expert) of every tensor of <paramref name="c"/>; layer and expert are −1 where they do not apply.</summary>
    public static IEnumerable<(TensorRole Role, int Layer, int Expert)> Of(ModelConfig c, TensorTable names)
    {
        foreach (var role in Enum.GetValues<TensorRole>())
        {
            if (!names.Has(role)) continue;
            if (role is TensorRole.TokenEmbedding or TensorRole.OutputNorm or TensorRole.Output) { yield return (role, -1, -1); continue; }
            bool expert = role is TensorRole.ExpertGate or TensorRole.ExpertUp or TensorRole.ExpertDown;
            for (int l = 0; l < c.Layers; l++)
                if (!expert) yield return (role, l, -1);
                else for (int e = 0; e < c.Experts; e++) yield return (role, l, e);
        }
    }
}
