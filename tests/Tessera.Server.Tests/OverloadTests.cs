using System.Net;
using System.Net.Sockets;
using System.Text;
using Tessera.Inference;
using Tessera.Model;

namespace Tessera.Server.Tests;

/// <summary>The server's deliberate limits: the admission queue (429 + Retry-After), body and token caps, slow clients, CORS.</summary>
public class OverloadTests
{
    static async Task<(TesseraServer Server, Transformer Model, CountingEngine Engine)> Start(ServerOptions options, TimeSpan perToken = default)
    {
        var model = new Transformer(TestModel.Config(), seed: 6);
        var engine = new CountingEngine(new ReferenceEngine(model), perToken);
        var server = await TesseraServer.StartAsync(new ServedModel("m", engine, TestModel.Tokenizer), options with { Port = 0 });
        return (server, model, engine);
    }

    [Fact]
    public async Task WithTheQueueCapAt8SixtyFourClientsGet429sAndEveryAdmittedStreamCompletes()
    {
        var (server, model, engine) = await Start(new ServerOptions { MaxQueue = 8 }, perToken: TimeSpan.FromMilliseconds(15));
        await using var _ = server;
        using var __ = model;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        int peak = 0;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested) { peak = Math.Max(peak, server.Gate.Inside); await Task.Delay(2); }
        });
        var results = await Task.WhenAll(Enumerable.Range(0, 64).Select(async i =>
        {
            using var r = await http.PostAsync(new Uri(server.Address, "v1/completions"), new StringContent(
                $$"""{"model":"m","prompt":"client {{i}}","max_tokens":12,"temperature":0,"stream":true}""", Encoding.UTF8, "application/json"));
            string body = await r.Content.ReadAsStringAsync();
            return ((int)r.StatusCode, r.Headers.RetryAfter?.Delta, body);
        }));
        sampling.Cancel();
        await sampler;

        int admitted = results.Count(r => r.Item1 == 200), refused = results.Count(r => r.Item1 == 429);
        Assert.Equal(64, admitted + refused);
        Assert.True(refused > 0, "64 simultaneous slow streams against a cap of 8 must see 429s");
        Assert.True(admitted >= 8, $"at least the first 8 must be admitted, got {admitted}");
        Assert.All(results.Where(r => r.Item1 == 429), r =>
        {
            Assert.Equal(TimeSpan.FromSeconds(AdmissionGate.RetryAfterSeconds), r.Item2);
            Assert.Contains("server_busy", r.Item3);
        });
        Assert.All(results.Where(r => r.Item1 == 200), r => Assert.EndsWith("data: [DONE]\n\n", r.Item3));
        Assert.InRange(peak, 1, 8);
        Assert.Equal(0, server.Gate.Inside);
        Assert.Equal(admitted, engine.Completed);
    }

    [Fact]
    public async Task TheTokenCapAndBodyLimitAreEnforcedWithJsonErrors()
    {
        var (server, model, _) = await Start(new ServerOptions { MaxTokensPerRequest = 5, MaxBodyBytes = 4096 });
        await using var _s = server;
        using var _m = model;
        using var http = new HttpClient();
        using var over = await http.PostAsync(new Uri(server.Address, "v1/completions"), new StringContent("""{"model":"m","prompt":"a","max_tokens":6}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, over.StatusCode);
        Assert.Contains("limit of 5", await over.Content.ReadAsStringAsync());
        // Without max_tokens the default budget (the rest of the context, for chat) is capped too.
        using var chat = await http.PostAsync(new Uri(server.Address, "v1/chat/completions"), new StringContent("""{"model":"m","messages":[{"role":"user","content":"a"}],"logit_bias":{"1":-100,"2":-100,"3":-100}}""", Encoding.UTF8, "application/json"));
        string text = await chat.Content.ReadAsStringAsync();
        Assert.True(chat.IsSuccessStatusCode, text);
        Assert.InRange(System.Text.Json.JsonDocument.Parse(text).RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 5);

        using var big = await http.PostAsync(new Uri(server.Address, "v1/completions"), new StringContent("{\"model\":\"m\",\"prompt\":\"" + new string('a', 5000) + "\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        Assert.Contains("request_too_large", await big.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ASlowHeaderClientIsCutOff()
    {
        var (server, model, _) = await Start(new ServerOptions { HeadersTimeout = TimeSpan.FromSeconds(1) });
        await using var _s = server;
        using var _m = model;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Address.Host, server.Address.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /health HTTP/1.1\r\nHost: x\r\n"));   // headers never finished
        var started = System.Diagnostics.Stopwatch.StartNew();
        var buffer = new byte[4096];
        int n;
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try { while ((n = await stream.ReadAsync(buffer, limit.Token)) > 0) { } }
        catch (IOException) { }
        Assert.False(limit.IsCancellationRequested, "the server kept a connection with unfinished headers open for 20 s");
        Assert.InRange(started.Elapsed.TotalSeconds, 0.5, 15);
    }

    [Fact]
    public async Task CorsIsOffByDefaultAndOnlyForListedOrigins()
    {
        async Task<HttpResponseMessage> Preflight(Uri address, string origin)
        {
            using var http = new HttpClient();
            var req = new HttpRequestMessage(HttpMethod.Options, new Uri(address, "v1/chat/completions"));
            req.Headers.Add("Origin", origin);
            req.Headers.Add("Access-Control-Request-Method", "POST");
            req.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
            return await http.SendAsync(req);
        }

        var (plain, m1, _) = await Start(new ServerOptions());
        await using (plain)
        using (m1)
        {
            using var r = await Preflight(plain.Address, "https://evil.example");
            Assert.False(r.Headers.Contains("Access-Control-Allow-Origin"), "CORS must be off unless origins are listed");
        }
        var (open, m2, _) = await Start(new ServerOptions { CorsOrigins = ["https://app.example"] });
        await using (open)
        using (m2)
        {
            using var allowed = await Preflight(open.Address, "https://app.example");
            Assert.Equal("https://app.example", allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());
            using var other = await Preflight(open.Address, "https://evil.example");
            Assert.False(other.Headers.Contains("Access-Control-Allow-Origin"));
        }
    }

    [Fact]
    public async Task MetricsArePrometheusTextWithRequestsTokensQueueAndMemory()
    {
        var (server, model, _) = await Start(new ServerOptions { MaxQueue = 3 });
        await using var _s = server;
        using var _m = model;
        using var http = new HttpClient();
        for (int i = 0; i < 3; i++)
            (await http.PostAsync(new Uri(server.Address, "v1/completions"), new StringContent("""{"model":"m","prompt":"a","max_tokens":4,"temperature":0}""", Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
        using var bad = await http.PostAsync(new Uri(server.Address, "v1/completions"), new StringContent("{", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        // The exporter caches a scrape briefly; poll until the counts from above appear.
        string text = "";
        for (int attempt = 0; attempt < 50; attempt++)
        {
            using var r = await http.GetAsync(new Uri(server.Address, "metrics"));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.StartsWith("text/plain", r.Content.Headers.ContentType!.MediaType);
            text = await r.Content.ReadAsStringAsync();
            if (text.Contains("http_response_status_code=\"400\"") && text.Contains("tessera_server_tokens")) break;
            await Task.Delay(200);
        }
        foreach (var name in (string[])["tessera_server_tokens", "tessera_server_errors", "tessera_server_queue_depth", "tessera_server_queue_capacity",
                     "tessera_process_resident_memory", "tessera_process_native_memory", "http_server_request_duration_seconds_bucket", "tessera_server_time_to_first_token"])
            Assert.True(text.Contains(name), $"/metrics lacks {name}:\n{text[..Math.Min(3000, text.Length)]}");
        if (NativeHeap.IsAvailable)
            foreach (var name in (string[])["tessera_process_malloc_in_use", "tessera_process_malloc_free"])
                Assert.True(text.Contains(name), $"/metrics lacks {name} on glibc:\n{text[..Math.Min(3000, text.Length)]}");
        // The managed heap's own counters: something was allocated, and every generation is reported.
        Assert.Matches(@"tessera_process_managed_allocated_bytes_total\S* [1-9]", text);
        foreach (var generation in (string[])["0", "1", "2"])
            Assert.Matches($@"tessera_process_gc_collections_total\{{[^}}]*generation=""{generation}""", text);
        Assert.Matches(@"tessera_server_queue_capacity\S*\{[^}]*\} 3", text);
        Assert.Contains("http_response_status_code=\"400\"", text);
    }
}
