using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Tessera.Server;

/// <summary>Where and how the server listens.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind; loopback by default so nothing outside the machine can reach it unless asked.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 picks a free one (see <see cref="TesseraServer.Address"/>).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>Log each request and server warnings to the console.</summary>
    public bool Log { get; init; }
    /// <summary>An ∞-gram store to serve beside the model (<see cref="NGramEndpoint"/>); null = none.</summary>
    public Data.NGram.NGramStore? NGram { get; init; }
}

/// <summary>
/// The OpenAI-compatible HTTP server: Kestrel with a handful of endpoints over one
/// <see cref="ServedModel"/>. Every request is its own engine sequence, so concurrent requests
/// share the engine (a batching engine interleaves them); a client that disconnects cancels its
/// sequence through <see cref="HttpContext.RequestAborted"/>. Every rejection is OpenAI error JSON.
/// </summary>
public sealed class TesseraServer : IAsyncDisposable
{
    readonly WebApplication app;

    TesseraServer(WebApplication app, Uri address)
    {
        this.app = app;
        Address = address;
    }

    /// <summary>The base address actually bound, e.g. <c>http://127.0.0.1:8000/</c>.</summary>
    public Uri Address { get; }

    /// <summary>Builds the app and starts listening.</summary>
    public static async Task<TesseraServer> StartAsync(ServedModel model, ServerOptions options, CancellationToken cancel = default)
    {
        if (options.Port is < 0 or > 65535) throw new ArgumentException($"port must be in [0, 65535], got {options.Port}");
        var bind = options.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(options.Host, out var ip) ? ip
            : throw new ArgumentException($"host must be an IP address or localhost, got '{options.Host}'");

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(TesseraServer).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        if (options.Log) builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }).SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(bind, options.Port);
            k.Limits.MaxRequestBodySize = JsonRequest.MaxBodyBytes * 2L;   // JsonRequest enforces the real limit with a JSON error
            k.AddServerHeader = false;
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(5));

        var app = builder.Build();
        var stopping = app.Lifetime.ApplicationStopping;
        app.UseStatusCodePages(async sc =>
        {
            var r = sc.HttpContext.Response;
            string message = r.StatusCode switch
            {
                404 => $"Unknown path {sc.HttpContext.Request.Path}. This server offers GET /v1/models, POST /v1/completions, POST /v1/chat/completions, POST /v1/embeddings, GET /health and the chat page at /.",
                405 => $"{sc.HttpContext.Request.Method} is not allowed on {sc.HttpContext.Request.Path}.",
                _ => $"The request failed with HTTP {r.StatusCode}.",
            };
            await new ApiException(r.StatusCode, message, code: r.StatusCode == 404 ? "not_found" : null).WriteAsync(r);
        });

        app.MapGet("/", ctx => ChatPage.SendAsync(ctx.Response));
        app.MapGet("/health", ctx => Run(ctx, stopping, c => JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w =>
        {
            w.WriteStartObject();
            w.WriteString("status", "ok");
            w.WriteString("model", model.Id);
            w.WriteEndObject();
        }), c)));
        app.MapGet("/v1/models", ctx => Run(ctx, stopping, c => JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            WriteModel(w, model);
            w.WriteEndArray();
            w.WriteEndObject();
        }), c)));
        app.MapGet("/v1/models/{id}", (HttpContext ctx, string id) => Run(ctx, stopping, c => id == model.Id
            ? JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w => WriteModel(w, model)), c)
            : throw new ApiException(404, $"The model '{id}' does not exist; this server serves '{model.Id}'.", param: "model", code: "model_not_found")));
        app.MapPost("/v1/completions", ctx => Run(ctx, stopping, c => CompletionsEndpoint.HandleAsync(ctx, model, c)));
        app.MapPost("/v1/chat/completions", ctx => Run(ctx, stopping, c => ChatCompletionsEndpoint.HandleAsync(ctx, model, c)));
        app.MapPost("/v1/embeddings", ctx => Run(ctx, stopping, c => EmbeddingsEndpoint.HandleAsync(ctx, model, c)));
        if (options.NGram is { } ngram) NGramEndpoint.Map(app, ngram);

        await app.StartAsync(cancel);
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("Kestrel started without reporting its address");
        return new TesseraServer(app, new Uri(bound.EndsWith('/') ? bound : bound + "/"));
    }

    static void WriteModel(System.Text.Json.Utf8JsonWriter w, ServedModel model)
    {
        w.WriteStartObject();
        w.WriteString("id", model.Id);
        w.WriteString("object", "model");
        w.WriteNumber("created", model.Created);
        w.WriteString("owned_by", "tessera");
        w.WriteNumber("context_length", model.ContextLength);
        w.WriteEndObject();
    }

    /// <summary>
    /// Runs a handler with a token that fires when the client goes away or the server stops, and
    /// turns failures into OpenAI error JSON: the handler's own <see cref="ApiException"/>s as they
    /// are, the engine's <see cref="ArgumentException"/>s as 400, anything else as a 500.
    /// </summary>
    static async Task Run(HttpContext ctx, CancellationToken stopping, Func<CancellationToken, Task> handler)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
        var response = ctx.Response;
        try
        {
            await handler(cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            // The client left (or the server is stopping): there is nobody to answer.
        }
        catch (IOException) when (ctx.RequestAborted.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            var api = e switch
            {
                ApiException a => a,
                BadHttpRequestException b => new ApiException(b.StatusCode, b.Message, code: "bad_request"),
                ArgumentException a => new ApiException(400, a.Message),
                _ => new ApiException(500, $"The server failed: {e.Message}", type: "server_error", code: "internal_error"),
            };
            if (api.Status >= 500) ctx.RequestServices.GetService<ILoggerFactory>()?.CreateLogger<TesseraServer>().LogError(e, "request failed");
            if (!response.HasStarted) await api.WriteAsync(response);
            else if (response.ContentType?.StartsWith("text/event-stream", StringComparison.Ordinal) == true)
            {
                try { await new SseStream(response, cts.Token).ErrorAsync(api); } catch (Exception) when (cts.IsCancellationRequested) { }
            }
        }
    }

    /// <summary>Completes when the server stops (Ctrl+C in a console host, or <see cref="DisposeAsync"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancel = default) => app.WaitForShutdownAsync(cancel);

    /// <summary>Stops listening, cancels running generations and releases the port.</summary>
    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
