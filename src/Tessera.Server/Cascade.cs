using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Tessera.Data.NGram;

namespace Tessera.Server;

/// <summary>Which model of a <see cref="Cascade"/> answered a request, and why.</summary>
/// <param name="RoutedTo"><c>small</c> or <c>large</c>.</param>
/// <param name="Model">The served model that answered.</param>
/// <param name="Confidence">The small model's confidence in the prompt, in [0, 1]; null when the request named a model and no decision was made.</param>
/// <param name="Threshold">The threshold the decision used (the request's or the server's).</param>
/// <param name="Reason"><c>confidence</c> (the policy decided) or <c>named</c> (the request's <c>model</c> named one of the two).</param>
public sealed record CascadeDecision(string RoutedTo, ServedModel Model, double? Confidence, double Threshold, string Reason)
{
    /// <summary>Writes the <c>tessera</c> extension object of a response (OpenAI clients ignore fields they do not know).</summary>
    public void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject("tessera");
        w.WriteString("routed_to", RoutedTo);
        w.WriteString("model", Model.Id);
        if (Confidence is { } c) w.WriteNumber("confidence", c); else w.WriteNull("confidence");
        w.WriteNumber("threshold", Threshold);
        w.WriteString("reason", Reason);
        w.WriteEndObject();
    }

    /// <summary>Writes the decision stored on a request by the cascade or by module serving, if there is one (a one-model server writes nothing).</summary>
    public static void WriteIfRouted(Utf8JsonWriter w, HttpContext ctx)
    {
        ctx.Features.Get<CascadeDecision>()?.Write(w);
        ctx.Features.Get<ModuleDecision>()?.Write(w);
    }
}

/// <summary>
/// A Flash/Pro cascade over two served models that share one tokenizer: each request goes to the
/// small model unless the small model's confidence in the prompt is below the threshold, in which
/// case it goes to the large one.
/// </summary>
/// <remarks>
/// <para>Confidence is the geometric-mean probability the small model gives the prompt's own tokens,
/// exp(mean log p(token | earlier tokens)), in (0, 1]: a prompt unlike the small model's training
/// data (another domain, unusual text) gets a low value. It is read from the prompt, not from the
/// small model's reply, so the decision is made before any token is generated: nothing is decoded
/// twice, and streaming works unchanged (the answering model streams from its first token). A
/// model's confidence in its own greedy reply is a poor signal for tiny models, which repeat
/// themselves with high probability on text they do not understand.</para>
/// <para>Cost: every request pays the small model's prompt pass (scoring); a request kept small then
/// pays the small model's generation, an escalated one the large model's.</para>
/// <para>The dial: a request goes small when confidence ≥ threshold. Threshold 0 always goes small,
/// 1 always large (the extremes are exact, not left to rounding). The server's threshold is the
/// default; a request may set its own in the extension field <c>"tessera": {"threshold": t}</c>.
/// A request whose <c>model</c> names the small or the large model directly skips the policy.</para>
/// </remarks>
public sealed class Cascade
{
    /// <summary>Builds the cascade; refuses a missing model, duplicate ids, different tokenizers or a threshold outside [0, 1].</summary>
    public Cascade(string id, ServedModel? small, ServedModel? large, double threshold)
    {
        if (small is null) throw new ArgumentException("cascade: the small model is missing (serve --cascade-small PATH with --model for the large one).");
        if (large is null) throw new ArgumentException("cascade: the large model is missing (serve --model PATH with --cascade-small for the small one).");
        CheckThreshold(threshold, "cascade threshold");
        if (string.IsNullOrWhiteSpace(id)) throw new ArgumentException("cascade: the id clients name the cascade by must be non-empty.");
        if (id == small.Id || id == large.Id || small.Id == large.Id)
            throw new ArgumentException($"cascade: the cascade '{id}', the small model '{small.Id}' and the large model '{large.Id}' need three different ids.");
        var a = TokenizerIdentity.Of(small.Tokenizer);
        var b = TokenizerIdentity.Of(large.Tokenizer);
        // One prompt encoding serves both models, so the tokenizers must be the same one, id for id.
        if (a != b)
            throw new ArgumentException($"cascade: the small model's tokenizer ({a.Name}, {a.VocabSize} ids, {a.Fingerprint}) differs from the large model's ({b.Name}, {b.VocabSize} ids, {b.Fingerprint}); both must use the same tokenizer.");
        Id = id;
        Small = small;
        Large = large;
        Threshold = threshold;
        Front = new ServedModel(id, small.Engine, small.Tokenizer) { Retriever = small.Retriever };
    }

    /// <summary>The id clients send as <c>model</c> to be routed.</summary>
    public string Id { get; }
    /// <summary>The cheap model that answers confident requests.</summary>
    public ServedModel Small { get; }
    /// <summary>The expensive model that answers the rest.</summary>
    public ServedModel Large { get; }
    /// <summary>The server's default threshold, in [0, 1].</summary>
    public double Threshold { get; }
    /// <summary>The cascade as one served model for /v1/models, /health and /v1/embeddings (which use the small model's engine).</summary>
    public ServedModel Front { get; }

    /// <summary>Name of the per-request extension object.</summary>
    public const string ExtensionField = "tessera";

    /// <summary>
    /// The small model's confidence in a prompt: exp of the mean log-probability of every prompt
    /// token after the first (the first has nothing before it). A prompt with nothing to score has
    /// confidence 1. Only the last <c>ContextLength</c> ids are scored.
    /// </summary>
    public double Confidence(IReadOnlyList<int> prompt)
    {
        int ctxLen = Small.ContextLength;
        IReadOnlyList<int> ids = prompt.Count > ctxLen ? prompt.Skip(prompt.Count - ctxLen).ToArray() : prompt;
        if (ids.Count < 2) return 1;
        var scored = Small.Engine.Score(ids, 0);
        double sum = 0;
        int n = 0;
        for (int i = 1; i < scored.Count; i++)
        {
            float lp = scored[i].Logprob;
            if (float.IsNaN(lp)) continue;
            sum += float.IsNegativeInfinity(lp) ? -1e4 : lp;
            n++;
        }
        return n == 0 ? 1 : Math.Exp(sum / n);
    }

    /// <summary>The routing rule: small when <paramref name="confidence"/> ≥ <paramref name="threshold"/>; 0 is always small, 1 always large.</summary>
    public static bool GoesSmall(double confidence, double threshold) => threshold <= 0 || (threshold < 1 && confidence >= threshold);

    /// <summary>Decides for one prompt at the given threshold (the server's when null).</summary>
    public CascadeDecision Decide(IReadOnlyList<int> prompt, double? threshold = null)
    {
        double t = threshold ?? Threshold;
        double c = Confidence(prompt);
        return GoesSmall(c, t) ? new("small", Small, c, t, "confidence") : new("large", Large, c, t, "confidence");
    }

    /// <summary>Throws a clear <see cref="ArgumentException"/> unless <paramref name="t"/> is a number in [0, 1].</summary>
    public static void CheckThreshold(double t, string what)
    {
        if (!double.IsFinite(t) || t < 0 || t > 1) throw new ArgumentException($"{what} must be a number in [0, 1] (0 = always the small model, 1 = always the large), got {t}.");
    }

    /// <summary>Reads <c>"tessera": {"threshold": t}</c>; a wrong type, an unknown key or a value outside [0, 1] is a 400.</summary>
    public static double? ReadThreshold(JsonRequest req)
    {
        if (req.Field(ExtensionField) is not { } ext) return null;
        if (ext.ValueKind != JsonValueKind.Object) throw JsonRequest.WrongType(ExtensionField, ext, "an object");
        double? threshold = null;
        foreach (var p in ext.EnumerateObject())
        {
            if (p.Name != "threshold")
                throw ApiException.Unsupported($"{ExtensionField}.{p.Name}", $"Unknown field '{p.Name}' in '{ExtensionField}': this server reads only 'threshold' there - '{ExtensionField}.{p.Name}'.");
            if (p.Value.ValueKind == JsonValueKind.Null) continue;
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out double t))
                throw JsonRequest.WrongType($"{ExtensionField}.threshold", p.Value, "a number in [0, 1]");
            if (t < 0 || t > 1)
                throw ApiException.Invalid($"{ExtensionField}.threshold", $"{p.Value.GetRawText()} is not a valid threshold: it must be in [0, 1] (0 = always the small model, 1 = always the large) - '{ExtensionField}.threshold'.");
            threshold = t;
        }
        return threshold;
    }

    /// <summary>The endpoint a request was sent to.</summary>
    public enum Endpoint
    {
        /// <summary>POST /v1/completions.</summary>
        Completions,
        /// <summary>POST /v1/chat/completions.</summary>
        ChatCompletions,
    }

    /// <summary>
    /// Routes one request: reads the body once, decides from the prompt, records the decision (the
    /// response's <c>tessera</c> field, the <c>x-tessera-routed-to</c> header, the metrics), and
    /// hands the same parsed body to the answering model's endpoint.
    /// </summary>
    public async Task HandleAsync(HttpContext ctx, Endpoint endpoint, CascadeMetrics metrics, CancellationToken cancel)
    {
        using var req = await JsonRequest.ReadAsync(ctx.Request, cancel);
        double? requested = ReadThreshold(req);
        string? name = req.String("model");
        CascadeDecision decision;
        if (name == Small.Id) decision = new("small", Small, null, requested ?? Threshold, "named");
        else if (name == Large.Id) decision = new("large", Large, null, requested ?? Threshold, "named");
        else
        {
            // Missing or unknown model: the small model's endpoint answers with the usual 400/404.
            if (name != Id)
            {
                if (name is null) GenerationParameters.CheckModel(req, Small);
                throw new ApiException(404, $"The model '{name}' does not exist; this server serves the cascade '{Id}' and its models '{Small.Id}' (small) and '{Large.Id}' (large).", param: "model", code: "model_not_found");
            }
            decision = Decide(PromptIds(req, endpoint), requested);
            req.ModelAlias = Id;
        }
        metrics.Record(decision);
        ctx.Features.Set(decision);
        ctx.Response.Headers["x-tessera-routed-to"] = decision.RoutedTo;
        if (decision.Confidence is { } c) ctx.Response.Headers["x-tessera-confidence"] = c.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        await (endpoint == Endpoint.Completions
            ? CompletionsEndpoint.HandleAsync(ctx, decision.Model, req, cancel)
            : ChatCompletionsEndpoint.HandleAsync(ctx, decision.Model, req, cancel));
    }

    /// <summary>
    /// The prompt as the small model sees it: a completion's prompt, or a chat's messages through
    /// the template (without tool definitions or retrieved passages, which do not change how
    /// familiar the user's text is).
    /// </summary>
    List<int> PromptIds(JsonRequest req, Endpoint endpoint)
        => endpoint == Endpoint.Completions ? CompletionsEndpoint.ReadPrompt(req, Small).Ids
            : ChatCompletionsEndpoint.Encode(Small, ChatCompletionsEndpoint.ReadMessages(req));
}

/// <summary>
/// The cascade's instruments, on a server's own meter (exported at <c>/metrics</c>):
/// <c>tessera_cascade_requests_total{routed_to, reason}</c> and the confidence histogram.
/// </summary>
public sealed class CascadeMetrics : IDisposable
{
    readonly Meter meter;
    readonly Counter<long> requests;
    readonly Histogram<double> confidence;

    /// <summary>Creates the instruments on a meter named <paramref name="meterName"/> (a server's instance meter).</summary>
    public CascadeMetrics(string meterName)
    {
        meter = new Meter(meterName);
        requests = meter.CreateCounter<long>("tessera.cascade.requests", "{request}", "Cascade routing decisions, by the model that answered (routed_to) and why (reason: confidence or named).");
        confidence = meter.CreateHistogram<double>("tessera.cascade.confidence", "1", "The small model's confidence in each routed prompt (geometric-mean token probability).");
    }

    /// <summary>Counts one decision.</summary>
    public void Record(CascadeDecision d)
    {
        requests.Add(1, new KeyValuePair<string, object?>("routed_to", d.RoutedTo), new KeyValuePair<string, object?>("reason", d.Reason));
        if (d.Confidence is { } c) confidence.Record(c);
    }

    /// <summary>Disposes the meter.</summary>
    public void Dispose() => meter.Dispose();
}
