using System.Net.Http.Headers;
using System.Text;

namespace Tessera.Server.Tests;

/// <summary>
/// The malformed-request generator against a live server: every request gets a 4xx (or, for a
/// mutation that stayed valid, a 200), never a 5xx, and the server keeps serving. Each finding of
/// the generator is pinned below as a named regression case.
/// </summary>
[Collection(ServerCollection.Name)]
public class MalformedRequestTests(ServerFixture f)
{
    const string M = ServerFixture.ModelId;

    [Fact]
    public async Task FourHundredGeneratedMalformedRequestsAllGet4xx()
    {
        var gen = new MalformedRequests(M, seed: 17);
        var failures = new List<string>();
        var kinds = new Dictionary<string, int>();
        for (int i = 0; i < 400; i++)
        {
            var r = gen.Next();
            var content = new ByteArrayContent(r.Body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var resp = await f.Http.PostAsync(new Uri(f.Server.Address, r.Path), content);
            int status = (int)resp.StatusCode;
            kinds[r.Kind] = kinds.GetValueOrDefault(r.Kind) + 1;
            bool ok = status is >= 400 and < 500 || (MalformedRequests.MayBeValid(r) && status == 200);
            if (!ok) failures.Add($"{r.Kind} {r.Path} -> {status}: {Encoding.UTF8.GetString(r.Body)[..Math.Min(200, r.Body.Length)]} :: {await resp.Content.ReadAsStringAsync()}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} malformed requests were not answered with a 4xx:\n" + string.Join("\n", failures.Take(10)));
        Assert.True(kinds.Count >= 10, "the generator should cover most of its kinds in 400 requests: " + string.Join(", ", kinds.Keys));
        var (ok200, _) = await f.PostAsync("v1/completions", $"{{\"model\":\"{M}\",\"prompt\":\"ok\",\"max_tokens\":2}}");
        Assert.Equal(200, ok200);
    }

    // Found by the hand-run of 49 malformed requests (issue 17): a lone surrogate escape parsed as
    // JSON but threw "Cannot read incomplete UTF-16 JSON text" when the field was read: a 500.
    [Theory]
    [InlineData("v1/chat/completions", "{\"model\":\"" + M + "\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}")]
    [InlineData("v1/chat/completions", "{\"model\":\"" + M + "\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\\udfffb\"}]}]}")]
    [InlineData("v1/chat/completions", "{\"model\":\"" + M + "\",\"messages\":[{\"role\":\"\\udc00\\ud800\",\"content\":\"x\"}]}")]
    [InlineData("v1/completions", "{\"model\":\"" + M + "\",\"prompt\":\"x\\ud83d\"}")]
    [InlineData("v1/completions", "{\"model\":\"" + M + "\",\"prompt\":\"x\",\"stop\":[\"\\ude00\"]}")]
    [InlineData("v1/completions", "{\"model\":\"\\ud800\",\"prompt\":\"x\"}")]
    [InlineData("v1/embeddings", "{\"model\":\"" + M + "\",\"input\":[\"ok\",\"\\udbff\"]}")]
    [InlineData("v1/embeddings", "{\"model\":\"" + M + "\",\"\\ud800\":1,\"input\":\"x\"}")]
    public async Task LoneSurrogateEscapesAre400NotServerErrors(string path, string body)
    {
        var (status, json) = await f.PostAsync(path, body);
        Assert.True(status == 400, $"expected 400, got {status}: {json}");
        Assert.Equal("invalid_encoding", json.GetProperty("error").GetProperty("code").GetString());
    }

    // Found by the generator: a body naming max_tokens twice was served with the last value (a
    // checker that reads the first would see a different request). Duplicate keys are now a 400.
    [Theory]
    [InlineData("v1/completions", "{\"model\":\"" + M + "\",\"prompt\":\"x\",\"max_tokens\":2147483648,\"max_tokens\":1}")]
    [InlineData("v1/chat/completions", "{\"model\":\"" + M + "\",\"messages\":[{\"role\":\"user\",\"role\":\"system\",\"content\":\"x\"}]}")]
    [InlineData("v1/embeddings", "{\"model\":\"gpt-4o\",\"model\":\"" + M + "\",\"input\":\"x\"}")]
    public async Task DuplicateKeysAreRejected(string path, string body)
    {
        var (status, json) = await f.PostAsync(path, body);
        Assert.True(status == 400, $"expected 400, got {status}: {json}");
        Assert.Equal("invalid_json", json.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task AValidSurrogatePairIsStillAccepted()
    {
        var (status, json) = await f.PostAsync("v1/completions", "{\"model\":\"" + M + "\",\"prompt\":\"smile \\ud83d\\ude00\",\"max_tokens\":1}");
        Assert.True(status == 200, $"a paired surrogate escape is a valid emoji: {json}");
    }
}
