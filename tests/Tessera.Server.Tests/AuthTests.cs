using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using OpenAI;
using OpenAI.Chat;
using Tessera.Model;
using Tessera.Inference;

namespace Tessera.Server.Tests;

/// <summary>A server started with an API key: 401 everywhere but /health (and the static page), the key opens everything.</summary>
public sealed class AuthTests : IAsyncLifetime
{
    const string Key = "sk-test-0123456789abcdef";
    readonly Transformer model = new(TestModel.Config(), seed: 5);
    TesseraServer server = null!;
    readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async Task InitializeAsync()
        => server = await TesseraServer.StartAsync(new ServedModel("m", new ReferenceEngine(model), TestModel.Tokenizer), new ServerOptions { Port = 0, ApiKey = Key });

    public async Task DisposeAsync()
    {
        http.Dispose();
        await server.DisposeAsync();
        model.Dispose();
    }

    public static TheoryData<string, string, string?> Endpoints => new()
    {
        { "GET", "v1/models", null },
        { "GET", "v1/models/m", null },
        { "GET", "metrics", null },
        { "GET", "v1/no-such-path", null },
        { "POST", "v1/completions", """{"model":"m","prompt":"a","max_tokens":1}""" },
        { "POST", "v1/chat/completions", """{"model":"m","messages":[{"role":"user","content":"a"}],"max_tokens":1}""" },
        { "POST", "v1/embeddings", """{"model":"m","input":"a"}""" },
    };

    async Task<HttpResponseMessage> Send(string method, string path, string? body, string? authorization)
    {
        var req = new HttpRequestMessage(new HttpMethod(method), new Uri(server.Address, path));
        if (body is not null) req.Content = new StringContent(body, Encoding.UTF8, "application/json");
        if (authorization is not null) req.Headers.TryAddWithoutValidation("Authorization", authorization);
        return await http.SendAsync(req);
    }

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task EveryEndpointButHealthNeedsTheKey(string method, string path, string? body)
    {
        foreach (var wrong in (string?[])[null, "Bearer", "Bearer sk-test-0123456789abcdeX", "Bearer " + Key + "0", "Basic " + Key, Key, "Bearer " + Key[..^1]])
        {
            using var r = await Send(method, path, body, wrong);
            Assert.True(r.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} with '{wrong}' gave {(int)r.StatusCode}");
            Assert.Contains("invalid_api_key", await r.Content.ReadAsStringAsync());
            Assert.Equal("Bearer", r.Headers.WwwAuthenticate.ToString());
        }
        using var ok = await Send(method, path, body, "Bearer " + Key);
        Assert.NotEqual(HttpStatusCode.Unauthorized, ok.StatusCode);
        if (!path.Contains("no-such")) Assert.True(ok.IsSuccessStatusCode, $"{method} {path} with the key gave {(int)ok.StatusCode}");
    }

    [Fact]
    public async Task HealthAndTheChatPageAreOpen()
    {
        using var health = await Send("GET", "health", null, null);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using var page = await Send("GET", "", null, null);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("api-key", await page.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task TheOpenAiClientWorksWithTheKeyAndGets401WithoutIt()
    {
        var options = new OpenAIClientOptions { Endpoint = new Uri(server.Address, "v1/"), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) };
        var good = new ChatClient("m", new ApiKeyCredential(Key), options);
        var reply = await good.CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 3, Temperature = 0 });
        Assert.Equal(ChatMessageRole.Assistant, reply.Value.Role);
        Assert.InRange(reply.Value.Usage.OutputTokenCount, 1, 3);

        var bad = new ChatClient("m", new ApiKeyCredential("sk-wrong-key-000000"), options);
        var e = await Assert.ThrowsAsync<ClientResultException>(() => bad.CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(401, e.Status);
        var streamFailure = await Assert.ThrowsAsync<ClientResultException>(async () =>
        {
            await foreach (var _ in bad.CompleteChatStreamingAsync([new UserChatMessage("hi")])) { }
        });
        Assert.Equal(401, streamFailure.Status);
    }

    [Fact]
    public void KeyComparisonIsExact()
    {
        var check = new ApiKeyCheck(Key);
        Assert.True(check.Matches(Key));
        Assert.False(check.Matches(""));
        Assert.False(check.Matches(Key.AsSpan(0, Key.Length - 1)));
        Assert.False(check.Matches(Key + " "));
        Assert.False(check.Matches(Key.ToUpperInvariant()));
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("192.168.1.10")]
    [InlineData("::")]
    public void LeavingLoopbackNeedsAKeyOrInsecure(string host)
    {
        var e = Assert.Throws<ArgumentException>(() => new ServerOptions { Host = host }.Validate(loopback: false));
        Assert.Contains("--api-key", e.Message);
        new ServerOptions { Host = host, ApiKey = Key }.Validate(loopback: false);
        new ServerOptions { Host = host, Insecure = true }.Validate(loopback: false);
        Assert.Throws<ArgumentException>(() => new ServerOptions { Host = host, ApiKey = "short" }.Validate(loopback: false));
    }

    [Fact]
    public async Task StartingOffLoopbackWithoutAKeyFailsBeforeBinding()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => TesseraServer.StartAsync(new ServedModel("m", new ReferenceEngine(model), TestModel.Tokenizer), new ServerOptions { Host = "0.0.0.0", Port = 0 }));
        Assert.Contains("--insecure", e.Message);
    }

    [ChromiumFact]
    public async Task TheChatPageAsksForTheKeyAndWorksWithIt()
    {
        await using var browser = await HeadlessChromium.LaunchAsync(TimeSpan.FromSeconds(20));
        await browser.NavigateAsync(server.Address, TimeSpan.FromSeconds(10));
        await browser.WaitForAsync("document.getElementById('status').textContent === 'this server needs an API key'", TimeSpan.FromSeconds(10));
        await browser.EvaluateAsync($"const k = document.getElementById('api-key'); k.value = '{Key}'; k.dispatchEvent(new Event('change'))");
        await browser.WaitForAsync("document.getElementById('status').textContent === 'ready'", TimeSpan.FromSeconds(10));
        await browser.EvaluateAsync("document.getElementById('max-tokens').value = '4'; document.getElementById('input').focus()");
        await browser.InsertTextAsync("hello");
        await browser.EvaluateAsync("document.getElementById('send').click()");
        await browser.WaitForAsync("document.querySelector('.msg.assistant')?.dataset.done === 'true'", TimeSpan.FromSeconds(20));
        Assert.Equal(0, (await browser.EvaluateAsync("document.querySelectorAll('.msg.error').length")).GetInt32());
    }
}
