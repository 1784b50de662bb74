// Use a Tessera model from Semantic Kernel through its OpenAI connector, pointed at Tessera's
// OpenAI-compatible server instead of api.openai.com.
//
//   tessera serve --model model.gguf --port 8000 &
//   dotnet run --project samples/SemanticKernel -- --endpoint http://127.0.0.1:8000/v1 "What is a tessera?"
//
// or, without a running server, start the same server in-process on a free loopback port:
//
//   dotnet run --project samples/SemanticKernel -- model.gguf "What is a tessera?" [max-tokens]
//
// The reply goes to stdout; the endpoint and model id go to stderr.
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.Connectors.OpenAI;
using Tessera.Inference;
using Tessera.Server;
using Tessera.Text;

var rest = new List<string>(args);
string? endpoint = null;
int e = rest.IndexOf("--endpoint");
if (e >= 0 && e + 1 < rest.Count) { endpoint = rest[e + 1]; rest.RemoveRange(e, 2); }
if (endpoint is null && (rest.Count < 1 || !rest[0].EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)))
{
    Console.Error.WriteLine("usage: SemanticKernel (MODEL.gguf | --endpoint URL) [PROMPT] [MAX_TOKENS]");
    return 1;
}
int first = endpoint is null ? 1 : 0;
string prompt = rest.Count > first ? rest[first] : "What is a tessera?";
int maxTokens = rest.Count > first + 1 ? int.Parse(rest[first + 1], System.Globalization.CultureInfo.InvariantCulture) : 64;

BatchingEngine? engine = null;
TesseraServer? server = null;
try
{
    if (endpoint is null)
    {
        // What `tessera serve --model MODEL.gguf --port 0` does, in this process.
        string modelPath = rest[0];
        engine = new BatchingEngine(GgufWeights.Load(modelPath));
        var served = new ServedModel(Path.GetFileNameWithoutExtension(modelPath), engine, GgufVocabulary.Load(modelPath).Tokenizer);
        server = await TesseraServer.StartAsync(served, new ServerOptions { Port = 0 });
        endpoint = new Uri(server.Address, "v1").ToString();
    }

    // The model id the server serves (the first entry of /v1/models).
    using var http = new HttpClient();
    string modelId;
    using (var models = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(endpoint.TrimEnd('/') + "/models")))
        modelId = models.RootElement.GetProperty("data")[0].GetProperty("id").GetString()!;
    Console.Error.WriteLine($"endpoint {endpoint}, model {modelId}");

    var kernel = Kernel.CreateBuilder()
        .AddOpenAIChatCompletion(modelId: modelId, endpoint: new Uri(endpoint), apiKey: "unused-by-a-server-without-a-key")
        .Build();
    var chat = kernel.GetRequiredService<IChatCompletionService>();
    var history = new ChatHistory();
    history.AddUserMessage(prompt);
    // Temperature 0: greedy, so the reply is what the engine's greedy decoding gives.
    var settings = new OpenAIPromptExecutionSettings { Temperature = 0, MaxTokens = maxTokens };
    var reply = await chat.GetChatMessageContentAsync(history, settings, kernel);
    Console.Write(reply.Content);
    Console.WriteLine();
    return 0;
}
finally
{
    if (server is not null) await server.DisposeAsync();
    engine?.Dispose();
}
