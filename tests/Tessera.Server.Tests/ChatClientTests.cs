using System.Text;
using Microsoft.Extensions.AI;
using Tessera.Inference;
using Tessera.Model;
using TextMessage = Tessera.Text.ChatMessage;

namespace Tessera.Server.Tests;

/// <summary>The in-process <see cref="IChatClient"/> gives the same replies as the engine and the HTTP API.</summary>
public class ChatClientTests
{
    [Fact]
    public async Task ResponsesAndStreamingUpdatesAreTheEnginesGreedyReply()
    {
        using var model = new Transformer(TestModel.Config(), seed: 21);
        var engine = new ReferenceEngine(model);
        IChatClient client = new TesseraChatClient(new ServedModel("local", engine, TestModel.Tokenizer));
        var expected = await TestModel.GreedyChat(engine, [new TextMessage("system", "Be kind."), new TextMessage("user", "What is a tessera?")], 20);
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 20, Instructions = "Be kind." };

        var response = await client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, "What is a tessera?")], options);
        Assert.Equal(expected.Text, response.Text);
        Assert.Equal(expected.PromptTokens, response.Usage!.InputTokenCount);
        Assert.Equal(expected.CompletionTokens, response.Usage.OutputTokenCount);
        Assert.Equal(expected.Finish == FinishReason.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length, response.FinishReason);

        var text = new StringBuilder();
        UsageDetails? usage = null;
        await foreach (var u in client.GetStreamingResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, "What is a tessera?")], options))
        {
            text.Append(u.Text);
            foreach (var c in u.Contents) if (c is UsageContent uc) usage = uc.Details;
        }
        Assert.Equal(expected.Text, text.ToString());
        Assert.Equal(expected.CompletionTokens, usage!.OutputTokenCount);
        Assert.Equal("local", client.GetService<ChatClientMetadata>()!.DefaultModelId);
    }

    [Fact]
    public async Task UnsupportedOptionsAndOverlongPromptsAreRefused()
    {
        using var model = new Transformer(TestModel.Config(context: 32), seed: 22);
        IChatClient client = new TesseraChatClient(new ServedModel("local", new ReferenceEngine(model), TestModel.Tokenizer));
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync("hi", new ChatOptions { PresencePenalty = 3 }));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(new string('x', 40)));
        Assert.Contains("context", e.Message);
    }
}
