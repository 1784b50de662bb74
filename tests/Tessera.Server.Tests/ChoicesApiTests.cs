using System.Text.Json;
using Tessera.Inference;
using TextMessage = Tessera.Text.ChatMessage;

namespace Tessera.Server.Tests;

/// <summary>n, best_of, per-choice seeds and penalties through the HTTP API, against single-choice requests and the engine.</summary>
[Collection(ToolsCollection.Name)]
public class ChoicesApiTests(ToolsFixture f)
{
    static string Body(string extra) => "{\"model\":\"" + ToolsFixture.ModelId + "\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story\"}],\"max_tokens\":12," + extra + "}";

    static string Content(JsonElement choice) => choice.GetProperty("message").GetProperty("content").GetString()!;

    [Fact]
    public async Task ChoiceIIsTheSingleReplyWithSeedPlusI()
    {
        var (status, body) = await f.PostAsync("v1/chat/completions", Body("\"n\":4,\"seed\":40,\"temperature\":1"));
        Assert.Equal(200, status);
        var choices = body.GetProperty("choices");
        Assert.Equal(4, choices.GetArrayLength());
        var seen = new HashSet<string>();
        int total = 0;
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(i, choices[i].GetProperty("index").GetInt32());
            var (s1, single) = await f.PostAsync("v1/chat/completions", Body($"\"seed\":{40 + i},\"temperature\":1"));
            Assert.Equal(200, s1);
            Assert.Equal(Content(single.GetProperty("choices")[0]), Content(choices[i]));
            total += single.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
            seen.Add(Content(choices[i]));
        }
        Assert.True(seen.Count > 1);
        Assert.Equal(total, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task StreamedChoicesCarryTheirIndex()
    {
        using var r = await f.Http.PostAsync(new Uri(f.Server.Address, "v1/chat/completions"),
            new StringContent(Body("\"n\":3,\"seed\":7,\"stream\":true"), System.Text.Encoding.UTF8, "application/json"));
        string sse = await r.Content.ReadAsStringAsync();
        var text = new System.Text.StringBuilder[3];
        for (int i = 0; i < 3; i++) text[i] = new();
        int finished = 0;
        foreach (var line in sse.Split('\n'))
        {
            if (!line.StartsWith("data: {")) continue;
            using var doc = JsonDocument.Parse(line[6..]);
            foreach (var c in doc.RootElement.GetProperty("choices").EnumerateArray())
            {
                int i = c.GetProperty("index").GetInt32();
                if (c.GetProperty("delta").TryGetProperty("content", out var t)) text[i].Append(t.GetString());
                if (c.GetProperty("finish_reason").ValueKind == JsonValueKind.String) finished++;
            }
        }
        Assert.EndsWith("data: [DONE]\n\n", sse);
        Assert.Equal(3, finished);
        for (int i = 0; i < 3; i++)
        {
            var (_, single) = await f.PostAsync("v1/chat/completions", Body($"\"seed\":{7 + i}"));
            Assert.Equal(Content(single.GetProperty("choices")[0]), text[i].ToString());
        }
    }

    [Fact]
    public async Task BestOfKeepsTheCandidatesWithTheHighestMeanLogprob()
    {
        string Completion(string extra) => "{\"model\":\"" + ToolsFixture.ModelId + "\",\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":1.3," + extra + "}";
        var (status, body) = await f.PostAsync("v1/completions", Completion("\"n\":2,\"best_of\":5,\"seed\":100"));
        Assert.Equal(200, status);
        var scored = new List<(string Text, double Mean)>();
        for (int i = 0; i < 5; i++)
        {
            var (_, one) = await f.PostAsync("v1/completions", Completion($"\"seed\":{100 + i},\"logprobs\":1"));
            var c = one.GetProperty("choices")[0];
            var lps = c.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Select(x => x.GetDouble()).ToList();
            // Both sides average the logprobs of the reply's own tokens (a closing <|eos|> has no entry in either).
            scored.Add((c.GetProperty("text").GetString()!, lps.Average()));
        }
        var expected = scored.OrderByDescending(s => s.Mean).Take(2).Select(s => s.Text).ToList();
        var got = body.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("text").GetString()!).ToList();
        Assert.Equal(expected, got);
    }

    [Fact]
    public async Task PenaltiesGiveTheEnginesPenalisedReply()
    {
        TextMessage[] messages = [new("user", "Tell me a story")];
        var sampling = SamplingOptions.Greedy with { FrequencyPenalty = 1.5f, PresencePenalty = 0.5f };
        var expected = await TestModel.GreedyChat(f.Batching, messages, 24, sampling);
        var plain = await TestModel.GreedyChat(f.Batching, messages, 24);
        Assert.NotEqual(plain.Text, expected.Text);
        var (status, body) = await f.PostAsync("v1/chat/completions", Body("\"temperature\":0,\"max_tokens\":24,\"frequency_penalty\":1.5,\"presence_penalty\":0.5").Replace("\"max_tokens\":12,", ""));
        Assert.Equal(200, status);
        Assert.Equal(expected.Text, Content(body.GetProperty("choices")[0]));
    }
}
