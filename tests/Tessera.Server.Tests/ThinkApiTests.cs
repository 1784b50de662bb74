#pragma warning disable SCME0001, OPENAI001   // JsonPatch (how the OpenAI client sends an extension field) and Seed are marked experimental
using System.ClientModel;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace Tessera.Server.Tests;

/// <summary>The <c>tessera_think</c> extension of chat completions: a round trip with the official OpenAI client, and its bad inputs.</summary>
[Collection(ToolsCollection.Name)]
public class ThinkApiTests(ToolsFixture f)
{
    ChatClient Client() => new(ToolsFixture.ModelId, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = f.ApiBase });

    static string Body(string extra) => "{\"model\":\"" + ToolsFixture.ModelId + "\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 12+7*5?\"}],\"max_tokens\":24," + extra + "}";

    [Fact]
    public async Task OpenAiClientRunsAVoteAndGetsOneOfTheSamples()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 24, Seed = 11 };
        options.Patch.Set("$.tessera_think"u8, BinaryData.FromString("""{"strategy":"vote","n":4,"calculator":true,"temperature":1}"""));
        var result = await Client().CompleteChatAsync([new UserChatMessage("What is 12+7*5?")], options);
        using var raw = JsonDocument.Parse(result.GetRawResponse().Content.ToString());
        var think = raw.RootElement.GetProperty("tessera_think");
        Assert.Equal("vote", think.GetProperty("strategy").GetString());
        Assert.Equal(4, think.GetProperty("completions").GetInt32());
        Assert.True(think.GetProperty("calculator").GetBoolean());
        string content = result.Value.Content[0].Text;

        // Each sample i is the plain reply with seed 11 + i, temperature 1, cut at the first newline
        // (a random model writes no "<<", so the calculator is never called); the vote returns one of them.
        var samples = new List<string>();
        int tokens = 0;
        for (int i = 0; i < 4; i++)
        {
            var (s, single) = await f.PostAsync("v1/chat/completions", Body($"\"seed\":{11 + i},\"temperature\":1,\"stop\":[\"\\n\"]"));
            Assert.Equal(200, s);
            samples.Add(single.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!);
            tokens += single.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        }
        Assert.Contains(content, samples);
        // Usage counts every sample's tokens.
        Assert.Equal(tokens, result.Value.Usage.OutputTokenCount);

        // Greedy through the extension is the plain greedy reply.
        var (gs, greedy) = await f.PostAsync("v1/chat/completions", Body("\"tessera_think\":{\"strategy\":\"greedy\"}"));
        var (ps, plain) = await f.PostAsync("v1/chat/completions", Body("\"temperature\":0,\"stop\":[\"\\n\"]"));
        Assert.Equal(200, gs);
        Assert.Equal(200, ps);
        Assert.Equal(plain.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(),
            greedy.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Theory]
    [InlineData("\"tessera_think\":{\"strategy\":\"vote\",\"n\":65}", "tessera_think.n")]
    [InlineData("\"tessera_think\":{\"strategy\":\"vote\",\"n\":0}", "tessera_think.n")]
    [InlineData("\"tessera_think\":{\"strategy\":\"majority\"}", "tessera_think.strategy")]
    [InlineData("\"tessera_think\":{\"strategy\":3}", "tessera_think.strategy")]
    [InlineData("\"tessera_think\":{\"calculator\":\"yes\"}", "tessera_think.calculator")]
    [InlineData("\"tessera_think\":{\"temperature\":0}", "tessera_think.temperature")]
    [InlineData("\"tessera_think\":{\"budget\":9}", "tessera_think.budget")]
    [InlineData("\"tessera_think\":\"vote\"", "tessera_think")]
    [InlineData("\"tessera_think\":{\"strategy\":\"vote\"},\"stream\":true", "tessera_think")]
    [InlineData("\"tessera_think\":{\"strategy\":\"vote\"},\"n\":2", "tessera_think")]
    [InlineData("\"tessera_think\":{\"strategy\":\"vote\"},\"response_format\":{\"type\":\"json_object\"}", "tessera_think")]
    public async Task BadThinkRequestsAre400sAndTheServerKeepsServing(string extra, string param)
    {
        var (status, body) = await f.PostAsync("v1/chat/completions", Body(extra));
        Assert.Equal(400, status);
        var error = body.GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        var (ok, _) = await f.PostAsync("v1/chat/completions", Body("\"tessera_think\":{\"strategy\":\"verify\",\"n\":2}"));
        Assert.Equal(200, ok);
    }
}
