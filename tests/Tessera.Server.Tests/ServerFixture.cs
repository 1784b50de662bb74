using System.Text;
using System.Text.Json;
using Tessera.Inference;
using Tessera.Model;

namespace Tessera.Server.Tests;

/// <summary>One live server on 127.0.0.1 (a free port) over a tiny model, shared by the API test classes.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string ModelId = "tessera-test";

    public Transformer Model { get; } = new(TestModel.Config(), seed: 11);
    public ReferenceEngine Reference { get; private set; } = null!;
    public CountingEngine Engine { get; private set; } = null!;
    public ServedModel Served { get; private set; } = null!;
    public TesseraServer Server { get; private set; } = null!;
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>The OpenAI client's endpoint (the API lives under /v1).</summary>
    public Uri ApiBase => new(Server.Address, "v1/");

    public async Task InitializeAsync()
    {
        Reference = new ReferenceEngine(Model);
        Engine = new CountingEngine(Reference);
        Served = new ServedModel(ModelId, Engine, TestModel.Tokenizer);
        Server = await TesseraServer.StartAsync(Served, new ServerOptions { Port = 0 });
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Model.Dispose();
    }

    /// <summary>POSTs a JSON body (any text, valid or not) and returns the status and parsed body.</summary>
    public async Task<(int Status, JsonElement Body)> PostAsync(string path, string body)
        => await SendAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));

    public async Task<(int Status, JsonElement Body)> SendAsync(string path, HttpContent content)
    {
        using var r = await Http.PostAsync(new Uri(Server.Address, path), content);
        string text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "live server";
}
