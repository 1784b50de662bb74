using System.ClientModel;
using System.Text;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;
using TextMessage = Tessera.Text.ChatMessage;

namespace Tessera.Server.Tests;

/// <summary>Chat, models and health through the official OpenAI .NET client against a live server.</summary>
[Collection(ServerCollection.Name)]
public class ChatApiTests(ServerFixture f)
{
    ChatClient Client() => new(ServerFixture.ModelId, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = f.ApiBase });

    static ChatCompletionOptions Greedy(int maxTokens) => new() { Temperature = 0, MaxOutputTokenCount = maxTokens };

    [Fact]
    public async Task ModelsAndHealthDescribeTheServedModel()
    {
        var models = new OpenAIModelClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = f.ApiBase });
        var list = (await models.GetModelsAsync()).Value;
        Assert.Equal(ServerFixture.ModelId, Assert.Single(list).Id);
        Assert.Equal(ServerFixture.ModelId, (await models.GetModelAsync(ServerFixture.ModelId)).Value.Id);
        var health = await f.Http.GetStringAsync(new Uri(f.Server.Address, "health"));
        Assert.Contains("\"status\":\"ok\"", health);
        Assert.Equal("127.0.0.1", f.Server.Address.Host);
    }

    [Fact]
    public async Task LogitBiasSteersTheReplyAsTheEngineDoes()
    {
        TextMessage[] messages = [new("user", "Hello there")];
        var plain = await TestModel.GreedyChat(f.Reference, messages, 6);
        var prompt = Text.ChatTemplate.Encode(TestModel.Tokenizer, messages, addGenerationPrompt: true);
        int first = f.Reference.GenerateAsync(new Inference.GenerationRequest(prompt, 1, Inference.SamplingOptions.Greedy)).ToBlockingEnumerable().First().Id;
        int forced = TestModel.Tokenizer.Encode("Q")[0];
        // Ban the greedy first token and push 'Q' up: the server must give exactly the engine's biased greedy reply.
        var bias = new Dictionary<int, float> { [first] = -100, [forced] = 5 };
        var expected = await TestModel.GreedyChat(f.Reference, messages, 6, Inference.SamplingOptions.Greedy with { LogitBias = bias });
        Assert.NotEqual(plain.Text, expected.Text);
        var options = Greedy(6);
        foreach (var (id, b) in bias) options.LogitBiases.Add(id, (int)b);
        var result = (await Client().CompleteChatAsync([new UserChatMessage("Hello there")], options)).Value;
        Assert.Equal(expected.Text, result.Content.Count == 0 ? "" : result.Content[0].Text);
        // +100 forces one token everywhere.
        var force = Greedy(5);
        force.LogitBiases.Add(forced, 100);
        var forcedReply = (await Client().CompleteChatAsync([new UserChatMessage("Hello there")], force)).Value;
        Assert.Equal("QQQQQ", forcedReply.Content[0].Text);
    }

    [Fact]
    public async Task NonStreamingChatIsTheEnginesGreedyReplyWithUsage()
    {
        var expected = await TestModel.GreedyChat(f.Reference, [new TextMessage("system", "Be brief."), new TextMessage("user", "Hello there")], 24);
        var result = (await Client().CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("Hello there")], Greedy(24))).Value;
        Assert.Equal(expected.Text, result.Content.Count == 0 ? "" : result.Content[0].Text);
        Assert.Equal(ChatMessageRole.Assistant, result.Role);
        Assert.Equal(expected.PromptTokens, result.Usage.InputTokenCount);
        Assert.Equal(expected.CompletionTokens, result.Usage.OutputTokenCount);
        Assert.Equal(expected.PromptTokens + expected.CompletionTokens, result.Usage.TotalTokenCount);
        Assert.Equal(expected.Finish == Inference.FinishReason.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length, result.FinishReason);
        Assert.Equal(ServerFixture.ModelId, result.Model);
    }

    [Fact]
    public async Task StreamingChatArrivesInPiecesThatAddUpToTheGreedyReply()
    {
        var expected = await TestModel.GreedyChat(f.Reference, [new TextMessage("user", "Tell me a story")], 30);
        Assert.True(expected.Text.Length > 4, "the test model should say something for this prompt");
        var text = new StringBuilder();
        int pieces = 0;
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var u in Client().CompleteChatStreamingAsync([new UserChatMessage("Tell me a story")], Greedy(30)))
        {
            foreach (var part in u.ContentUpdate) { text.Append(part.Text); pieces++; }
            usage ??= u.Usage;
            finish ??= u.FinishReason;
        }
        Assert.Equal(expected.Text, text.ToString());
        Assert.True(pieces > 1, $"expected several streamed pieces, got {pieces}");
        Assert.NotNull(usage);
        Assert.Equal(expected.PromptTokens, usage!.InputTokenCount);
        Assert.Equal(expected.CompletionTokens, usage.OutputTokenCount);
        Assert.NotNull(finish);
    }

    [Fact]
    public async Task RawStreamIsServerSentEventsEndingWithDone()
    {
        string body = $$"""{"model":"{{ServerFixture.ModelId}}","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":5,"temperature":0}""";
        using var r = await f.Http.PostAsync(new Uri(f.Server.Address, "v1/chat/completions"), new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal("text/event-stream", r.Content.Headers.ContentType?.MediaType);
        string all = await r.Content.ReadAsStringAsync();
        var events = all.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        Assert.Contains("\"role\":\"assistant\"", events[0]);
        Assert.Contains("\"finish_reason\":\"", events[^2]);   // the last chunk before [DONE] carries the finish reason
        Assert.DoesNotContain("\"usage\"", all);                // usage only when stream_options asks for it
    }

    [Fact]
    public async Task StopStringTrimsTheReplyAndCancelsTheEngineSequence()
    {
        var full = await TestModel.GreedyChat(f.Reference, [new TextMessage("user", "Tell me a story")], 30);
        Assert.True(full.Text.Length >= 8, "the test model should say something for this prompt");
        string stop = full.Text.Substring(4, 3);
        string expected = full.Text[..full.Text.IndexOf(stop, StringComparison.Ordinal)];
        int cancelledBefore = f.Engine.Cancelled;
        var options = Greedy(30);
        options.StopSequences.Add(stop);
        var result = (await Client().CompleteChatAsync([new UserChatMessage("Tell me a story")], options)).Value;
        Assert.Equal(expected, result.Content.Count == 0 ? "" : result.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, result.FinishReason);
        Assert.True(result.Usage.OutputTokenCount < full.CompletionTokens, "generation should end at the stop string, not the budget");
        Assert.True(f.Engine.Cancelled > cancelledBefore, "the engine sequence should be cancelled when a stop string appears");
    }

    [Fact]
    public async Task LogprobsOfTheReplyMatchTheEngine()
    {
        var options = Greedy(6);
        options.IncludeLogProbabilities = true;
        options.TopLogProbabilityCount = 3;
        var result = (await Client().CompleteChatAsync([new UserChatMessage("abc")], options)).Value;

        var prompt = Text.ChatTemplate.Encode(TestModel.Tokenizer, [new TextMessage("user", "abc")], true);
        var events = new List<Inference.TokenEvent>();
        await foreach (var e in f.Reference.GenerateAsync(new Inference.GenerationRequest(prompt, 6, Inference.SamplingOptions.Greedy, f.Served.ChatStopIds, 3))) events.Add(e);
        if (events[^1].Finish == Inference.FinishReason.Stop) events.RemoveAt(events.Count - 1);   // the stop token is not part of the reply

        Assert.NotEmpty(events);
        Assert.Equal(events.Count, result.ContentTokenLogProbabilities.Count);
        for (int i = 0; i < events.Count; i++)
        {
            var lp = result.ContentTokenLogProbabilities[i];
            Assert.Equal(TestModel.Tokenizer.DecodeBytes([events[i].Id]), lp.Utf8Bytes?.ToArray());
            Assert.Equal(events[i].Logprob, lp.LogProbability);
            Assert.Equal(3, lp.TopLogProbabilities.Count);
            for (int k = 0; k < 3; k++)
            {
                Assert.Equal(TestModel.Tokenizer.DecodeBytes([events[i].Top[k].Id]), lp.TopLogProbabilities[k].Utf8Bytes?.ToArray());
                Assert.Equal(events[i].Top[k].Logprob, lp.TopLogProbabilities[k].LogProbability);
            }
        }
    }

    [Fact]
    public async Task ConcurrentRequestsEachGetTheirOwnReply()
    {
        string[] prompts = ["one", "two two", "three three three", "four"];
        var expected = new List<string>();
        foreach (var p in prompts) expected.Add((await TestModel.GreedyChat(f.Reference, [new TextMessage("user", p)], 12)).Text);
        var client = Client();
        var results = await Task.WhenAll(prompts.Select(p => client.CompleteChatAsync([new UserChatMessage(p)], Greedy(12))));
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(expected[i], results[i].Value.Content.Count == 0 ? "" : results[i].Value.Content[0].Text);
    }

    [Fact]
    public async Task TheSameSeedGivesTheSameSample()
    {
        var options = new ChatCompletionOptions { Temperature = 1, MaxOutputTokenCount = 16 };
#pragma warning disable OPENAI001 // Seed is marked experimental in the client
        options.Seed = 1234;
#pragma warning restore OPENAI001
        var a = (await Client().CompleteChatAsync([new UserChatMessage("roll")], options)).Value;
        var b = (await Client().CompleteChatAsync([new UserChatMessage("roll")], options)).Value;
        Assert.Equal(a.Content.Count == 0 ? "" : a.Content[0].Text, b.Content.Count == 0 ? "" : b.Content[0].Text);
    }
}
