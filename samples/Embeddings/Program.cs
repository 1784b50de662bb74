// Embeddings sample: a Tessera model as a Microsoft.Extensions.AI IEmbeddingGenerator, and a
// Microsoft.Extensions.VectorData collection searched with its vectors.
//
//   dotnet run --project samples/Embeddings
// The model here is a small random one so the sample runs anywhere in seconds; any engine works
// the same way (`tessera index build --model RUN` embeds with a trained checkpoint).
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Retrieval.Dense;
using Tessera.Text;

ITokenizer tokenizer = TokenizerFiles.Load("bytes");
var model = new Transformer(new ModelConfig
{
    VocabSize = tokenizer.VocabSize, Dim = 48, Layers = 2, Heads = 2, KvHeads = 1, HiddenDim = 64, Experts = 2, TopK = 1, ContextLength = 256,
}, seed: 7);

using (model)
using (var engine = new BatchingEngine(model))
{
    IEmbeddingGenerator<string, Embedding<float>> generator = new ModelEmbeddingGenerator(engine, tokenizer, null, "random-48");
    string[] texts =
    [
        "The river overflowed its banks after the storm.",
        "The bank raised interest rates on savings accounts.",
        "She tuned the guitar before the concert.",
        "A comet's tail points away from the sun.",
    ];
    var embeddings = await generator.GenerateAsync(texts);
    var meta = generator.GetService<EmbeddingGeneratorMetadata>()!;
    Console.WriteLine($"model: {meta.DefaultModelId}, dimensions: {meta.DefaultModelDimensions}, embeddings: {embeddings.Count}");

    using var collection = new PassageVectorCollection("sample", embeddings[0].Vector.Length, generator);
    for (int i = 0; i < texts.Length; i++)
        await collection.UpsertAsync(new PassageRecord { Key = i, DocumentId = $"text-{i}", Text = texts[i], Vector = embeddings[i].Vector });

    // Each text's own embedding must find itself first (cosine 1).
    int self = 0;
    for (int i = 0; i < texts.Length; i++)
    {
        await foreach (var hit in collection.SearchAsync(embeddings[i].Vector, 1))
        {
            Console.WriteLine($"query {i} -> {hit.Record.DocumentId} (cosine {hit.Score:F4})");
            if (hit.Record.Key == i) self++;
        }
    }
    Console.WriteLine($"self-retrieval: {self}/{texts.Length}");

    Console.WriteLine("search by text: \"money in a savings account\"");
    await foreach (var hit in collection.SearchAsync("money in a savings account", 2))
        Console.WriteLine($"  {hit.Record.DocumentId} (cosine {hit.Score:F4}): {hit.Record.Text}");
}
