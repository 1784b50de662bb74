using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Text;
using TextMessage = Tessera.Text.ChatMessage;

namespace Tessera.Server.Tests;

/// <summary>
/// The small/large cascade: the dial's extremes and its middle route as documented, the reported
/// decision names the model whose greedy reply came back (checked against each engine alone),
/// decisions are counted in /metrics, and bad configuration or request fields are refused clearly.
/// </summary>
public sealed class CascadeTests : IAsyncLifetime
{
    const string SmallId = "tiny-small", LargeId = "tiny-large", CascadeId = "cascade";

    // Two different random models: their greedy replies differ, so a reply tells which one answered.
    readonly Transformer smallModel = new(TestModel.Config(), seed: 11);
    readonly Transformer largeModel = new(TestModel.Config() with { Dim = 48, HiddenDim = 64, Heads = 4, KvHeads = 2 }, seed: 12);
    ReferenceEngine small = null!, large = null!;

    public Task InitializeAsync()
    {
        small = new ReferenceEngine(smallModel);
        large = new ReferenceEngine(largeModel);
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        smallModel.Dispose();
        largeModel.Dispose();
        return Task.CompletedTask;
    }

    Cascade Build(double threshold) => new(CascadeId, new ServedModel(SmallId, small, TestModel.Tokenizer), new ServedModel(LargeId, large, TestModel.Tokenizer), threshold);

    static Task<TesseraServer> Start(Cascade c) => TesseraServer.StartAsync(c, new ServerOptions { Port = 0 });

    static ChatClient Client(TesseraServer s, string model = CascadeId) => LiveServer.Client(s, model);

    static JsonElement Routing(ClientResult r) => JsonDocument.Parse(r.GetRawResponse().Content.ToString()).RootElement.GetProperty("tessera").Clone();

    static Task<(int Status, JsonElement Body, HttpResponseMessage Response)> Post(TesseraServer s, string path, string body) => LiveServer.Post(s, path, body);

    /// <summary>The engine's greedy continuation of a text prompt (BOS first), decoded the plain way.</summary>
    static string GreedyCompletion(IGenerationEngine engine, string prompt, int maxTokens)
    {
        var ids = new List<int> { TestModel.Tokenizer.SpecialTokens.Id(ChatTemplate.Bos) };
        ids.AddRange(TestModel.Tokenizer.Encode(prompt));
        var stops = new HashSet<int> { TestModel.Tokenizer.SpecialTokens.Id(ChatTemplate.Eos) };
        var output = engine.GenerateAsync(new GenerationRequest(ids, maxTokens, SamplingOptions.Greedy, stops)).ToBlockingEnumerable()
            .Where(e => !stops.Contains(e.Id)).Select(e => e.Id).ToList();
        return TestModel.Text(output);
    }

    /// <summary>The confidence computed here from the small engine's own scores (not through <see cref="Cascade"/>).</summary>
    double SmallConfidence(string prompt)
    {
        var ids = new List<int> { TestModel.Tokenizer.SpecialTokens.Id(ChatTemplate.Bos) };
        ids.AddRange(TestModel.Tokenizer.Encode(prompt));
        var scored = small.Score(ids, 0);
        return Math.Exp(scored.Skip(1).Average(e => (double)e.Logprob));
    }

    [Fact]
    public async Task OpenAiClientGetsTheSmallModelsReplyAtThresholdZeroAndTheLargeModelsAtOne()
    {
        TextMessage[] messages = [new("user", "Hello there")];
        var expectedSmall = await TestModel.GreedyChat(small, messages, 12);
        var expectedLarge = await TestModel.GreedyChat(large, messages, 12);
        Assert.NotEqual(expectedSmall.Text, expectedLarge.Text);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 };
        foreach (var (threshold, expected, routed, id) in new[] { (0.0, expectedSmall.Text, "small", SmallId), (1.0, expectedLarge.Text, "large", LargeId) })
        {
            await using var server = await Start(Build(threshold));
            var result = await Client(server).CompleteChatAsync([new UserChatMessage("Hello there")], options);
            Assert.Equal(expected, result.Value.Content.Count == 0 ? "" : result.Value.Content[0].Text);
            Assert.Equal(id, result.Value.Model);
            var routing = Routing(result);
            Assert.Equal(routed, routing.GetProperty("routed_to").GetString());
            Assert.Equal(id, routing.GetProperty("model").GetString());
            Assert.Equal(threshold, routing.GetProperty("threshold").GetDouble());
            Assert.InRange(routing.GetProperty("confidence").GetDouble(), double.Epsilon, 1);
            // Naming a model directly skips the policy and gives the same reply as the cascade routed to it.
            var named = await Client(server, id).CompleteChatAsync([new UserChatMessage("Hello there")], options);
            Assert.Equal(expected, named.Value.Content[0].Text);
            Assert.Equal("named", Routing(named).GetProperty("reason").GetString());
        }
    }

    [Fact]
    public async Task PerRequestThresholdRoutesAroundTheSmallModelsConfidence()
    {
        await using var server = await Start(Build(0.5));
        const string prompt = "Call me Ishmael. Some years ago";
        double confidence = SmallConfidence(prompt);
        Assert.InRange(confidence, 1e-6, 0.999);
        string smallText = GreedyCompletion(small, prompt, 10), largeText = GreedyCompletion(large, prompt, 10);
        Assert.NotEqual(smallText, largeText);
        // Just below the confidence the small model answers; just above, the large; the extremes are fixed.
        foreach (var (t, routed, text) in new[] { (confidence * 0.999, "small", smallText), (Math.Min(1, confidence * 1.001), "large", largeText), (0.0, "small", smallText), (1.0, "large", largeText) })
        {
            string body = $$$"""{"model":"{{{CascadeId}}}","prompt":"{{{prompt}}}","max_tokens":10,"temperature":0,"tessera":{"threshold":{{{t.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}}}}}""";
            var (status, json, response) = await Post(server, "v1/completions", body);
            Assert.Equal(200, status);
            Assert.Equal(text, json.GetProperty("choices")[0].GetProperty("text").GetString());
            var routing = json.GetProperty("tessera");
            Assert.Equal(routed, routing.GetProperty("routed_to").GetString());
            Assert.Equal(confidence, routing.GetProperty("confidence").GetDouble(), 1e-5);
            Assert.Equal(routed, response.Headers.GetValues("x-tessera-routed-to").Single());
        }
    }

    [Fact]
    public async Task StreamingRoutesBeforeTheFirstTokenAndReportsInTheUsageChunk()
    {
        await using var server = await Start(Build(1));
        string expected = GreedyCompletion(large, "Hello", 8);
        var (status, _, response) = await Post(server, "v1/completions",
            $$$"""{"model":"{{{CascadeId}}}","prompt":"Hello","max_tokens":8,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}""");
        Assert.Equal(200, status);
        Assert.Equal("large", response.Headers.GetValues("x-tessera-routed-to").Single());
        string sse = await response.Content.ReadAsStringAsync();
        var text = new StringBuilder();
        JsonElement? usageChunk = null;
        foreach (var line in sse.Split('\n'))
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal)) continue;
            var chunk = JsonDocument.Parse(line[6..]).RootElement.Clone();
            foreach (var c in chunk.GetProperty("choices").EnumerateArray()) text.Append(c.GetProperty("text").GetString());
            if (chunk.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) usageChunk = chunk;
        }
        Assert.Equal(expected, text.ToString());
        Assert.NotNull(usageChunk);
        Assert.Equal("large", usageChunk.Value.GetProperty("tessera").GetProperty("routed_to").GetString());
    }

    [Fact]
    public async Task MetricsCountDecisionsByModel()
    {
        await using var server = await Start(Build(0.5));
        string Body(double t) => $$$"""{"model":"{{{CascadeId}}}","prompt":"abc","max_tokens":2,"temperature":0,"tessera":{"threshold":{{{t}}}}}""";
        for (int i = 0; i < 2; i++) Assert.Equal(200, (await Post(server, "v1/completions", Body(0))).Status);
        for (int i = 0; i < 3; i++) Assert.Equal(200, (await Post(server, "v1/completions", Body(1))).Status);
        Assert.Equal(200, (await Post(server, "v1/completions", $$"""{"model":"{{LargeId}}","prompt":"abc","max_tokens":2}""")).Status);
        using var http = new HttpClient();
        string text = "";
        // The exporter caches a scrape briefly; poll until the counts appear.
        for (int attempt = 0; attempt < 50; attempt++)
        {
            text = await http.GetStringAsync(new Uri(server.Address, "metrics"));
            if (text.Contains("tessera_cascade_requests") && text.Contains("reason=\"named\"")) break;
            await Task.Delay(200);
        }
        Assert.Matches(@"tessera_cascade_requests\S*\{(?=[^}]*reason=""confidence"")(?=[^}]*routed_to=""small"")[^}]*\} 2\b", text);
        Assert.Matches(@"tessera_cascade_requests\S*\{(?=[^}]*reason=""confidence"")(?=[^}]*routed_to=""large"")[^}]*\} 3\b", text);
        Assert.Matches(@"tessera_cascade_requests\S*\{(?=[^}]*reason=""named"")(?=[^}]*routed_to=""large"")[^}]*\} 1\b", text);
        Assert.Contains("tessera_cascade_confidence", text);
    }

    [Theory]
    [InlineData("""{"threshold":1.5}""", "tessera.threshold")]
    [InlineData("""{"threshold":-0.1}""", "tessera.threshold")]
    [InlineData("""{"threshold":"high"}""", "tessera.threshold")]
    [InlineData("""{"dial":0.3}""", "tessera.dial")]
    [InlineData("3", "tessera")]
    public async Task BadPerRequestFieldsAre400WithOpenAiErrorJson(string extension, string param)
    {
        await using var server = await Start(Build(0.5));
        foreach (var (path, prompt) in new[] { ("v1/completions", "\"prompt\":\"abc\""), ("v1/chat/completions", "\"messages\":[{\"role\":\"user\",\"content\":\"abc\"}]") })
        {
            var (status, json, _) = await Post(server, path, $$"""{"model":"{{CascadeId}}",{{prompt}},"max_tokens":2,"tessera":{{extension}}}""");
            Assert.Equal(400, status);
            Assert.Equal(param, json.GetProperty("error").GetProperty("param").GetString());
            Assert.False(string.IsNullOrEmpty(json.GetProperty("error").GetProperty("message").GetString()));
        }
        var (notFound, body, _) = await Post(server, "v1/completions", """{"model":"other","prompt":"abc"}""");
        Assert.Equal(404, notFound);
        Assert.Contains(SmallId, body.GetProperty("error").GetProperty("message").GetString());
        // The server still answers after the bad requests.
        Assert.Equal(200, (await Post(server, "v1/completions", $$"""{"model":"{{CascadeId}}","prompt":"abc","max_tokens":2}""")).Status);
    }

    [Fact]
    public void BadConfigurationIsRefusedWithAClearMessage()
    {
        var s = new ServedModel(SmallId, small, TestModel.Tokenizer);
        var l = new ServedModel(LargeId, large, TestModel.Tokenizer);
        Assert.Contains("small model is missing", Assert.Throws<ArgumentException>(() => new Cascade(CascadeId, null, l, 0.5)).Message);
        Assert.Contains("large model is missing", Assert.Throws<ArgumentException>(() => new Cascade(CascadeId, s, null, 0.5)).Message);
        foreach (var t in new[] { -0.01, 1.01, double.NaN })
            Assert.Contains("[0, 1]", Assert.Throws<ArgumentException>(() => new Cascade(CascadeId, s, l, t)).Message);
        Assert.Contains("three different ids", Assert.Throws<ArgumentException>(() => new Cascade(SmallId, s, l, 0.5)).Message);
        var bpe = BpeTrainer.Train(["the cat sat on the mat", "a dog and a cat"], new BpeTrainerOptions(270), out _);
        using var wide = new Transformer(TestModel.Config() with { VocabSize = 300 }, seed: 13);
        var other = new ServedModel(LargeId, new ReferenceEngine(wide), bpe);
        Assert.Contains("tokenizer", Assert.Throws<ArgumentException>(() => new Cascade(CascadeId, s, other, 0.5)).Message);
    }
}
