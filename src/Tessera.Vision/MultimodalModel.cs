using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Vision;

/// <summary>
/// One network, many modalities: a decoder (<see cref="Transformer"/>, any architecture) plus a
/// <see cref="PatchEmbedder"/> whose vectors enter the decoder where the ids are negative. There is
/// no second forward: images go through <see cref="Transformer.Forward"/>'s embeddings-as-inputs
/// path and its prefix-LM attention, the same recipe the inference engine runs.
/// </summary>
public sealed class MultimodalModel(Transformer decoder, PatchEmbedder embedder) : IDisposable
{
    /// <summary>The decoder.</summary>
    public Transformer Decoder { get; } = decoder;

    /// <summary>The patch embedder.</summary>
    public PatchEmbedder Embedder { get; } = embedder;

    /// <summary>Decoder parameters, then the embedder's (one list for the optimiser).</summary>
    public IReadOnlyList<Tensor> AllParameters => [.. Decoder.Parameters.All, .. Embedder.Parameters.All];

    /// <summary>
    /// Forward over (B, T) <paramref name="ids"/> whose negative entries take the patch rows of
    /// <paramref name="patches"/> (whole images in order of appearance, row-major over the batch);
    /// <paramref name="prefix"/> gives each row's bidirectional prefix length (empty: all causal);
    /// <paramref name="frames"/>, for a video model, each image's frame index (see <see cref="PatchEmbedder.Forward"/>).
    /// </summary>
    public ModelOutput Forward(Graph g, ReadOnlySpan<int> ids, int batch, int seq, float[] patches, ReadOnlySpan<int> prefix = default,
        ReadOnlySpan<int> targets = default, IReadOnlyList<int>? frames = null)
    {
        var vectors = patches.Length == 0 ? null : Embedder.Forward(g, patches, frames);
        return Decoder.Forward(g, ids, batch, seq, targets, vectors, prefix);
    }

    /// <summary>Frees both parts.</summary>
    public void Dispose() { Decoder.Dispose(); Embedder.Dispose(); }
}
