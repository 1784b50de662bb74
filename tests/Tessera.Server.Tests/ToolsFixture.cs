using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Json.Schema;
using Tessera.Inference;
using Tessera.Model;

namespace Tessera.Server.Tests;

/// <summary>
/// A live server over a tiny random byte-level model with a 1,024-token context (tool declarations
/// in the prompt are long in bytes) on the batching engine, recording every prompt it is given.
/// </summary>
public sealed class ToolsFixture : IAsyncLifetime
{
    public const string ModelId = "tessera-tools";
    public Transformer Model { get; } = new(TestModel.Config(context: 1024), seed: 21);
    public BatchingEngine Batching { get; private set; } = null!;
    public PromptRecorder Engine { get; private set; } = null!;
    public ServedModel Served { get; private set; } = null!;
    public TesseraServer Server { get; private set; } = null!;
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };
    public Uri ApiBase => new(Server.Address, "v1/");

    public async Task InitializeAsync()
    {
        Batching = new BatchingEngine(Model);
        Engine = new PromptRecorder(Batching);
        Served = new ServedModel(ModelId, Engine, TestModel.Tokenizer);
        Server = await TesseraServer.StartAsync(Served, new ServerOptions { Port = 0 });
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Batching.Dispose();
        Model.Dispose();
    }

    public async Task<(int Status, JsonElement Body)> PostAsync(string path, string body)
    {
        using var r = await Http.PostAsync(new Uri(Server.Address, path), new StringContent(body, Encoding.UTF8, "application/json"));
        return ((int)r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    /// <summary>Null when <paramref name="json"/> parses and validates against <paramref name="schema"/>, else why not.</summary>
    public static string? Validate(string schema, string json)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { return $"'{json}' does not parse: {e.Message}"; }
        using (doc)
        {
            var s = JsonSchema.FromText(schema, new BuildOptions(), new Uri($"https://tessera.test/{Guid.NewGuid():N}"));
            return s.Evaluate(doc.RootElement).IsValid ? null : $"'{json}' does not validate against {schema}";
        }
    }
}

/// <summary>Passes requests to an engine and keeps each prompt's text.</summary>
public sealed class PromptRecorder(IGenerationEngine inner) : IGenerationEngine
{
    readonly List<string> prompts = [];
    public IReadOnlyList<string> Prompts { get { lock (prompts) return [.. prompts]; } }
    public ModelConfig Config => inner.Config;

    public IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, CancellationToken cancel = default)
    {
        lock (prompts) prompts.Add(TestModel.Tokenizer.Decode(request.Prompt.ToArray()));
        return inner.GenerateAsync(request, cancel);
    }

    public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs) => inner.Score(prompt, topLogprobs);
    public float[] Embed(IReadOnlyList<int> ids) => inner.Embed(ids);
}

[CollectionDefinition(Name)]
public sealed class ToolsCollection : ICollectionFixture<ToolsFixture>
{
    public const string Name = "tools server";
}
