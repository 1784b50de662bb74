using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Tessera.Inference;

namespace Tessera.Server;

/// <summary>Which modules answered a request of a <see cref="ModuleServing"/> server, and why.</summary>
/// <param name="Modules">The module ids that were on (attach order); empty = the base alone.</param>
/// <param name="Model">The served composition that answered (its id is <c>base+id+…</c>, or the base's).</param>
/// <param name="Reason"><c>model</c> (named in <c>model</c>), <c>field</c> (named in <c>tessera_module</c>) or <c>default</c> (nothing named: the server's default).</param>
public sealed record ModuleDecision(IReadOnlyList<string> Modules, ServedModel Model, string Reason)
{
    /// <summary>How tokens were routed: <c>base_only</c>, or <c>per_token</c> (each on module's router picks, per token, an expert or "base only").</summary>
    public string Routing => Modules.Count == 0 ? "base_only" : "per_token";

    /// <summary>Writes the <c>tessera</c> extension object of a response.</summary>
    public void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject(Cascade.ExtensionField);
        w.WriteStartArray("modules");
        foreach (var m in Modules) w.WriteStringValue(m);
        w.WriteEndArray();
        w.WriteString("model", Model.Id);
        w.WriteString("routing", Routing);
        w.WriteString("reason", Reason);
        w.WriteEndObject();
    }
}

/// <summary>
/// One frozen base served with several modules attached (docs/modules.md): the engine batches
/// requests that turn on different modules together, and each gets exactly the tokens it would
/// get alone. A request names its modules in <c>model</c> (<c>base+code</c>, <c>base+code+web</c>)
/// and/or in the extension field <c>"tessera_module"</c> (an id, an array of ids, or <c>"*"</c> for
/// every attached module); with neither, the server's default applies (the base alone unless the
/// server turns every module on by default). An unknown id, a module refused at load, or a
/// <c>model</c> and a <c>tessera_module</c> that disagree is a 4xx with OpenAI error JSON.
/// </summary>
public sealed class ModuleServing
{
    readonly BatchingEngine engine;
    readonly IReadOnlyDictionary<string, string> refused;
    readonly ConcurrentDictionary<ulong, ServedModel> compositions = new();

    /// <summary>Name of the per-request extension field that names modules.</summary>
    public const string Field = "tessera_module";

    /// <summary>
    /// Serves <paramref name="baseModel"/>, whose engine must be <paramref name="engine"/> with the
    /// modules attached; <paramref name="refused"/> maps ids that were not attached to the reason
    /// (reported to a request that names one); <paramref name="defaultAll"/> turns every module on
    /// for requests that name none.
    /// </summary>
    public ModuleServing(ServedModel baseModel, BatchingEngine engine, IReadOnlyDictionary<string, string>? refused = null, bool defaultAll = false)
    {
        if (!ReferenceEquals(baseModel.Engine, engine)) throw new ArgumentException("module serving: the base model must be served by the engine the modules are attached to.");
        if (engine.Modules is null || engine.Modules.Ids.Count == 0) throw new ArgumentException("module serving: no module is attached to the base (give --module ID or --modules REGISTRY).");
        foreach (var id in engine.Modules.Ids)
            if (id.Contains('+') || id == "*") throw new ArgumentException($"module serving: module id '{id}' cannot be served: '+' joins ids in model names and '*' means every module.");
        Base = baseModel;
        this.engine = engine;
        this.refused = refused ?? new Dictionary<string, string>();
        DefaultAll = defaultAll;
        compositions[0] = baseModel;
    }

    /// <summary>The base, served alone under its own id.</summary>
    public ServedModel Base { get; }

    /// <summary>The attached module ids, in attach order.</summary>
    public IReadOnlyList<string> Ids => engine.Modules!.Ids;

    /// <summary>True when a request that names no module gets every module on (router per token); false: the base alone.</summary>
    public bool DefaultAll { get; }

    /// <summary>The models /v1/models lists: the base and <c>base+id</c> for each module.</summary>
    public IEnumerable<ServedModel> Models => [Base, .. Ids.Select(id => Composition([id]))];

    /// <summary>The served model for exactly <paramref name="ids"/> on (made once per set, then reused).</summary>
    public ServedModel Composition(IReadOnlyList<string> ids)
    {
        ulong mask = engine.Modules!.Mask(ids);
        return compositions.GetOrAdd(mask, m =>
        {
            var on = Ids.Where((_, i) => (m >> i & 1) != 0).ToArray();
            return new ServedModel(Base.Id + "+" + string.Join("+", on), new ModuleEngine(engine, on), Base.Tokenizer) { Retriever = Base.Retriever };
        });
    }

    /// <summary>
    /// Decides a request's modules from <c>model</c> and <c>tessera_module</c>. Throws a 404 for a
    /// <c>model</c> that is neither the base nor <c>base+ids</c> of attached modules, a 400 for a bad or
    /// unknown <c>tessera_module</c>, and a 400 when both name modules and disagree.
    /// </summary>
    public ModuleDecision Decide(JsonRequest req)
    {
        string? name = req.String("model");
        string[]? fromModel = null;
        if (name is not null && name != Base.Id)
        {
            if (!name.StartsWith(Base.Id + "+", StringComparison.Ordinal))
                throw new ApiException(404, $"The model '{name}' does not exist; this server serves the base '{Base.Id}' and its modules as '{Base.Id}+ID' (modules: {string.Join(", ", Ids)}).", param: "model", code: "model_not_found");
            fromModel = name[(Base.Id.Length + 1)..].Split('+');
            foreach (var id in fromModel)
                if (!Ids.Contains(id) && id != "*")
                    throw new ApiException(404, $"The model '{name}' does not exist: {Unknown(id)}", param: "model", code: "model_not_found");
            fromModel = Expand(fromModel);
        }
        string[]? fromField = ReadField(req);
        if (fromModel is not null && fromField is not null && !SameSet(fromModel, fromField))
            throw ApiException.Invalid(Field, $"Conflicting modules: 'model' names {Show(fromModel)} but '{Field}' names {Show(fromField)}; name the modules once, or the same ones in both - '{Field}'.", code: "conflicting_modules");
        var (ids, reason) = fromModel is not null ? (fromModel, "model") : fromField is not null ? (fromField, "field") : (DefaultAll ? [.. Ids] : Array.Empty<string>(), "default");
        var served = Composition(ids);
        return new ModuleDecision((served.Engine as ModuleEngine)?.Ids ?? [], served, reason);
    }

    string[] Expand(string[] ids) => ids.Contains("*") ? [.. Ids] : ids;

    static bool SameSet(string[] a, string[] b) => new HashSet<string>(a).SetEquals(b);

    static string Show(string[] ids) => ids.Length == 0 ? "no module" : string.Join(", ", ids.Select(i => $"'{i}'"));

    string Unknown(string id) => refused.TryGetValue(id, out var why)
        ? $"module '{id}' was not attached at load: {why}"
        : $"no module '{id}' is attached (attached: {string.Join(", ", Ids)}).";

    /// <summary>Reads <c>tessera_module</c>: an id, an array of ids (empty = the base alone) or <c>"*"</c>; null when absent.</summary>
    string[]? ReadField(JsonRequest req)
    {
        if (req.Field(Field) is not { } v) return null;
        string[] ids;
        if (v.ValueKind == JsonValueKind.String) ids = [v.GetString()!];
        else if (v.ValueKind == JsonValueKind.Array)
        {
            var list = new List<string>();
            foreach (var e in v.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String) throw JsonRequest.WrongType(Field, v, "a module id or an array of module ids");
                list.Add(e.GetString()!);
            }
            ids = [.. list];
        }
        else throw JsonRequest.WrongType(Field, v, "a module id or an array of module ids");
        foreach (var id in ids)
            if (id != "*" && !Ids.Contains(id)) throw ApiException.Invalid(Field, $"Unknown module in '{Field}': {Unknown(id)} - '{Field}'.", code: "module_not_found");
        return Expand(ids);
    }

    /// <summary>
    /// Routes one request: decides its modules, records the decision (the response's <c>tessera</c>
    /// field, the <c>x-tessera-modules</c> header, the metrics) and hands the parsed body to the
    /// endpoint with the chosen composition.
    /// </summary>
    public async Task HandleAsync(HttpContext ctx, Cascade.Endpoint endpoint, ModuleMetrics metrics, CancellationToken cancel)
    {
        using var req = await JsonRequest.ReadAsync(ctx.Request, cancel);
        if (req.String("model") is null) GenerationParameters.CheckModel(req, Base);   // the usual 400 for a missing model
        var decision = Decide(req);
        req.ModelAlias = req.String("model");
        metrics.Record(decision);
        ctx.Features.Set(decision);
        ctx.Response.Headers["x-tessera-modules"] = decision.Modules.Count == 0 ? "none" : string.Join(",", decision.Modules);
        await (endpoint == Cascade.Endpoint.Completions
            ? CompletionsEndpoint.HandleAsync(ctx, decision.Model, req, cancel)
            : ChatCompletionsEndpoint.HandleAsync(ctx, decision.Model, req, cancel));
    }

    /// <summary>Router token counts of the engine: per expert module, tokens seen and tokens sent to its experts.</summary>
    public IEnumerable<(string Id, long Seen, long ToExperts)> RouterTokens()
    {
        var counts = engine.ModuleRouting();
        for (int i = 0; i < counts.Length; i++)
            if (counts[i].Seen > 0) yield return (Ids[i], counts[i].Seen, counts[i].ToExperts);   // LoRA modules have no router
    }

    /// <summary>The engine with a fixed set of modules on: what one composition's endpoints call.</summary>
    sealed class ModuleEngine(BatchingEngine engine, string[] ids) : IGenerationEngine
    {
        public string[] Ids => ids;
        public Tessera.Model.ModelConfig Config => engine.Config;
        public IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, CancellationToken cancel = default)
            => engine.GenerateAsync(request with { Modules = ids }, cancel);
        public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs) => engine.Score(prompt, topLogprobs, ids);
        public float[] Embed(IReadOnlyList<int> ids2) => engine.Embed(ids2, ids);
    }
}

/// <summary>
/// Module serving's instruments, on a server's own meter (exported at <c>/metrics</c>):
/// <c>tessera_module_requests_total{modules, reason}</c> and
/// <c>tessera_module_router_tokens_total{module, entry}</c> (entry = experts or base: what each expert
/// module's router chose per token).
/// </summary>
public sealed class ModuleMetrics : IDisposable
{
    readonly Meter meter;
    readonly Counter<long> requests;

    /// <summary>Creates the instruments on a meter named <paramref name="meterName"/>; the router counts are read from <paramref name="serving"/> when scraped.</summary>
    public ModuleMetrics(string meterName, ModuleServing serving)
    {
        meter = new Meter(meterName);
        requests = meter.CreateCounter<long>("tessera.module.requests", "{request}", "Requests by the modules that were on (modules: ids joined by '+', or 'none') and why (reason: model, field or default).");
        meter.CreateObservableCounter("tessera.module.router.tokens", () => serving.RouterTokens().SelectMany(r => new[]
        {
            new Measurement<long>(r.ToExperts, new KeyValuePair<string, object?>("module", r.Id), new KeyValuePair<string, object?>("entry", "experts")),
            new Measurement<long>(r.Seen - r.ToExperts, new KeyValuePair<string, object?>("module", r.Id), new KeyValuePair<string, object?>("entry", "base")),
        }), "{token}", "Token rows each expert module's router sent to its experts or to 'base only'.");
    }

    /// <summary>Counts one decision.</summary>
    public void Record(ModuleDecision d)
        => requests.Add(1, new KeyValuePair<string, object?>("modules", d.Modules.Count == 0 ? "none" : string.Join("+", d.Modules)), new KeyValuePair<string, object?>("reason", d.Reason));

    /// <summary>Disposes the meter.</summary>
    public void Dispose() => meter.Dispose();
}
