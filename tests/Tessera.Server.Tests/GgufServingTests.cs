using System.ClientModel;
using OpenAI;
using OpenAI.Chat;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Model.Architectures;
using Tessera.Model.Checkpoints;
using TextMessage = Tessera.Text.ChatMessage;

namespace Tessera.Server.Tests;

/// <summary>
/// What <c>tessera serve --model file.gguf</c> runs: a GGUF file (here a Gemma2-family model, with
/// Q8_0 and with Q4_K weights) loaded as stored by <see cref="GgufWeights"/> onto the batching
/// engine behind the live server, checked through the official OpenAI client against the same
/// engine's greedy reply, streaming and not.
/// </summary>
public class GgufServingTests
{
    [Theory]
    [InlineData(GgufWeightType.Q8_0)]
    [InlineData(GgufWeightType.Q4_K)]
    public async Task AQuantizedGgufIsServedOnTheBatchingEngine(GgufWeightType type)
    {
        // 256-wide rows so Q4_K keeps whole super-blocks.
        var config = ArchitectureRegistry.Get("gemma2").Apply(TestModel.Config() with
        {
            Dim = 256, HiddenDim = 256, Heads = 2, KvHeads = 1, HeadDim = 64, Experts = 1, TopK = 1, SlidingWindow = 8,
            AttentionSoftCap = 50f, FinalSoftCap = 30f, TiedEmbeddings = true,
        });
        string path = Path.Combine(Path.GetTempPath(), $"tessera-serve-{type}-{Environment.ProcessId}.gguf");
        try
        {
            using (var model = new Transformer(config, seed: 5))
            {
                foreach (var t in model.Parameters.All)
                    if (t.Rank == 2 && t.Name.StartsWith("model.layers.", StringComparison.Ordinal))
                        foreach (ref float w in t.AsSpan()) w *= 4f;
                GgufModel.Save(model, path, new GgufExportOptions { Type = type });
            }
            var weights = GgufWeights.Load(path);
            Assert.Equal(config, weights.Config);
            Assert.Contains(weights.Layers[0].Qkv.GetType().Name, new[] { "QuantizedWeights", "StackedWeights" });

            using var engine = new BatchingEngine(weights);
            var served = new ServedModel("gguf", engine, TestModel.Tokenizer);
            await using var server = await TesseraServer.StartAsync(served, new ServerOptions { Port = 0 });
            var client = new ChatClient("gguf", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Address, "v1/") });

            TextMessage[] messages = [new("user", "Hello there")];
            var expected = await TestModel.GreedyChat(engine, messages, 12);
            var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 };
            var reply = (await client.CompleteChatAsync([new UserChatMessage("Hello there")], options)).Value;
            Assert.Equal(expected.Text, reply.Content.Count == 0 ? "" : reply.Content[0].Text);
            Assert.Equal(expected.CompletionTokens, reply.Usage.OutputTokenCount);

            var streamed = new System.Text.StringBuilder();
            await foreach (var u in client.CompleteChatStreamingAsync([new UserChatMessage("Hello there")], options))
                foreach (var part in u.ContentUpdate) streamed.Append(part.Text);
            Assert.Equal(expected.Text, streamed.ToString());
        }
        finally { File.Delete(path); }
    }
}
