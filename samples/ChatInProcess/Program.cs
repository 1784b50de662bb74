// Chat with a Tessera model in-process through Microsoft.Extensions.AI's IChatClient, streaming the
// reply to the console as it is generated. No HTTP: TesseraChatClient drives the engine directly.
//
//   dotnet run --project samples/ChatInProcess -- model.gguf "What is a tessera?" [max-tokens]
//
// The reply goes to stdout (pipe it anywhere); what was loaded and why the reply ended go to stderr.
using Microsoft.Extensions.AI;
using Tessera.Inference;
using Tessera.Server;
using ITokenizer = Tessera.Text.ITokenizer;
using GgufVocabulary = Tessera.Text.GgufVocabulary;

if (args.Length < 1 || !args[0].EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
{
    Console.Error.WriteLine("usage: ChatInProcess MODEL.gguf [PROMPT] [MAX_TOKENS]");
    return 1;
}
string modelPath = args[0];
string prompt = args.Length > 1 ? args[1] : "What is a tessera?";
int maxTokens = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 64;

// A GGUF file carries both the weights (quantized ones stay quantized) and the tokenizer.
using var engine = new BatchingEngine(GgufWeights.Load(modelPath));
ITokenizer tokenizer = GgufVocabulary.Load(modelPath).Tokenizer;
IChatClient chat = new TesseraChatClient(new ServedModel(Path.GetFileNameWithoutExtension(modelPath), engine, tokenizer));
Console.Error.WriteLine($"model {modelPath}: {engine.Config.Architecture}, {engine.Config.Layers} layers, vocabulary {engine.Config.VocabSize}");

// Temperature 0 is greedy decoding: the same prompt always gives the same reply.
var options = new ChatOptions { Temperature = 0, MaxOutputTokens = maxTokens };
ChatFinishReason? finish = null;
long? outputTokens = null;
await foreach (var update in chat.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, prompt)], options))
{
    Console.Write(update.Text);
    finish = update.FinishReason ?? finish;
    foreach (var content in update.Contents)
        if (content is UsageContent usage) outputTokens = usage.Details.OutputTokenCount;
}
Console.WriteLine();
Console.Error.WriteLine($"finish: {finish?.Value ?? "none"}, {outputTokens} tokens");
return 0;
