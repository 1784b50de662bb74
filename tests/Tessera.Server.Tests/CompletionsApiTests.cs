using System.Text;
using System.Text.Json;
using Tessera.Inference;

namespace Tessera.Server.Tests;

/// <summary>
/// /v1/completions. The official .NET client (2.15) keeps its legacy-completions client internal,
/// so these requests are plain HTTP with the OpenAI wire format.
/// </summary>
[Collection(ServerCollection.Name)]
public class CompletionsApiTests(ServerFixture f)
{
    string Body(string fields) => $$"""{"model":"{{ServerFixture.ModelId}}",{{fields}}}""";

    [Fact]
    public async Task EchoWithLogprobsReturnsTheEnginesScoresForEveryPromptToken()
    {
        const string prompt = "The cat sat on the mat. é€";   // multi-byte characters: tokens split characters
        var (status, body) = await f.PostAsync("v1/completions", Body($$"""
            "prompt":{{JsonSerializer.Serialize(prompt)}},"echo":true,"max_tokens":0,"logprobs":2
            """));
        Assert.Equal(200, status);
        var choice = body.GetProperty("choices")[0];
        Assert.Equal(prompt, choice.GetProperty("text").GetString());
        var lp = choice.GetProperty("logprobs");
        var ids = f.Served.EncodePrompt(prompt);                 // BOS + bytes
        var scored = f.Reference.Score(ids, 2);
        var tokenLogprobs = lp.GetProperty("token_logprobs");
        var tops = lp.GetProperty("top_logprobs");
        var offsets = lp.GetProperty("text_offset");
        Assert.Equal(ids.Count - 1, tokenLogprobs.GetArrayLength());   // the prompt's own tokens; BOS is context, not text
        for (int i = 1; i < ids.Count; i++)
        {
            Assert.Equal(scored[i].Logprob, tokenLogprobs[i - 1].GetSingle());
            var top = tops[i - 1].EnumerateObject().ToList();
            Assert.Equal(2, top.Count);
            Assert.Equal(scored[i].Top[0].Logprob, top[0].Value.GetSingle());
        }
        // Offsets index the returned text: each complete character starts where its first byte's token says.
        Assert.Equal(0, offsets[0].GetInt32());
        Assert.Equal(prompt.IndexOf('é'), offsets[prompt.IndexOf('é')].GetInt32());
        int last = offsets.GetArrayLength() - 1;
        for (int k = last - 2; k <= last; k++) Assert.Equal(prompt.Length - 1, offsets[k].GetInt32());   // the three bytes of '€'
        Assert.Equal(ids.Count, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(0, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task TokenIdPromptsAreScoredAsSentWithANullFirstLogprob()
    {
        int[] ids = [256, 72, 105, 33];   // <|bos|> H i !
        var (status, body) = await f.PostAsync("v1/completions", Body($$"""
            "prompt":{{JsonSerializer.Serialize(ids)}},"echo":true,"max_tokens":0,"logprobs":0
            """));
        Assert.Equal(200, status);
        var scored = f.Reference.Score(ids, 0);
        var lps = body.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("token_logprobs");
        Assert.Equal(JsonValueKind.Null, lps[0].ValueKind);
        for (int i = 1; i < ids.Length; i++) Assert.Equal(scored[i].Logprob, lps[i].GetSingle());
    }

    [Fact]
    public async Task GreedyCompletionContinuesThePromptAndEchoPrependsIt()
    {
        var prompt = f.Served.EncodePrompt("Once upon");
        var gen = new List<TokenEvent>();
        await foreach (var e in f.Reference.GenerateAsync(new GenerationRequest(prompt, 10, SamplingOptions.Greedy, f.Served.CompletionStopIds, 1))) gen.Add(e);
        var genIds = gen.Where(e => e.Finish != FinishReason.Stop).Select(e => e.Id).ToArray();
        string expected = TestModel.Text(genIds);

        var (_, plain) = await f.PostAsync("v1/completions", Body("\"prompt\":\"Once upon\",\"max_tokens\":10,\"temperature\":0,\"logprobs\":1"));
        var choice = plain.GetProperty("choices")[0];
        Assert.Equal(expected, choice.GetProperty("text").GetString());
        var lps = choice.GetProperty("logprobs").GetProperty("token_logprobs");
        Assert.Equal(genIds.Length, lps.GetArrayLength());
        for (int i = 0; i < genIds.Length; i++) Assert.Equal(gen[i].Logprob, lps[i].GetSingle());
        Assert.Equal(gen.Count, plain.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var (_, echoed) = await f.PostAsync("v1/completions", Body("\"prompt\":\"Once upon\",\"max_tokens\":10,\"temperature\":0,\"echo\":true"));
        Assert.Equal("Once upon" + expected, echoed.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task StreamingCompletionAddsUpToTheNonStreamingOne()
    {
        var (_, whole) = await f.PostAsync("v1/completions", Body("\"prompt\":\"abc\",\"max_tokens\":12,\"temperature\":0"));
        string body = Body("\"prompt\":\"abc\",\"max_tokens\":12,\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}");
        using var r = await f.Http.PostAsync(new Uri(f.Server.Address, "v1/completions"), new StringContent(body, Encoding.UTF8, "application/json"));
        var events = (await r.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        var text = new StringBuilder();
        JsonElement? usage = null;
        foreach (var e in events[..^1])
        {
            var chunk = JsonDocument.Parse(e["data: ".Length..]).RootElement;
            Assert.Equal("text_completion", chunk.GetProperty("object").GetString());
            if (chunk.TryGetProperty("usage", out var u)) usage = u.Clone();
            foreach (var c in chunk.GetProperty("choices").EnumerateArray()) text.Append(c.GetProperty("text").GetString());
        }
        Assert.Equal(whole.GetProperty("choices")[0].GetProperty("text").GetString(), text.ToString());
        Assert.Equal(whole.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), usage!.Value.GetProperty("completion_tokens").GetInt32());
    }
}
