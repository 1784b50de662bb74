using System.ClientModel;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Model.Modules;
using Tessera.Tensors;
using Tessera.Text;
using TextMessage = Tessera.Text.ChatMessage;

namespace Tessera.Server.Tests;

/// <summary>
/// One base served with two modules (an experts module and a LoRA): requests pick modules by model
/// name or the <c>tessera_module</c> field, concurrent requests with different modules share the
/// engine and each gets the reply it gets alone (and the slow reference engine's), the decision is
/// reported in the response and /metrics, and bad names are 4xx OpenAI errors that leave it serving.
/// </summary>
public sealed class ModuleServingTests : IDisposable
{
    const string BaseId = "tiny";
    readonly Transformer model;

    public ModuleServingTests()
    {
        var c = TestModel.Config();
        model = new Transformer(c, seed: 31);
        // Module weights well above the 0.02 init, so a module changes the greedy reply.
        var code = new ModelModule(new ModuleSpec("code", ModuleKind.Experts, [0, 1], Experts: 2), c, 41);
        foreach (var t in code.Parameters.All) foreach (ref float v in t.AsSpan()) v *= 25f;
        var web = new ModelModule(new ModuleSpec("web", ModuleKind.Lora, [0, 1], Rank: 4, Projections: ["q_proj", "v_proj", "o_proj"]), c, 42);
        var rng = new Rng(43);
        foreach (var t in web.Parameters.All) if (t.Name.EndsWith(".b.weight", StringComparison.Ordinal)) rng.FillNormal(t.AsSpan(), 0f, 1f);
        model.Modules.Attach(code);
        model.Modules.Attach(web);
    }

    public void Dispose() => model.Dispose();

    sealed class Served(BatchingEngine engine, ModuleServing serving, TesseraServer server) : IAsyncDisposable
    {
        public ModuleServing Serving => serving;
        public TesseraServer Server => server;
        public async ValueTask DisposeAsync() { await server.DisposeAsync(); engine.Dispose(); }
    }

    async Task<Served> Start(bool defaultAll = false)
    {
        var engine = new BatchingEngine(model);
        var serving = new ModuleServing(new ServedModel(BaseId, engine, TestModel.Tokenizer), engine,
            new Dictionary<string, string> { ["old"] = "built for base 7c2c19b44b8f…, but this base's weights hash to 1a2b…" }, defaultAll);
        return new Served(engine, serving, await TesseraServer.StartAsync(serving, new ServerOptions { Port = 0 }));
    }

    static ChatClient Client(TesseraServer s, string modelId) => LiveServer.Client(s, modelId);

    static JsonElement Decision(ClientResult r) => JsonDocument.Parse(r.GetRawResponse().Content.ToString()).RootElement.GetProperty("tessera").Clone();

    static Task<(int Status, JsonElement Body, HttpResponseMessage Response)> Post(TesseraServer s, string path, string body) => LiveServer.Post(s, path, body);

    /// <summary>The greedy chat reply of <paramref name="engine"/> with <paramref name="modules"/> on, decoded the plain way.</summary>
    static async Task<string> GreedyChat(IGenerationEngine engine, string[] modules, string user, int maxTokens)
    {
        var s = TestModel.Tokenizer.SpecialTokens;
        var prompt = ChatTemplate.Encode(TestModel.Tokenizer, [new TextMessage("user", user)], addGenerationPrompt: true);
        var stops = new HashSet<int> { s.Id(ChatTemplate.End), s.Id(ChatTemplate.Eos) };
        var ids = new List<int>();
        await foreach (var e in engine.GenerateAsync(new GenerationRequest(prompt, maxTokens, SamplingOptions.Greedy, stops) { Modules = modules }))
            if (!stops.Contains(e.Id)) ids.Add(e.Id);
        return TestModel.Text(ids);
    }

    static string GreedyCompletion(IGenerationEngine engine, string[] modules, string prompt, int maxTokens)
    {
        var ids = new List<int> { TestModel.Tokenizer.SpecialTokens.Id(ChatTemplate.Bos) };
        ids.AddRange(TestModel.Tokenizer.Encode(prompt));
        var stops = new HashSet<int> { TestModel.Tokenizer.SpecialTokens.Id(ChatTemplate.Eos) };
        var output = engine.GenerateAsync(new GenerationRequest(ids, maxTokens, SamplingOptions.Greedy, stops) { Modules = modules }).ToBlockingEnumerable()
            .Where(e => !stops.Contains(e.Id)).Select(e => e.Id).ToList();
        return TestModel.Text(output);
    }

    static readonly string[][] Selections = [[], ["code"], ["web"], ["code", "web"]];

    static string Name(string[] ids) => ids.Length == 0 ? BaseId : BaseId + "+" + string.Join("+", ids);

    [Fact]
    public async Task OpenAiClientGetsEachCompositionsReplyAloneAndTheReferenceEnginesInOneBatch()
    {
        const string user = "Hello there";
        var expected = new string[Selections.Length];
        var reference = new ReferenceEngine(model);
        for (int i = 0; i < Selections.Length; i++)
        {
            using var alone = new BatchingEngine(model, new BatchingOptions { MaxSequences = 1 });
            expected[i] = await GreedyChat(alone, Selections[i], user, 16);
            Assert.Equal(expected[i], await GreedyChat(reference, Selections[i], user, 16));   // the slow twin (training forward, no cache)
        }
        using (var bare = new BatchingEngine(InferenceWeights.FromTransformer(model)))
            Assert.Equal(expected[0], await GreedyChat(bare, [], user, 16));                   // base only = the base served without modules
        Assert.Equal(Selections.Length, expected.Distinct().Count());                          // every composition answers differently

        await using var s = await Start();
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 16 };
        // All four at once, twice over, so the engine batches sequences with different modules together.
        var calls = Enumerable.Range(0, 2 * Selections.Length).Select(k => Client(s.Server, Name(Selections[k % Selections.Length])).CompleteChatAsync([new UserChatMessage(user)], options)).ToArray();
        var results = await Task.WhenAll(calls);
        for (int k = 0; k < results.Length; k++)
        {
            var ids = Selections[k % Selections.Length];
            var r = results[k];
            Assert.Equal(expected[k % Selections.Length], r.Value.Content.Count == 0 ? "" : r.Value.Content[0].Text);
            Assert.Equal(Name(ids), r.Value.Model);
            var d = Decision(r);
            Assert.Equal(ids, d.GetProperty("modules").EnumerateArray().Select(e => e.GetString()!).ToArray());
            Assert.Equal(ids.Length == 0 ? "base_only" : "per_token", d.GetProperty("routing").GetString());
            Assert.Equal(ids.Length == 0 ? "default" : "model", d.GetProperty("reason").GetString());
        }
    }

    [Fact]
    public async Task TheExtensionFieldNamesModulesAndBadNamesAre4xxWhileTheServerKeepsServing()
    {
        const string prompt = "Call me Ishmael.";
        using var alone = new BatchingEngine(model, new BatchingOptions { MaxSequences = 1 });
        string codeText = GreedyCompletion(alone, ["code"], prompt, 10), allText = GreedyCompletion(alone, ["code", "web"], prompt, 10), baseText = GreedyCompletion(alone, [], prompt, 10);
        await using var s = await Start();
        string Body(string modelId, string? field) => $$"""{"model":"{{modelId}}","prompt":"{{prompt}}","max_tokens":10,"temperature":0{{(field is null ? "" : $",\"tessera_module\":{field}")}}}""";
        foreach (var (modelId, field, text, reason) in new[]
        {
            (BaseId, "\"code\"", codeText, "field"), (BaseId, "[\"web\",\"code\"]", allText, "field"), (BaseId, "\"*\"", allText, "field"),
            (BaseId + "+code", "[\"code\"]", codeText, "model"), (BaseId + "+*", null, allText, "model"), (BaseId, "[]", baseText, "field"), (BaseId, null, baseText, "default"),
        })
        {
            var (status, json, response) = await Post(s.Server, "v1/completions", Body(modelId, field));
            Assert.Equal(200, status);
            Assert.Equal(text, json.GetProperty("choices")[0].GetProperty("text").GetString());
            Assert.Equal(reason, json.GetProperty("tessera").GetProperty("reason").GetString());
            Assert.Equal(text == baseText ? "none" : text == codeText ? "code" : "code,web", response.Headers.GetValues("x-tessera-modules").Single());
        }

        foreach (var (modelId, field, status, code, param, says) in new[]
        {
            (BaseId + "+code", "\"web\"", 400, "conflicting_modules", "tessera_module", "Conflicting modules"),
            (BaseId, "\"nope\"", 400, "module_not_found", "tessera_module", "no module 'nope' is attached (attached: code, web)"),
            (BaseId, "\"old\"", 400, "module_not_found", "tessera_module", "was not attached at load: built for base 7c2c19b44b8f"),
            (BaseId, "3", 400, null, "tessera_module", "tessera_module"),
            (BaseId + "+nope", null, 404, "model_not_found", "model", "no module 'nope'"),
            ("other", null, 404, "model_not_found", "model", "tiny+ID"),
        })
        {
            foreach (var path in new[] { "v1/completions", "v1/chat/completions" })
            {
                string body = path == "v1/completions" ? Body(modelId, field)
                    : $$"""{"model":"{{modelId}}","messages":[{"role":"user","content":"hi"}]{{(field is null ? "" : $",\"tessera_module\":{field}")}}}""";
                var (got, json, _) = await Post(s.Server, path, body);
                Assert.Equal(status, got);
                var error = json.GetProperty("error");
                if (code is not null) Assert.Equal(code, error.GetProperty("code").GetString());
                Assert.Equal(param, error.GetProperty("param").GetString());
                Assert.Contains(says, error.GetProperty("message").GetString());
            }
        }
        var after = await Post(s.Server, "v1/completions", Body(BaseId + "+code", null));
        Assert.Equal(200, after.Status);
        Assert.Equal(codeText, after.Body.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task DefaultAllTurnsEveryModuleOnAndStreamingReportsTheDecision()
    {
        const string prompt = "Some years ago";
        using var alone = new BatchingEngine(model, new BatchingOptions { MaxSequences = 1 });
        string allText = GreedyCompletion(alone, ["code", "web"], prompt, 8);
        await using var s = await Start(defaultAll: true);
        var (status, json, _) = await Post(s.Server, "v1/completions", $$"""{"model":"{{BaseId}}","prompt":"{{prompt}}","max_tokens":8,"temperature":0}""");
        Assert.Equal(200, status);
        Assert.Equal(allText, json.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal("default", json.GetProperty("tessera").GetProperty("reason").GetString());
        Assert.Equal(BaseId + "+code+web", json.GetProperty("model").GetString());

        var (sStatus, _, response) = await Post(s.Server, "v1/completions", $$$"""{"model":"{{{BaseId}}}+web","prompt":"{{{prompt}}}","max_tokens":4,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}""");
        Assert.Equal(200, sStatus);
        Assert.Equal("web", response.Headers.GetValues("x-tessera-modules").Single());
        string events = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"tessera\":{\"modules\":[\"web\"]", events);

        using var http = new HttpClient();
        var models = JsonDocument.Parse(await http.GetStringAsync(new Uri(s.Server.Address, "v1/models"))).RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!).ToArray();
        Assert.Equal(new[] { BaseId, BaseId + "+code", BaseId + "+web" }, models);
    }

    [Fact]
    public async Task MetricsCountRequestsByModulesAndTheRoutersTokenChoices()
    {
        await using var s = await Start();
        string Body(string modelId) => $$"""{"model":"{{modelId}}","prompt":"abc","max_tokens":3,"temperature":0}""";
        for (int i = 0; i < 2; i++) Assert.Equal(200, (await Post(s.Server, "v1/completions", Body(BaseId + "+code"))).Status);
        for (int i = 0; i < 3; i++) Assert.Equal(200, (await Post(s.Server, "v1/completions", Body(BaseId))).Status);
        Assert.Equal(200, (await Post(s.Server, "v1/completions", Body(BaseId + "+code+web"))).Status);
        var routed = s.Serving.RouterTokens().Single();
        Assert.Equal("code", routed.Id);
        // 3 code requests × (4 prompt rows + 2 decode rows) × 2 layers reach the code module's routers.
        Assert.Equal(3 * (4 + 2) * 2, routed.Seen);
        using var http = new HttpClient();
        string text = "";
        for (int attempt = 0; attempt < 50; attempt++)
        {
            text = await http.GetStringAsync(new Uri(s.Server.Address, "metrics"));
            if (text.Contains("tessera_module_requests") && text.Contains("modules=\"code+web\"")) break;
            await Task.Delay(200);
        }
        Assert.Matches(@"tessera_module_requests\S*\{(?=[^}]*modules=""code"")(?=[^}]*reason=""model"")[^}]*\} 2\b", text);
        Assert.Matches(@"tessera_module_requests\S*\{(?=[^}]*modules=""none"")(?=[^}]*reason=""default"")[^}]*\} 3\b", text);
        Assert.Matches(@"tessera_module_requests\S*\{(?=[^}]*modules=""code\+web"")[^}]*\} 1\b", text);
        Assert.Matches($@"tessera_module_router_tokens\S*\{{(?=[^}}]*entry=""experts"")(?=[^}}]*module=""code"")[^}}]*\}} {routed.ToExperts}\b", text);
        Assert.Matches($@"tessera_module_router_tokens\S*\{{(?=[^}}]*entry=""base"")(?=[^}}]*module=""code"")[^}}]*\}} {routed.Seen - routed.ToExperts}\b", text);
    }

    [Fact]
    public void ServingWithoutModulesOrWithAnotherEngineIsRefused()
    {
        using var bare = new BatchingEngine(InferenceWeights.FromTransformer(model));
        Assert.Contains("no module is attached", Assert.Throws<ArgumentException>(() => new ModuleServing(new ServedModel(BaseId, bare, TestModel.Tokenizer), bare)).Message);
        using var engine = new BatchingEngine(model);
        Assert.Contains("must be served by the engine", Assert.Throws<ArgumentException>(() => new ModuleServing(new ServedModel(BaseId, bare, TestModel.Tokenizer), engine)).Message);
    }
}
