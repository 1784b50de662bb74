using System.ClientModel;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace Tessera.Server.Tests;

/// <summary>Every rejected request gets a 4xx with OpenAI error JSON, and the server keeps serving.</summary>
[Collection(ServerCollection.Name)]
public class BadInputTests(ServerFixture f)
{
    const string M = ServerFixture.ModelId;
    const string Chat = "v1/chat/completions", Completions = "v1/completions", Embeddings = "v1/embeddings";
    const string Msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";

    public static TheoryData<string, string, int, string?, string?> Cases => new()
    {
        // path, body, status, param, code
        { Chat, "{\"model\": \"" + M + "\", \"messages\": [", 400, null, "invalid_json" },
        { Chat, "[1, 2, 3]", 400, null, "invalid_json" },
        { Chat, "", 400, null, "invalid_json" },
        { Chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 400, "model", "missing_required_parameter" },
        { Chat, "{\"model\":\"gpt-4o\"," + Msgs + "}", 404, "model", "model_not_found" },
        { Completions, "{\"model\":\"nope\",\"prompt\":\"x\"}", 404, "model", "model_not_found" },
        { Embeddings, "{\"model\":\"nope\",\"input\":\"x\"}", 404, "model", "model_not_found" },
        { Chat, "{\"model\":\"" + M + "\"}", 400, "messages", "missing_required_parameter" },
        { Chat, "{\"model\":\"" + M + "\",\"messages\":[]}", 400, "messages", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\",\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}", 400, "messages[0].role", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"max_tokens\":-1}", 400, "max_tokens", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"max_tokens\":0}", 400, "max_tokens", "invalid_value" },
        { Completions, "{\"model\":\"" + M + "\",\"prompt\":\"x\",\"max_tokens\":-5}", 400, "max_tokens", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"max_tokens\":1000000000000}", 400, "max_tokens", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"max_completion_tokens\":2147483647}", 400, "messages", "context_length_exceeded" },
        { Completions, "{\"model\":\"" + M + "\",\"prompt\":\"x\",\"max_tokens\":96}", 400, "prompt", "context_length_exceeded" },
        { Completions, "{\"model\":\"" + M + "\",\"prompt\":\"" + new string('x', 200) + "\"}", 400, "prompt", "context_length_exceeded" },
        { Completions, "{\"model\":\"" + M + "\",\"prompt\":\"" + new string('x', 100) + "\",\"echo\":true,\"max_tokens\":0,\"logprobs\":1}", 400, "prompt", "context_length_exceeded" },
        { Chat, "{\"model\":\"" + M + "\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('y', 120) + "\"}]}", 400, "messages", "context_length_exceeded" },
        { Embeddings, "{\"model\":\"" + M + "\",\"input\":\"" + new string('z', 150) + "\"}", 400, "input", "context_length_exceeded" },
        { Completions, "{\"model\":\"" + M + "\",\"prompt\":[1, 2, 99999]}", 400, "prompt", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"logit_bias\":{\"abc\":1}}", 400, "logit_bias", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"logit_bias\":{\"5\":1000}}", 400, "logit_bias", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"logit_bias\":{\"999999\":1}}", 400, "logit_bias", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"logit_bias\":{\"-3\":1}}", 400, "logit_bias", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"logit_bias\":{\"5\":\"big\"}}", 400, "logit_bias", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"logit_bias\":[1,2]}", 400, "logit_bias", "invalid_type" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"n\":17}", 400, "n", "invalid_value" },
        { Completions, "{\"model\":\"" + M + "\",\"prompt\":\"x\",\"n\":3,\"best_of\":2}", 400, "best_of", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"temperature\":\"hot\"}", 400, "temperature", "invalid_type" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"temperature\":3}", 400, "temperature", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"top_p\":0}", 400, "top_p", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "stop", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"stop\":\"\"}", 400, "stop", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"top_logprobs\":3}", 400, "top_logprobs", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"logprobs\":true,\"top_logprobs\":21}", 400, "top_logprobs", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"frequency_penalty\":2.5}", 400, "frequency_penalty", "invalid_value" },
        { Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"stream_options\":{\"include_usage\":true}}", 400, "stream_options", "invalid_value" },
        { Embeddings, "{\"model\":\"" + M + "\",\"input\":[]}", 400, "input", "invalid_value" },
        { Embeddings, "{\"model\":\"" + M + "\",\"input\":\"x\",\"encoding_format\":\"int8\"}", 400, "encoding_format", "invalid_value" },
        { Embeddings, "{\"model\":\"" + M + "\",\"input\":\"x\",\"dimensions\":3}", 400, "dimensions", "unsupported_parameter" },
        { Embeddings, "{\"model\":\"" + M + "\",\"input\":42}", 400, "input", "invalid_type" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BadRequestsGetOpenAiErrorsAndTheServerKeepsServing(string path, string body, int status, string? param, string? code)
    {
        var (got, json) = await f.PostAsync(path, body);
        AssertError(json, got, status, param, code);
        await AssertStillServing();
    }

    [Fact]
    public async Task InvalidUtf8BodyIsRejected()
    {
        var bytes = Encoding.UTF8.GetBytes($$"""{"model":"{{M}}","messages":[{"role":"user","content":"hi X"}]}""");
        bytes[Array.IndexOf(bytes, (byte)'X')] = 0xFF;   // a byte that never occurs in UTF-8
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var (got, json) = await f.SendAsync(Chat, content);
        AssertError(json, got, 400, null, "invalid_encoding");
        await AssertStillServing();
    }

    /// <summary>A body sent without Content-Length (chunked transfer), written in pieces of <paramref name="piece"/> bytes.</summary>
    sealed class UnknownLengthContent(byte[] bytes, int piece) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            for (int i = 0; i < bytes.Length; i += piece)
            {
                await stream.WriteAsync(bytes.AsMemory(i, Math.Min(piece, bytes.Length - i)));
                await stream.FlushAsync();
            }
        }

        protected override bool TryComputeLength(out long length) { length = 0; return false; }
    }

    [Fact]
    public async Task BodiesOfEverySizeReadTheSameWithAndWithoutContentLength()
    {
        // The body is read into pooled buffers that grow as it arrives: sized from Content-Length when
        // it is sent, doubled when it is not. Each body below, sized or chunked in small or large pieces
        // (and all of them at once, so pooled buffers are in use side by side), must give the answer
        // the sized body gives: the same greedy completion of its prompt, the padding ignored.
        var cases = new List<(string Prompt, int Pad)>();
        foreach (int pad in (int[])[0, 20_000, 300_000, 3_000_000])
            foreach (string prompt in (string[])["hello", "the cat"])
                cases.Add((prompt, pad));
        byte[] Body((string Prompt, int Pad) c) => Encoding.UTF8.GetBytes(
            $$"""{"model":"{{M}}","prompt":"{{c.Prompt}}","max_tokens":4,"temperature":0,"pad":"{{new string('p', c.Pad)}}"}""");
        static ByteArrayContent Sized(byte[] b) { var content = new ByteArrayContent(b); content.Headers.ContentType = new MediaTypeHeaderValue("application/json"); return content; }
        static UnknownLengthContent Chunked(byte[] b, int piece) { var content = new UnknownLengthContent(b, piece); content.Headers.ContentType = new MediaTypeHeaderValue("application/json"); return content; }

        var expected = new List<string>();
        foreach (var c in cases)
        {
            var (status, json) = await f.SendAsync(Completions, Sized(Body(c)));
            Assert.Equal(200, status);
            expected.Add(json.GetProperty("choices")[0].GetProperty("text").GetString()!);
        }
        var sends = new List<Task<(int Status, JsonElement Body)>>();
        foreach (var c in cases)
        {
            sends.Add(f.SendAsync(Completions, Sized(Body(c))));
            sends.Add(f.SendAsync(Completions, Chunked(Body(c), 7_777)));
            sends.Add(f.SendAsync(Completions, Chunked(Body(c), 1 << 20)));
        }
        var got = await Task.WhenAll(sends);
        for (int i = 0; i < got.Length; i++)
        {
            Assert.True(got[i].Status == 200, $"case {i / 3} ({cases[i / 3].Pad} bytes of padding), send {i % 3}: {got[i].Status} {got[i].Body}");
            Assert.Equal(expected[i / 3], got[i].Body.GetProperty("choices")[0].GetProperty("text").GetString());
        }

        // Without Content-Length the limit is found while reading: still a 413, and the server goes on.
        var big = Encoding.UTF8.GetBytes($$"""{"model":"{{M}}","prompt":"{{new string('a', Tessera.Server.JsonRequest.MaxBodyBytes + 10)}}"}""");
        var (bigStatus, bigJson) = await f.SendAsync(Completions, Chunked(big, 1 << 16));
        AssertError(bigJson, bigStatus, 413, null, "request_too_large");
        await AssertStillServing();
    }

    [Fact]
    public async Task OversizedBodyIsRejected()
    {
        var big = new StringBuilder($$"""{"model":"{{M}}","prompt":" """);
        big.Append('a', Tessera.Server.JsonRequest.MaxBodyBytes + 10).Append("\"}");
        var (got, json) = await f.PostAsync(Completions, big.ToString());
        AssertError(json, got, 413, null, "request_too_large");
        await AssertStillServing();
    }

    [Fact]
    public async Task UnknownPathsAndMethodsGetJsonErrors()
    {
        using var r404 = await f.Http.GetAsync(new Uri(f.Server.Address, "v1/nothing-here"));
        AssertError(JsonDocument.Parse(await r404.Content.ReadAsStringAsync()).RootElement, (int)r404.StatusCode, 404, null, "not_found");
        using var r405 = await f.Http.GetAsync(new Uri(f.Server.Address, Chat));
        AssertError(JsonDocument.Parse(await r405.Content.ReadAsStringAsync()).RootElement, (int)r405.StatusCode, 405, null, null);
        await AssertStillServing();
    }

    [Fact]
    public async Task TheOfficialClientSeesTheErrorStatusAndMessage()
    {
        var client = new ChatClient("no-such-model", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = f.ApiBase, RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) });
        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, e.Status);
        Assert.Contains("no-such-model", e.Message);
    }

    [Fact]
    public async Task AnEmptyLogitBiasIsAccepted()
    {
        var (got, json) = await f.PostAsync(Chat, "{\"model\":\"" + M + "\"," + Msgs + ",\"logit_bias\":{},\"max_tokens\":2}");
        Assert.Equal(200, got);
        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
    }

    static void AssertError(JsonElement json, int got, int status, string? param, string? code)
    {
        Assert.True(got == status, $"expected HTTP {status}, got {got}: {json}");
        var error = json.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("param", out var p) && error.TryGetProperty("code", out _), "error JSON needs param and code (null allowed)");
        if (param is not null) Assert.Equal(param, p.GetString());
        Assert.Equal(code, error.GetProperty("code").ValueKind == JsonValueKind.Null ? null : error.GetProperty("code").GetString());
    }

    async Task AssertStillServing()
    {
        var (status, json) = await f.PostAsync(Completions, "{\"model\":\"" + M + "\",\"prompt\":\"ok\",\"max_tokens\":2}");
        Assert.Equal(200, status);
        Assert.Equal("text_completion", json.GetProperty("object").GetString());
    }
}
