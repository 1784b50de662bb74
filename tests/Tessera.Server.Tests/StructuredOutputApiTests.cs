#pragma warning disable OPENAI001 // Seed: evaluation-only in the client, honoured by this server
using System.ClientModel;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace Tessera.Server.Tests;

/// <summary>response_format through the OpenAI client and plain HTTP: output validates; bad schemas are 400s and the server keeps serving.</summary>
[Collection(ToolsCollection.Name)]
public class StructuredOutputApiTests(ToolsFixture f)
{
    ChatClient Client() => new(ToolsFixture.ModelId, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = f.ApiBase });

    const string Schema = """{"type":"object","properties":{"city":{"type":"string","maxLength":12},"days":{"type":"integer","minimum":1,"maximum":14},"units":{"enum":["metric","imperial"]},"tags":{"type":"array","items":{"type":"boolean"},"maxItems":3}},"required":["city","days"],"additionalProperties":false}""";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task JsonSchemaRepliesValidate(bool stream)
    {
        for (int seed = 0; seed < 4; seed++)
        {
            var options = new ChatCompletionOptions
            {
                Temperature = 1, Seed = seed, MaxOutputTokenCount = 120,
                ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("forecast", BinaryData.FromString(Schema), jsonSchemaIsStrict: true),
            };
            List<ChatMessage> messages = [new UserChatMessage("Weather for Lyon?")];
            string reply;
            if (!stream) reply = (await Client().CompleteChatAsync(messages, options)).Value.Content[0].Text;
            else
            {
                var sb = new System.Text.StringBuilder();
                await foreach (var u in Client().CompleteChatStreamingAsync(messages, options))
                    foreach (var part in u.ContentUpdate) sb.Append(part.Text);
                reply = sb.ToString();
            }
            Assert.Null(ToolsFixture.Validate(Schema, reply));
        }
    }

    [Fact]
    public async Task JsonObjectAndChoiceConstrainTheReply()
    {
        var options = new ChatCompletionOptions { Temperature = 1, Seed = 3, MaxOutputTokenCount = 60, ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat() };
        string reply = (await Client().CompleteChatAsync([new UserChatMessage("Give JSON")], options)).Value.Content[0].Text;
        using (var doc = JsonDocument.Parse(reply)) Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);

        for (int seed = 0; seed < 5; seed++)
        {
            var (status, body) = await f.PostAsync("v1/chat/completions", Fill("""
                {"model":"@ToolsFixture.ModelId@","messages":[{"role":"user","content":"yes or no?"}],"seed":@seed@,"max_tokens":10,
                 "response_format":{"type":"choice","choices":["yes","no","maybe so"]}}
                """, ("ToolsFixture.ModelId", ToolsFixture.ModelId), ("seed", seed)));
            Assert.Equal(200, status);
            Assert.Contains(body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), (string[])["yes", "no", "maybe so"]);
        }
        // Completions take the same constraint, ending at <|eos|>.
        var (s2, b2) = await f.PostAsync("v1/completions", Fill("""{"model":"@ToolsFixture.ModelId@","prompt":"x","max_tokens":8,"response_format":{"type":"choice","choices":["red","green"]}}""", ("ToolsFixture.ModelId", ToolsFixture.ModelId)));
        Assert.Equal(200, s2);
        Assert.Contains(b2.GetProperty("choices")[0].GetProperty("text").GetString(), (string[])["red", "green"]);

        // The regex extension: the whole reply matches the pattern (checked by .NET's own engine).
        var pattern = new System.Text.RegularExpressions.Regex(@"^(?:\d{3}-[a-z]{2}( ok)?)\z", System.Text.RegularExpressions.RegexOptions.ECMAScript);
        for (int seed = 0; seed < 5; seed++)
        {
            var (status, body) = await f.PostAsync("v1/chat/completions", Fill("""
                {"model":"@ToolsFixture.ModelId@","messages":[{"role":"user","content":"a code?"}],"seed":@seed@,"max_tokens":12,
                 "response_format":{"type":"regex","pattern":"\\d{3}-[a-z]{2}( ok)?"}}
                """, ("ToolsFixture.ModelId", ToolsFixture.ModelId), ("seed", seed)));
            Assert.Equal(200, status);
            string text = body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
            Assert.True(pattern.IsMatch(text), text);
        }
    }

    [Theory]
    [InlineData("""{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"a+"}}}""", "pattern")]
    [InlineData("""{"type":"json_schema","json_schema":{"name":"x","schema":{"$ref":"#"}}}""", "no finite instance")]
    [InlineData("""{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"$ref":"#"}},"required":["a"]}}}""", "no finite instance")]
    [InlineData("""{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"type":"strin"}}}}}""", "unknown type")]
    [InlineData("""{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","minLength":100}}}""", "budget")]
    [InlineData("""{"type":"json_schema"}""", "json_schema")]
    [InlineData("""{"type":"xml"}""", "response_format.type")]
    [InlineData("""{"type":"choice","choices":[]}""", "choices")]
    [InlineData("""{"type":"regex"}""", "response_format.pattern")]
    [InlineData("""{"type":"regex","pattern":"(ab"}""", "unclosed '('")]
    [InlineData("""{"type":"regex","pattern":"(a)\\1"}""", "not supported")]
    [InlineData("\"json\"", "response_format")]
    public async Task BadFormatsAre400sAndTheServerKeepsServing(string format, string mention)
    {
        var (status, body) = await f.PostAsync("v1/chat/completions", Fill("""{"model":"@ToolsFixture.ModelId@","messages":[{"role":"user","content":"hi"}],"max_tokens":20,"response_format":@format@}""", ("ToolsFixture.ModelId", ToolsFixture.ModelId), ("format", format)));
        Assert.Equal(400, status);
        var error = body.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains(mention, error.GetProperty("message").GetString() + " " + error.GetProperty("param").GetString());
        var (ok, _) = await f.PostAsync("v1/chat/completions", Fill("""{"model":"@ToolsFixture.ModelId@","messages":[{"role":"user","content":"hi"}],"max_tokens":3}""", ("ToolsFixture.ModelId", ToolsFixture.ModelId)));
        Assert.Equal(200, ok);
    }

    [Fact]
    public async Task TooLargeSchemasAre400s()
    {
        string values = string.Join(",", Enumerable.Range(0, 3000));
        var (status, body) = await f.PostAsync("v1/chat/completions", Fill("""{"model":"@ToolsFixture.ModelId@","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"enum":[@values@]}}}}""", ("ToolsFixture.ModelId", ToolsFixture.ModelId), ("values", values)));
        Assert.Equal(400, status);
        Assert.Contains("more than", body.GetProperty("error").GetProperty("message").GetString());
    }

    static string Fill(string template, params (string Name, object Value)[] values)
    {
        foreach (var (n, v) in values) template = template.Replace("@" + n + "@", Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture));
        return template;
    }
}
