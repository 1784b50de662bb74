using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tessera.Data.NGram;

namespace Tessera.Server;

/// <summary>
/// The ∞-gram store over HTTP (<c>tessera serve --ngram DIR</c>). Two routes:
/// <list type="bullet">
/// <item><c>POST /v1/ngram/query</c> — one query: <c>{"query": "count" | "next" | "infinity_next" |
/// "probability" | "documents" | "stupid_backoff", "ids": [...], "token": id, "max_hits": n}</c>.</item>
/// <item><c>POST /v1/ngram/batch</c> — every position of whole sequences in one pass:
/// <c>{"query": "infinity" | "stupid_backoff", "sequences": [[...], ...]}</c>; the answer holds, per
/// sequence, columns <c>suffix_length</c>, <c>context_count</c>, <c>target_count</c>,
/// <c>probability</c> (or <c>score</c>) with one entry per position.</item>
/// </list>
/// Errors are OpenAI-style JSON with status 400.
/// </summary>
public static class NGramEndpoint
{
    /// <summary>Adds the routes to <paramref name="app"/>.</summary>
    public static void Map(IEndpointRouteBuilder app, NGramStore store)
    {
        app.MapPost("/v1/ngram/query", ctx => Handle(ctx, store, Query));
        app.MapPost("/v1/ngram/batch", ctx => Handle(ctx, store, Batch));
    }

    /// <summary>
    /// Serves only the n-gram routes (and <c>/health</c>), for <c>tessera serve --ngram DIR</c>
    /// without a model and for the HTTP benchmark. Dispose the returned app to stop it.
    /// </summary>
    public static async Task<(WebApplication App, Uri Address)> StartAsync(NGramStore store, ServerOptions options, CancellationToken cancel = default)
    {
        var bind = options.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(options.Host, out var ip) ? ip : throw new ArgumentException($"host must be an IP address or localhost, got '{options.Host}'");
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(NGramEndpoint).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => { k.Listen(bind, options.Port); k.AddServerHeader = false; k.Limits.MaxRequestBodySize = JsonRequest.MaxBodyBytes * 2L; });
        var app = builder.Build();
        app.MapGet("/health", ctx => JsonOutput.SendAsync(ctx.Response, JsonOutput.Build(w =>
        {
            w.WriteStartObject();
            w.WriteString("status", "ok");
            w.WriteString("ngram_index", store.Directory);
            w.WriteNumber("tokens", store.TokenCount);
            w.WriteEndObject();
        }), ctx.RequestAborted));
        Map(app, store);
        await app.StartAsync(cancel);
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("Kestrel started without reporting its address");
        return (app, new Uri(bound.EndsWith('/') ? bound : bound + "/"));
    }

    static async Task Handle(HttpContext ctx, NGramStore store, Action<JsonRequest, NGramStore, Utf8JsonWriter> answer)
    {
        try
        {
            using var req = await JsonRequest.ReadAsync(ctx.Request, ctx.RequestAborted);
            var json = JsonOutput.Build(w => answer(req, store, w));
            await JsonOutput.SendAsync(ctx.Response, json, ctx.RequestAborted);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { }
        catch (Exception e) when (e is ApiException or ArgumentException or BadHttpRequestException)
        {
            var api = e switch
            {
                ApiException a => a,
                BadHttpRequestException b => new ApiException(b.StatusCode, b.Message, code: "bad_request"),
                _ => new ApiException(400, e.Message),
            };
            if (!ctx.Response.HasStarted) await api.WriteAsync(ctx.Response);
        }
    }

    static int[] Ids(JsonElement v, string name)
    {
        if (v.ValueKind != JsonValueKind.Array) throw JsonRequest.WrongType(name, v, "an array of token ids");
        var ids = new int[v.GetArrayLength()];
        int i = 0;
        foreach (var e in v.EnumerateArray()) ids[i++] = (int)JsonRequest.IntegerValue(e, name, int.MinValue, int.MaxValue);
        return ids;
    }

    static void Query(JsonRequest req, NGramStore store, Utf8JsonWriter w)
    {
        string kind = req.String("query") ?? throw ApiException.Invalid("query", "`query` is required: count, next, infinity_next, probability, documents or stupid_backoff.");
        var ids = Ids(req.Required("ids"), "ids");
        w.WriteStartObject();
        w.WriteString("query", kind);
        switch (kind)
        {
            case "count":
                w.WriteNumber("count", store.Count(ids));
                break;
            case "next":
            case "infinity_next":
                var d = kind == "next" ? store.NextTokens(ids) : store.InfinityNextTokens(ids);
                w.WriteNumber("suffix_length", d.SuffixLength);
                w.WriteNumber("total", d.Total);
                w.WriteStartArray("tokens");
                foreach (var t in d.Tokens) { w.WriteStartObject(); w.WriteNumber("token", t.Token); w.WriteNumber("count", t.Count); w.WriteEndObject(); }
                w.WriteEndArray();
                break;
            case "probability":
            case "stupid_backoff":
                int token = (int)(req.Integer("token", int.MinValue, int.MaxValue) ?? throw ApiException.Invalid("token", $"`token` is required for {kind}."));
                if (kind == "stupid_backoff") { w.WriteNumber("score", StupidBackoff.Score(store, ids, token)); break; }
                var p = store.Probability(ids, token);
                w.WriteNumber("suffix_length", p.SuffixLength);
                w.WriteNumber("context_count", p.ContextCount);
                w.WriteNumber("target_count", p.TargetCount);
                w.WriteNumber("probability", p.Probability);
                break;
            case "documents":
                var docs = store.Documents(ids, (int)(req.Integer("max_hits", 0, 100_000) ?? 100));
                w.WriteNumber("occurrences", docs.Occurrences);
                w.WriteBoolean("truncated", docs.Truncated);
                w.WriteStartArray("hits");
                foreach (var h in docs.Hits) { w.WriteStartObject(); w.WriteNumber("document", h.Document); w.WriteNumber("offset", h.Offset); w.WriteEndObject(); }
                w.WriteEndArray();
                break;
            default:
                throw ApiException.Invalid("query", $"unknown query '{kind}': expected count, next, infinity_next, probability, documents or stupid_backoff.");
        }
        w.WriteEndObject();
    }

    static void Batch(JsonRequest req, NGramStore store, Utf8JsonWriter w)
    {
        string kind = req.String("query") ?? "infinity";
        if (kind is not ("infinity" or "stupid_backoff")) throw ApiException.Invalid("query", $"unknown batch query '{kind}': expected infinity or stupid_backoff.");
        var seqs = req.Required("sequences");
        if (seqs.ValueKind != JsonValueKind.Array || seqs.GetArrayLength() == 0) throw ApiException.Invalid("sequences", "`sequences` must be a non-empty array of token-id arrays.");
        w.WriteStartObject();
        w.WriteString("query", kind);
        w.WriteStartArray("results");
        foreach (var s in seqs.EnumerateArray())
        {
            var ids = Ids(s, "sequences");
            w.WriteStartObject();
            if (kind == "stupid_backoff")
            {
                w.WriteStartArray("score");
                foreach (double x in NGramBatch.StupidBackoff(store, ids)) w.WriteNumberValue(x);
                w.WriteEndArray();
            }
            else
            {
                var r = NGramBatch.Infinity(store, ids);
                w.WriteStartArray("suffix_length"); foreach (var q in r) w.WriteNumberValue(q.SuffixLength); w.WriteEndArray();
                w.WriteStartArray("context_count"); foreach (var q in r) w.WriteNumberValue(q.ContextCount); w.WriteEndArray();
                w.WriteStartArray("target_count"); foreach (var q in r) w.WriteNumberValue(q.TargetCount); w.WriteEndArray();
                w.WriteStartArray("probability"); foreach (var q in r) w.WriteNumberValue(q.Probability); w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
