using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using OpenTelemetry.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Tessera.Server;

/// <summary>
/// The OpenAI-compatible HTTP server: Kestrel with a handful of endpoints over one
/// <see cref="ServedModel"/>. Every request is its own engine sequence, so concurrent requests
/// share the engine (a batching engine interleaves them); a client that disconnects cancels its
/// sequence through <see cref="HttpContext.RequestAborted"/>. Every rejection is OpenAI error JSON.
/// </summary>
public sealed class TesseraServer : IAsyncDisposable
{
    readonly WebApplication app;

    readonly ServerMetrics metrics;

    CascadeMetrics? cascadeMetrics;
    ModuleMetrics? moduleMetrics;
    Timer? trimTimer;

    TesseraServer(WebApplication app, Uri address, AdmissionGate gate, ServerMetrics metrics)
    {
        this.app = app;
        Address = address;
        Gate = gate;
        this.metrics = metrics;
    }

    /// <summary>The admission gate (its <see cref="AdmissionGate.Inside"/> is the queue depth).</summary>
    public AdmissionGate Gate { get; }

    /// <summary>The base address actually bound, e.g. <c>http://127.0.0.1:8000/</c>.</summary>
    public Uri Address { get; }

    /// <summary>Builds the app and starts listening.</summary>
    public static Task<TesseraServer> StartAsync(ServedModel model, ServerOptions options, CancellationToken cancel = default)
        => StartAsync(model, null, options, cancel);

    /// <summary>Builds the app over a small/large <see cref="Cascade"/> and starts listening (see docs/cascade.md).</summary>
    public static Task<TesseraServer> StartAsync(Cascade cascade, ServerOptions options, CancellationToken cancel = default)
        => StartAsync(cascade.Front, cascade, options, cancel);

    /// <summary>Builds the app over a base with modules attached (<see cref="ModuleServing"/>, docs/modules.md) and starts listening.</summary>
    public static Task<TesseraServer> StartAsync(ModuleServing modules, ServerOptions options, CancellationToken cancel = default)
        => StartAsync(modules.Base, null, options, cancel, modules);

    static async Task<TesseraServer> StartAsync(ServedModel model, Cascade? cascade, ServerOptions options, CancellationToken cancel, ModuleServing? modules = null)
    {
        var bind = options.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(options.Host, out var ip) ? ip
            : throw new ArgumentException($"host must be an IP address or localhost, got '{options.Host}'");
        options.Validate(IPAddress.IsLoopback(bind));

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(TesseraServer).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        if (options.Log) builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }).SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(bind, options.Port);
            k.AddServerHeader = false;
            // Limits set deliberately rather than inherited: each bounds what one client can hold.
            // JsonRequest answers 413 with JSON at MaxBodyBytes; Kestrel's own hard stop sits above it so
            // that it can drain an oversized body and the client reads the 413 instead of a broken pipe.
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes * 2;
            k.Limits.MaxConcurrentConnections = options.MaxConnections;
            k.Limits.MaxConcurrentUpgradedConnections = 0;
            k.Limits.RequestHeadersTimeout = options.HeadersTimeout;      // slow-header (slowloris) clients
            k.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(60);
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            k.Limits.MaxRequestHeaderCount = 100;
            k.Limits.MaxRequestLineSize = 8 * 1024;
            k.Limits.MinRequestBodyDataRate = new MinDataRate(options.MinBodyBytesPerSecond, TimeSpan.FromSeconds(5));
            // Streaming replies go at the model's pace; a client that stops reading is cut off.
            k.Limits.MinResponseDataRate = new MinDataRate(1, TimeSpan.FromSeconds(30));
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(5));
        if (options.CorsOrigins.Count > 0)
            builder.Services.AddCors(c => c.AddDefaultPolicy(p => p.WithOrigins([.. options.CorsOrigins]).WithMethods("GET", "POST").WithHeaders("Authorization", "Content-Type")));
        string instanceMeter = ServerMetrics.NewInstanceMeterName();
        builder.Services.AddOpenTelemetry().WithMetrics(m => m
            .AddMeter(ServerMetrics.MeterName, instanceMeter, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel")
            .AddPrometheusExporter());

        var app = builder.Build();
        var stopping = app.Lifetime.ApplicationStopping;
        var gate = new AdmissionGate(options.MaxQueue);
        var metrics = new ServerMetrics(gate, model.Engine, instanceMeter);
        Timer? trimTimer = options.NativeHeapTrimInterval > TimeSpan.Zero && NativeHeap.IsAvailable
            ? new Timer(_ => NativeHeap.Trim(), null, options.NativeHeapTrimInterval, options.NativeHeapTrimInterval) : null;
        var cascadeMetrics = cascade is null ? null : new CascadeMetrics(instanceMeter);
        var moduleMetrics = modules is null ? null : new ModuleMetrics(instanceMeter, modules);
        var key = options.ApiKey is { } k ? new ApiKeyCheck(k) : null;
        var limits = new RequestLimits(options.MaxBodyBytes, options.MaxTokensPerRequest);

        if (options.CorsOrigins.Count > 0) app.UseCors();
        app.Use(async (ctx, next) =>
        {
            // Authentication runs before routing, so an unauthenticated client learns nothing, not even which paths exist.
            if (key is not null && !ApiKeyCheck.IsOpen(ctx.Request) && !HttpMethods.IsOptions(ctx.Request.Method) && !key.Allows(ctx.Request))
            {
                metrics.Error(401);
                ctx.Response.Headers.WWWAuthenticate = "Bearer";
                await ApiKeyCheck.Unauthorized(ctx.Request).WriteAsync(ctx.Response);
                return;
            }
            ctx.Features.Set(limits);
            await next(ctx);
            if (ctx.Response.StatusCode >= 400) metrics.Error(ctx.Response.StatusCode);
        });
        app.UseStatusCodePages(async sc =>
        {
            var r = sc.HttpContext.Response;
            string message = r.StatusCode switch
            {
                404 => $"Unknown path {sc.HttpContext.Request.Path}. This server offers GET /v1/models, POST /v1/completions, POST /v1/chat/completions, POST /v1/embeddings, GET /health, GET /metrics and the chat page at /.",
                405 => $"{sc.HttpContext.Request.Method} is not allowed on {sc.HttpContext.Request.Path}.",
                _ => $"The request failed with HTTP {r.StatusCode}.",
            };
            await new ApiException(r.StatusCode, message, code: r.StatusCode == 404 ? "not_found" : null).WriteAsync(r);
        });

        app.MapGet("/", ctx => ChatPage.SendAsync(ctx.Response));
        app.MapPrometheusScrapingEndpoint("/metrics");
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
            if (cascade is not null) { WriteModel(w, cascade.Small); WriteModel(w, cascade.Large); }
            if (modules is not null) foreach (var m in modules.Models.Skip(1)) WriteModel(w, m);
            w.WriteEndArray();
            w.WriteEndObject();
        }), c)));
        app.MapGet("/v1/models/{id}", (HttpContext ctx, string id) => Run(ctx, stopping, c => id == model.Id
            ? JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w => WriteModel(w, model)), c)
            : throw new ApiException(404, $"The model '{id}' does not exist; this server serves '{model.Id}'.", param: "model", code: "model_not_found")));
        app.MapPost("/v1/completions", ctx => Admit(ctx, gate, metrics, stopping, c => modules is not null ? modules.HandleAsync(ctx, Cascade.Endpoint.Completions, moduleMetrics!, c) : cascade is null ? CompletionsEndpoint.HandleAsync(ctx, model, c) : cascade.HandleAsync(ctx, Cascade.Endpoint.Completions, cascadeMetrics!, c)));
        app.MapPost("/v1/chat/completions", ctx => Admit(ctx, gate, metrics, stopping, c => modules is not null ? modules.HandleAsync(ctx, Cascade.Endpoint.ChatCompletions, moduleMetrics!, c) : cascade is null ? ChatCompletionsEndpoint.HandleAsync(ctx, model, c) : cascade.HandleAsync(ctx, Cascade.Endpoint.ChatCompletions, cascadeMetrics!, c)));
        app.MapPost("/v1/embeddings", ctx => Admit(ctx, gate, metrics, stopping, c => EmbeddingsEndpoint.HandleAsync(ctx, model, c)));
        if (options.NGram is { } ngram) NGramEndpoint.Map(app, ngram);

        await app.StartAsync(cancel);
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("Kestrel started without reporting its address");
        return new TesseraServer(app, new Uri(bound.EndsWith('/') ? bound : bound + "/"), gate, metrics) { cascadeMetrics = cascadeMetrics, moduleMetrics = moduleMetrics, trimTimer = trimTimer };
    }

    /// <summary>Runs a model request if the admission gate lets it in, else answers 429 with Retry-After.</summary>
    static async Task Admit(HttpContext ctx, AdmissionGate gate, ServerMetrics metrics, CancellationToken stopping, Func<CancellationToken, Task> handler)
    {
        if (!gate.TryEnter())
        {
            metrics.Rejected();
            ctx.Response.Headers.RetryAfter = AdmissionGate.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await gate.Full().WriteAsync(ctx.Response);
            return;
        }
        try { await Run(ctx, stopping, handler); }
        finally { gate.Leave(); }
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
            var api = ApiException.From(e);
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
        if (trimTimer is not null) await trimTimer.DisposeAsync();
        metrics.Dispose();
        cascadeMetrics?.Dispose();
        moduleMetrics?.Dispose();
    }
}
