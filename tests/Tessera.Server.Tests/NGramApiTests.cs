using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Tessera.Data.NGram;
using Tessera.Inference;
using Tessera.Model;

namespace Tessera.Server.Tests;

/// <summary>The n-gram routes: answers equal the in-process API, bad input is a 400 with the reason.</summary>
public sealed class NGramApiTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "tessera-ngram-api-" + Guid.NewGuid().ToString("N"));
    readonly NGramStore store;
    readonly int[][] docs;

    public NGramApiTests()
    {
        var rng = new Random(3);
        docs = [.. Enumerable.Range(0, 8).Select(d => Enumerable.Range(0, 40).Select(_ => rng.Next(4)).ToArray())];
        NGramBuilder.Build(docs, new TokenizerIdentity("test", 6, "x"), Path.Combine(dir, "index"), new NGramBuildOptions { ShardTokens = 100 });
        store = NGramStore.Open(Path.Combine(dir, "index"));
    }

    public void Dispose()
    {
        store.Dispose();
        Directory.Delete(dir, recursive: true);
    }

    static async Task<(int Status, JsonElement Body)> Post(HttpClient http, string path, string body)
    {
        using var r = await http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        return ((int)r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    [Fact]
    public async Task BatchAndSingleQueriesEqualTheInProcessAnswers()
    {
        var (app, address) = await NGramEndpoint.StartAsync(store, new ServerOptions { Port = 0 });
        await using var running = app;
        using var http = new HttpClient { BaseAddress = address };
        int[] seq = [.. docs[2][5..30], .. docs[5][..20], 5, 4];
        var want = NGramBatch.Infinity(store, seq);
        var (status, body) = await Post(http, "v1/ngram/batch", JsonSerializer.Serialize(new { query = "infinity", sequences = new[] { seq, docs[0] } }));
        Assert.Equal(200, status);
        var r0 = body.GetProperty("results")[0];
        for (int t = 0; t < seq.Length; t++)
        {
            Assert.Equal(want[t].SuffixLength, r0.GetProperty("suffix_length")[t].GetInt32());
            Assert.Equal(want[t].ContextCount, r0.GetProperty("context_count")[t].GetInt64());
            Assert.Equal(want[t].TargetCount, r0.GetProperty("target_count")[t].GetInt64());
        }
        Assert.Equal(docs[0].Length, body.GetProperty("results")[1].GetProperty("probability").GetArrayLength());

        (status, body) = await Post(http, "v1/ngram/query", JsonSerializer.Serialize(new { query = "count", ids = docs[1][3..7] }));
        Assert.Equal(200, status);
        Assert.Equal(store.Count(docs[1][3..7]), body.GetProperty("count").GetInt64());
        (status, body) = await Post(http, "v1/ngram/query", JsonSerializer.Serialize(new { query = "probability", ids = seq[..10], token = seq[10] }));
        Assert.Equal(want[10].TargetCount, body.GetProperty("target_count").GetInt64());
        (status, body) = await Post(http, "v1/ngram/batch", JsonSerializer.Serialize(new { query = "stupid_backoff", sequences = new[] { seq } }));
        var sb = NGramBatch.StupidBackoff(store, seq);
        for (int t = 0; t < seq.Length; t++) Assert.Equal(sb[t], body.GetProperty("results")[0].GetProperty("score")[t].GetDouble());
    }

    [Theory]
    [InlineData("v1/ngram/query", "{\"query\":\"count\",\"ids\":[1,9]}", "outside the vocabulary [0, 6)")]
    [InlineData("v1/ngram/query", "{\"query\":\"count\",\"ids\":[]}", "the query is empty")]
    [InlineData("v1/ngram/query", "{\"query\":\"nonsense\",\"ids\":[1]}", "unknown query 'nonsense'")]
    [InlineData("v1/ngram/query", "{\"query\":\"probability\",\"ids\":[1]}", "`token` is required")]
    [InlineData("v1/ngram/batch", "{\"sequences\":[]}", "non-empty array")]
    [InlineData("v1/ngram/batch", "{\"sequences\":[[1,2,-1]]}", "outside the vocabulary")]
    [InlineData("v1/ngram/batch", "{\"sequences\":[[1,2", "")]
    public async Task BadRequestsAreRejectedWithTheReason(string path, string body, string message)
    {
        var (app, address) = await NGramEndpoint.StartAsync(store, new ServerOptions { Port = 0 });
        await using var running = app;
        using var http = new HttpClient { BaseAddress = address };
        var (status, json) = await Post(http, path, body);
        Assert.Equal(400, status);
        Assert.Contains(message, json.GetProperty("error").GetProperty("message").GetString());
        (status, _) = await Post(http, "v1/ngram/query", "{\"query\":\"count\",\"ids\":[1]}");
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task TheModelServerServesTheRoutesWhenGivenAStore()
    {
        using var model = new Transformer(TestModel.Config(), seed: 11);
        var served = new ServedModel("m", new ReferenceEngine(model), TestModel.Tokenizer);
        await using var server = await TesseraServer.StartAsync(served, new ServerOptions { Port = 0, NGram = store });
        using var http = new HttpClient { BaseAddress = server.Address };
        var (status, body) = await Post(http, "v1/ngram/query", "{\"query\":\"count\",\"ids\":[1]}");
        Assert.Equal(200, status);
        Assert.Equal(store.Count([1]), body.GetProperty("count").GetInt64());
    }
}
