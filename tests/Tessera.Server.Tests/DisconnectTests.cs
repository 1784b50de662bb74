using System.Diagnostics;
using System.Text;
using Tessera.Inference;
using Tessera.Model;

namespace Tessera.Server.Tests;

/// <summary>A client that goes away mid-stream cancels its engine sequence; the server carries on.</summary>
public class DisconnectTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AbortingARequestCancelsTheEngineSequence(bool stream)
    {
        using var model = new Transformer(TestModel.Config(context: 256), seed: 3);
        // 20 ms per token: 200 tokens would take 4 s, far longer than the test waits before aborting.
        var engine = new CountingEngine(new ReferenceEngine(model), TimeSpan.FromMilliseconds(20));
        var served = new ServedModel("slow", engine, TestModel.Tokenizer);
        await using var server = await TesseraServer.StartAsync(served, new ServerOptions { Port = 0 });
        using var http = new HttpClient();

        // The stop ids are banned (logit_bias −100): a sampled end-of-text must not finish the
        // sequence before the server notices the client has gone.
        string ban = string.Join(",", served.CompletionStopIds.Select(id => $"\"{id}\":-100"));
        string body = $$"""{"model":"slow","prompt":"Count to a thousand:","max_tokens":200,"temperature":1,"logit_bias":{{{ban}}},"stream":{{(stream ? "true" : "false")}}}""";
        using (var abort = new CancellationTokenSource())
        {
            var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Address, "v1/completions")) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            if (stream)
            {
                var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, abort.Token);
                var reader = new StreamReader(await response.Content.ReadAsStreamAsync(abort.Token));
                string? first = await reader.ReadLineAsync(abort.Token);
                Assert.StartsWith("data: ", first);
                abort.Cancel();
                response.Dispose();   // closes the connection
            }
            else
            {
                // No response comes before the end, so give up once generation is under way.
                var pending = http.SendAsync(request, abort.Token);
                var wait = Stopwatch.StartNew();
                while (engine.Tokens < 3 && wait.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
                abort.Cancel();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
            }
            Assert.Equal(1, engine.Started);
        }

        var sw = Stopwatch.StartNew();
        while (engine.Cancelled == 0 && sw.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
        Assert.True(engine.Cancelled == 1, $"cancelled {engine.Cancelled}, completed {engine.Completed}, tokens {engine.Tokens}");
        Assert.Equal(0, engine.Completed);
        Assert.True(engine.Tokens < 200, $"the sequence should stop early, it produced {engine.Tokens} tokens");

        // The next request is served normally.
        using var ok = await http.PostAsync(new Uri(server.Address, "v1/completions"),
            new StringContent("""{"model":"slow","prompt":"hi","max_tokens":2}""", Encoding.UTF8, "application/json"));
        Assert.Equal(200, (int)ok.StatusCode);
        Assert.Equal(1, engine.Completed);
    }
}
