using System.Text;
using Tessera.Inference;
using Tessera.Model;

namespace Tessera.Server.Tests;

/// <summary>An engine that fails mid-generation: the error reaches the client in OpenAI's shape and the server carries on.</summary>
public class EngineFailureTests
{
    sealed class FailingEngine(IGenerationEngine inner, int failAfter) : IGenerationEngine
    {
        public ModelConfig Config => inner.Config;
        public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs) => inner.Score(prompt, topLogprobs);
        public float[] Embed(IReadOnlyList<int> ids) => throw new InvalidOperationException("embedding unit on fire");

        public async IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancel = default)
        {
            int n = 0;
            await foreach (var e in inner.GenerateAsync(request with { StopIds = null }, cancel))
            {
                if (n++ == failAfter) throw new InvalidOperationException("engine fell over");
                yield return e;
            }
        }
    }

    [Fact]
    public async Task FailuresBecomeServerErrorsBeforeAndDuringAStream()
    {
        using var model = new Transformer(TestModel.Config(), seed: 4);
        await using var server = await TesseraServer.StartAsync(new ServedModel("m", new FailingEngine(new ReferenceEngine(model), 3), TestModel.Tokenizer), new ServerOptions { Port = 0 });
        using var http = new HttpClient();
        async Task<(int, string)> Post(string path, string body)
        {
            using var r = await http.PostAsync(new Uri(server.Address, path), new StringContent(body, Encoding.UTF8, "application/json"));
            return ((int)r.StatusCode, await r.Content.ReadAsStringAsync());
        }

        var (status, text) = await Post("v1/embeddings", """{"model":"m","input":"x"}""");
        Assert.Equal(500, status);
        Assert.Contains("\"type\":\"server_error\"", text);
        Assert.Contains("embedding unit on fire", text);

        // Streaming: up to three token chunks go out (fewer if a token ends mid-character), then the
        // failure arrives as a final error event, since the 200 status has already been sent.
        (status, text) = await Post("v1/completions", """{"model":"m","prompt":"a","max_tokens":10,"temperature":0,"stream":true}""");
        Assert.Equal(200, status);
        var events = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.InRange(events.Length, 1, 4);
        Assert.All(events[..^1], e => Assert.Contains("\"object\":\"text_completion\"", e));
        Assert.DoesNotContain("[DONE]", text);
        Assert.StartsWith("data: {\"error\":", events[^1]);
        Assert.Contains("engine fell over", events[^1]);

        (status, text) = await Post("v1/completions", """{"model":"m","prompt":"a","max_tokens":2}""");
        Assert.Equal(200, status);
        Assert.Contains("text_completion", text);
    }
}
