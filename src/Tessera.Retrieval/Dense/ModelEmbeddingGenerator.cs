using Microsoft.Extensions.AI;
using Tessera.Inference;
using Tessera.Text;

namespace Tessera.Retrieval.Dense;

/// <summary>
/// Embeddings from a Tessera model as a Microsoft.Extensions.AI <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>:
/// the text is tokenised (BOS first when the model has one, cut to the context length) and the
/// engine's mean-pooled, L2-normalised final hidden state (<see cref="IGenerationEngine.Embed"/>)
/// is the vector, so cosine similarity is a dot product.
/// </summary>
public sealed class ModelEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    readonly IGenerationEngine engine;
    readonly ITokenizer tokenizer;
    readonly int? bos;

    /// <summary>An embedder over <paramref name="engine"/>; <paramref name="modelId"/> names the model in metadata and index manifests.</summary>
    public ModelEmbeddingGenerator(IGenerationEngine engine, ITokenizer tokenizer, int? bos, string modelId)
    {
        this.engine = engine; this.tokenizer = tokenizer; this.bos = bos;
        Metadata = new EmbeddingGeneratorMetadata("tessera", null, modelId, engine.Config.Dim);
        ModelId = modelId;
    }

    /// <summary>Provider, model id and dimensions.</summary>
    public EmbeddingGeneratorMetadata Metadata { get; }

    /// <summary>The model's identity (recorded in the index manifest; a query embedder must match it).</summary>
    public string ModelId { get; }

    /// <summary>Vector width (the model's hidden size).</summary>
    public int Dimensions => engine.Config.Dim;

    /// <summary>Token ids the model sees for <paramref name="text"/> (BOS + text, cut to the context length).</summary>
    public List<int> Ids(string text)
    {
        var ids = new List<int>();
        if (bos is { } b) ids.Add(b);
        ids.AddRange(tokenizer.Encode(text));
        if (ids.Count > engine.Config.ContextLength) ids.RemoveRange(engine.Config.ContextLength, ids.Count - engine.Config.ContextLength);
        return ids;
    }

    /// <summary>One embedding (synchronous convenience).</summary>
    public float[] Embed(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = Ids(text);
        if (ids.Count == 0) throw new ArgumentException("embedding: the text is empty and the model has no BOS token to embed.");
        return engine.Embed(ids);
    }

    /// <inheritdoc/>
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (options?.Dimensions is { } d && d != Dimensions)
            throw new ArgumentException($"embedding: {ModelId} produces {Dimensions}-dimensional vectors; {d} were asked for.");
        var result = new GeneratedEmbeddings<Embedding<float>>();
        foreach (var v in values)
        {
            cancellationToken.ThrowIfCancellationRequested();
            result.Add(new Embedding<float>(Embed(v)) { ModelId = ModelId, CreatedAt = DateTimeOffset.UtcNow });
        }
        return Task.FromResult(result);
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
        => serviceKey is null && serviceType.IsInstanceOfType(this) ? this
         : serviceKey is null && serviceType == typeof(EmbeddingGeneratorMetadata) ? Metadata
         : null;

    /// <inheritdoc/>
    public void Dispose() { }
}
