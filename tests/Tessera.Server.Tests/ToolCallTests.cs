#pragma warning disable OPENAI001 // Seed: evaluation-only in the client, honoured by this server
using System.ClientModel;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using AiMessage = Microsoft.Extensions.AI.ChatMessage;
using ChatMessage = OpenAI.Chat.ChatMessage;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;

namespace Tessera.Server.Tests;

/// <summary>
/// Function calling: the official OpenAI client runs a two-step tool conversation (streaming and
/// not); FunctionInvokingChatClient over TesseraChatClient calls a C# function and the next turn's
/// prompt holds its result; malformed tools are 400s. A tiny random model is made to call through
/// tool_choice (required / named), which is what the protocol needs.
/// </summary>
[Collection(ToolsCollection.Name)]
public class ToolCallTests(ToolsFixture f)
{
    ChatClient Client() => new(ToolsFixture.ModelId, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = f.ApiBase });

    const string WeatherSchema = """{"type":"object","properties":{"city":{"type":"string","maxLength":10},"unit":{"enum":["c","f"]}},"required":["city","unit"],"additionalProperties":false}""";
    const string TimeSchema = """{"type":"object","properties":{"zone":{"type":"integer","minimum":-12,"maximum":14}},"required":["zone"]}""";

    static ChatCompletionOptions Options(ChatToolChoice choice, int seed) => new()
    {
        Temperature = 1, Seed = seed, MaxOutputTokenCount = 100, ToolChoice = choice,
        Tools =
        {
            ChatTool.CreateFunctionTool("get_weather", "Current weather in a city", BinaryData.FromString(WeatherSchema)),
            ChatTool.CreateFunctionTool("get_time", "Local time in a UTC offset", BinaryData.FromString(TimeSchema)),
        },
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task OpenAiClientCompletesATwoStepToolConversation(bool stream)
    {
        for (int seed = 0; seed < 3; seed++)
        {
            List<ChatMessage> messages = [new UserChatMessage("What's the weather in Lyon?")];
            // Step 1: the model must call a function; its arguments validate against that function's schema.
            var (id, name, args, finish) = stream ? await StreamCall(messages, Options(ChatToolChoice.CreateRequiredChoice(), seed)) : await Call(messages, Options(ChatToolChoice.CreateRequiredChoice(), seed));
            Assert.Equal("tool_calls", finish);
            Assert.StartsWith("call_", id);
            Assert.Contains(name, (string[])["get_weather", "get_time"]);
            Assert.Null(ToolsFixture.Validate(name == "get_weather" ? WeatherSchema : TimeSchema, args));

            // Step 2: the call and its result go back; the reply is text (tool_choice none) built on a prompt holding the result.
            messages.Add(new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall(id, name, BinaryData.FromString(args))]));
            messages.Add(new ToolChatMessage(id, """{"temperature":21,"sky":"clear-sky-marker"}"""));
            var options = Options(ChatToolChoice.CreateNoneChoice(), seed);
            options.MaxOutputTokenCount = 12;
            if (!stream)
            {
                var reply = (await Client().CompleteChatAsync(messages, options)).Value;
                Assert.Empty(reply.ToolCalls);
                Assert.Equal(ChatFinishReason.Length, reply.FinishReason);
            }
            else
            {
                int chunks = 0; ChatFinishReason? end = null;
                await foreach (var u in Client().CompleteChatStreamingAsync(messages, options)) { chunks++; end = u.FinishReason ?? end; Assert.Empty(u.ToolCallUpdates); }
                Assert.True(chunks > 1);
                Assert.Equal(ChatFinishReason.Length, end);
            }
            Assert.Contains("clear-sky-marker", f.Engine.Prompts[^1]);
            Assert.Contains(args, f.Engine.Prompts[^1]);
        }
    }

    [Fact]
    public async Task NamedToolChoiceCallsThatFunctionAndAutoMayCallOrTalk()
    {
        for (int seed = 0; seed < 3; seed++)
        {
            var (_, name, args, _) = await Call([new UserChatMessage("Time in Tokyo?")], Options(ChatToolChoice.CreateFunctionChoice("get_time"), seed));
            Assert.Equal("get_time", name);
            Assert.Null(ToolsFixture.Validate(TimeSchema, args));
        }
        // auto: whatever the model does is either a valid call or plain text that is not a broken call.
        for (int seed = 0; seed < 4; seed++)
        {
            var reply = (await Client().CompleteChatAsync([new UserChatMessage("Hello")], Options(ChatToolChoice.CreateAutoChoice(), seed))).Value;
            if (reply.ToolCalls.Count > 0) Assert.Null(ToolsFixture.Validate(reply.ToolCalls[0].FunctionName == "get_weather" ? WeatherSchema : TimeSchema, reply.ToolCalls[0].FunctionArguments.ToString()));
            else Assert.DoesNotContain("<tool_call>", reply.Content.Count > 0 ? reply.Content[0].Text : "");
        }
    }

    async Task<(string Id, string Name, string Args, string Finish)> Call(List<ChatMessage> messages, ChatCompletionOptions options)
    {
        var r = (await Client().CompleteChatAsync(messages, options)).Value;
        var call = Assert.Single(r.ToolCalls);
        return (call.Id, call.FunctionName, call.FunctionArguments.ToString(), r.FinishReason == ChatFinishReason.ToolCalls ? "tool_calls" : r.FinishReason.ToString());
    }

    async Task<(string Id, string Name, string Args, string Finish)> StreamCall(List<ChatMessage> messages, ChatCompletionOptions options)
    {
        string? id = null, name = null, finish = null;
        var args = new StringBuilder();
        await foreach (var u in Client().CompleteChatStreamingAsync(messages, options))
        {
            foreach (var t in u.ToolCallUpdates)
            {
                Assert.Equal(0, t.Index);
                id ??= t.ToolCallId; name ??= t.FunctionName;
                if (t.FunctionArgumentsUpdate is { } a) args.Append(a.ToString());
            }
            if (u.FinishReason is { } fr) finish = fr == ChatFinishReason.ToolCalls ? "tool_calls" : fr.ToString();
        }
        return (id!, name!, args.ToString(), finish!);
    }

    [Fact]
    public async Task FunctionInvokingChatClientCallsACSharpFunctionAndUsesItsResult()
    {
        int calls = 0;
        int? seenZone = null;
        var fn = AIFunctionFactory.Create((int zone) => { calls++; seenZone = zone; return $"local-time-marker-{zone + 100}"; }, "get_time", "Local time in a UTC offset");
        using var client = new FunctionInvokingChatClient(new TesseraChatClient(f.Served));
        var options = new ChatOptions { Tools = [fn], ToolMode = ChatToolMode.RequireSpecific("get_time"), Temperature = 1, Seed = 5, MaxOutputTokens = 100 };
        int before = f.Engine.Prompts.Count;
        var response = await client.GetResponseAsync([new AiMessage(ChatRole.User, "What time is it in Tokyo?")], options);
        Assert.True(calls >= 1);
        var result = response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().First();
        Assert.Contains($"local-time-marker-{seenZone + 100}", JsonSerializer.Serialize(result.Result));
        // The turn after the call was prompted with the function's result.
        Assert.Contains(f.Engine.Prompts.Skip(before + 1), p => p.Contains($"local-time-marker-{seenZone + 100}"));
        Assert.Equal(ChatRole.Assistant, response.Messages[^1].Role);
    }

    [Theory]
    [InlineData("""[{"type":"function","function":{"name":"f","parameters":{"type":"strin"}}}]""", "auto", "unknown type")]
    [InlineData("""[{"type":"function","function":{"name":"f","parameters":{"$ref":"#"}}}]""", "auto", "no finite instance")]
    [InlineData("""[{"type":"function","function":{"name":"bad name!"}}]""", "auto", "Invalid function name")]
    [InlineData("""[{"type":"retrieval"}]""", "auto", "function")]
    [InlineData("""{"type":"function"}""", "auto", "tools")]
    [InlineData("""[{"type":"function","function":{"name":"f"}}]""", "{\"type\":\"function\",\"function\":{\"name\":\"g\"}}", "'g'")]
    [InlineData("""[{"type":"function","function":{"name":"f"}}]""", "\"sometimes\"", "tool_choice")]
    public async Task MalformedToolsAre400s(string tools, string choice, string mention)
    {
        if (!choice.StartsWith('{') && !choice.StartsWith('"')) choice = $"\"{choice}\"";
        var (status, body) = await f.PostAsync("v1/chat/completions", Fill("""{"model":"@ToolsFixture.ModelId@","messages":[{"role":"user","content":"hi"}],"max_tokens":20,"tools":@tools@,"tool_choice":@choice@}""", ("ToolsFixture.ModelId", ToolsFixture.ModelId), ("tools", tools), ("choice", choice)));
        Assert.Equal(400, status);
        Assert.Contains(mention, body.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task ToolResultsThatAreNotJsonAre400s()
    {
        var (status, body) = await f.PostAsync("v1/chat/completions", Fill("""
            {"model":"@ToolsFixture.ModelId@","max_tokens":5,"messages":[{"role":"user","content":"hi"},
             {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
             {"role":"tool","tool_call_id":"call_1","content":"sunny, 21 degrees"}]}
            """, ("ToolsFixture.ModelId", ToolsFixture.ModelId)));
        Assert.Equal(400, status);
        Assert.Equal("messages[2].content", body.GetProperty("error").GetProperty("param").GetString());
        var (status2, _) = await f.PostAsync("v1/chat/completions", Fill("""
            {"model":"@ToolsFixture.ModelId@","max_tokens":5,"messages":[{"role":"user","content":"hi"},
             {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{not json"}}]}]}
            """, ("ToolsFixture.ModelId", ToolsFixture.ModelId)));
        Assert.Equal(400, status2);
    }

    static string Fill(string template, params (string Name, object Value)[] values)
    {
        foreach (var (n, v) in values) template = template.Replace("@" + n + "@", Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture));
        return template;
    }
}
