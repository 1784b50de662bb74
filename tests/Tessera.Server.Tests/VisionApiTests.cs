using System.ClientModel;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using Tessera.Vision;
using AiMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Tessera.Server.Tests;

/// <summary>
/// Images in chat through the official OpenAI .NET client (image_url parts with data: URIs), the
/// in-process <see cref="IChatClient"/> (<see cref="DataContent"/>), and every kind of bad image
/// input answered with a 4xx while the server keeps serving. The model is trained in the fixture,
/// so the replies must name the image's colour: the image really reaches the decoder.
/// </summary>
public class VisionApiTests(VisionFixture f) : IClassFixture<VisionFixture>
{
    OpenAI.Chat.ChatClient Client() => new(VisionFixture.ModelId, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = f.ApiBase });

    static ChatCompletionOptions Greedy => new() { Temperature = 0, MaxOutputTokenCount = 8 };

    static UserChatMessage Ask(byte[] png, string mediaType = "image/png")
        => new(ChatMessageContentPart.CreateImagePart(BinaryData.FromBytes(png), mediaType), ChatMessageContentPart.CreateTextPart(ColourModel.Question));

    [Fact]
    public async Task ImageUrlDataUrisAreAnsweredByTheModelAsTheTrainingForwardAnswers()
    {
        Assert.True(f.FinalLoss < 0.05, $"the fixture's training ended at loss {f.FinalLoss:F3}");
        var rng = new Random(100);
        for (int k = 0; k < 3; k++)
        {
            // 24×24: the server resizes to the model's 16×16, as the reference does through PatchGrid.
            var image = ColourModel.Image(k, 24, 24, rng);
            string expected = f.GreedyReply(image);
            Assert.Equal(ColourModel.Colours[k], expected);
            var result = (await Client().CompleteChatAsync([Ask(ColourModel.Png(image))], Greedy)).Value;
            Assert.Equal(expected, result.Content[0].Text);
            Assert.Equal(OpenAI.Chat.ChatFinishReason.Stop, result.FinishReason);
            // The log-probabilities match the training forward's (prefix-LM over the whole prompt): a
            // causal prompt or misplaced image rows would move them far beyond float rounding.
            var withLp = Greedy;
            withLp.IncludeLogProbabilities = true;
            withLp.TopLogProbabilityCount = 2;
            var lp = (await Client().CompleteChatAsync([Ask(ColourModel.Png(image))], withLp)).Value.ContentTokenLogProbabilities;
            var reference = f.GreedyWithLogprobs(image).Logprobs;
            Assert.Equal(reference.Count - 1, lp.Count);   // the closing <|end|> is not part of the reply
            for (int i = 0; i < lp.Count; i++)
            {
                Assert.True(Math.Abs(lp[i].LogProbability - reference[i].Best) < 1e-3, $"token {i}: server {lp[i].LogProbability}, training forward {reference[i].Best}");
                double second = lp[i].TopLogProbabilities[1].LogProbability;
                Assert.True(Math.Abs(second - reference[i].Second) < 1e-3, $"token {i} runner-up: server {second}, training forward {reference[i].Second}");
            }
            // Usage counts the image's patch rows as prompt tokens.
            Assert.Equal(ColourModel.PromptRows().Length, result.Usage.InputTokenCount);

            var streamed = new StringBuilder();
            await foreach (var u in Client().CompleteChatStreamingAsync([Ask(ColourModel.Png(image))], Greedy))
                foreach (var part in u.ContentUpdate) streamed.Append(part.Text);
            Assert.Equal(expected, streamed.ToString());
        }
    }

    [Fact]
    public async Task ConcurrentImageAndTextRequestsGiveTheirAloneReplies()
    {
        var rng = new Random(200);
        var images = Enumerable.Range(0, 6).Select(i => ColourModel.Image(i % 3, 16, 16, rng)).ToArray();
        var alone = new List<string>();
        foreach (var img in images) alone.Add((await Client().CompleteChatAsync([Ask(ColourModel.Png(img))], Greedy)).Value.Content[0].Text);
        string textAlone = (await Client().CompleteChatAsync([new UserChatMessage("hello")], Greedy)).Value.Content is { Count: > 0 } c ? c[0].Text : "";
        var tasks = images.Select(img => Client().CompleteChatAsync([Ask(ColourModel.Png(img))], Greedy)).ToList();
        var text = Client().CompleteChatAsync([new UserChatMessage("hello")], Greedy);
        var results = await Task.WhenAll(tasks);
        for (int i = 0; i < images.Length; i++)
        {
            Assert.Equal(alone[i], results[i].Value.Content[0].Text);
            Assert.Equal(ColourModel.Colours[i % 3], alone[i]);
        }
        var t = (await text).Value;
        Assert.Equal(textAlone, t.Content.Count == 0 ? "" : t.Content[0].Text);
    }

    [Fact]
    public async Task ChatClientTakesDataContentImages()
    {
        IChatClient client = new TesseraChatClient(f.Served);
        var image = ColourModel.Image(2, 16, 16, new Random(300));
        var message = new AiMessage(ChatRole.User, [new DataContent(ColourModel.Png(image), "image/png"), new Microsoft.Extensions.AI.TextContent(ColourModel.Question)]);
        var response = await client.GetResponseAsync([message], new ChatOptions { Temperature = 0, MaxOutputTokens = 8 });
        Assert.Equal(f.GreedyReply(image), response.Text);
        Assert.Equal("blue", response.Text);
        Assert.Equal(ColourModel.PromptRows().Length, response.Usage!.InputTokenCount);

        var url = new AiMessage(ChatRole.User, [new UriContent(new Uri("http://example.com/a.png"), "image/png"), new Microsoft.Extensions.AI.TextContent("x")]);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([url]));
        Assert.Contains("fetches nothing", e.Message);
        var corrupt = new AiMessage(ChatRole.User, [new DataContent(ColourModel.Png(image)[..40], "image/png"), new Microsoft.Extensions.AI.TextContent("x")]);
        e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([corrupt]));
        Assert.Contains("corrupt or truncated", e.Message);
    }

    static string Body(params string[] urls)
    {
        var parts = urls.Select(u => $"{{\"type\":\"image_url\",\"image_url\":{{\"url\":{JsonSerializer.Serialize(u)}}}}}");
        return $"{{\"model\":\"{VisionFixture.ModelId}\",\"max_tokens\":4,\"messages\":[{{\"role\":\"user\",\"content\":[{string.Join(",", parts)},{{\"type\":\"text\",\"text\":\"colour?\"}}]}}]}}";
    }

    async Task<(int Status, JsonElement Error)> Post(string body)
    {
        using var r = await f.Http.PostAsync(new Uri(f.Server.Address, "v1/chat/completions"), new StringContent(body, Encoding.UTF8, "application/json"));
        var json = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone();
        return ((int)r.StatusCode, json.TryGetProperty("error", out var e) ? e : json);
    }

    static string DataUri(byte[] data, string type = "image/png") => $"data:{type};base64,{Convert.ToBase64String(data)}";

    [Fact]
    public async Task BadImagesAre4xxAndTheServerKeepsServing()
    {
        var png = ColourModel.Png(ColourModel.Image(0, 16, 16, new Random(400)));
        var cases = new (string Name, string Body, string Code, string Says)[]
        {
            ("http url", Body("http://127.0.0.1:1/cat.png"), "invalid_image_url", "fetches nothing"),
            ("https url", Body("https://example.com/cat.png"), "invalid_image_url", "fetches nothing"),
            ("gif type", Body(DataUri(png, "image/gif")), "invalid_image_format", "image/gif"),
            ("not base64", Body("data:image/png;base64,@@@"), "invalid_image_url", "base64"),
            ("truncated png", Body(DataUri(png[..(png.Length / 2)])), "invalid_image", "corrupt or truncated"),
            ("garbled png", Body(DataUri([.. png[..16], .. Enumerable.Repeat((byte)0x5A, 200)])), "invalid_image", "messages[0].content[0]"),
            ("bmp bytes as png", Body(DataUri([.. "BM"u8, .. new byte[60]])), "invalid_image", "unsupported"),
            ("empty", Body(DataUri([])), "invalid_image", "messages[0].content[0]"),
            ("bomb 20000²", Body(DataUri(PngHeader(20_000, 20_000))), "invalid_image", "exceeds the cap"),
            ("0×0", Body(DataUri(PngHeader(0, 0))), "invalid_image", "at least 1×1"),
            ("too many images", Body([.. Enumerable.Repeat(DataUri(png), 14)]), "context_length_exceeded", "14 images"),
            ("over the per-request cap", Body([.. Enumerable.Repeat(DataUri(png), 17)]), "too_many_images", "at most 16"),
        };
        foreach (var c in cases)
        {
            var (status, error) = await Post(c.Body);
            Assert.True(status == 400, $"{c.Name}: HTTP {status} {error}");
            Assert.Equal(c.Code, error.GetProperty("code").GetString());
            Assert.Contains(c.Says, error.GetProperty("message").GetString());
        }
        // Image parts in a system message, and images on a text-only model, are refused too.
        var (s1, e1) = await Post($"{{\"model\":\"{VisionFixture.ModelId}\",\"messages\":[{{\"role\":\"system\",\"content\":[{{\"type\":\"image_url\",\"image_url\":{{\"url\":\"{DataUri(png)}\"}}}}]}},{{\"role\":\"user\",\"content\":\"hi\"}}]}}");
        Assert.Equal(400, s1);
        Assert.Equal("unsupported_parameter", e1.GetProperty("code").GetString());
        var textOnly = new ServedModel("text-only", f.Engine, ColourModel.Tok);
        var ex = Assert.Throws<ApiException>(() => ChatImages.Build(textOnly, [1, 2], [new Text.ChatMessage("user", "")], [new ChatImage(new Text.ChatMessage("user", ""), png, "x")]));
        Assert.Equal(400, ex.Status);
        Assert.Equal("images_unsupported", ex.Code);

        // Still serving, and still right.
        var ok = (await Client().CompleteChatAsync([Ask(png)], Greedy)).Value;
        Assert.Equal("red", ok.Content[0].Text);
    }

    /// <summary>PNG signature + an IHDR claiming w×h (8-bit RGB) and nothing else: a decompression bomb's header.</summary>
    static byte[] PngHeader(int w, int h)
    {
        var ihdr = new byte[17];
        "IHDR"u8.CopyTo(ihdr);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), w);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(8), h);
        ihdr[12] = 8; ihdr[13] = 2;
        uint crc = 0xFFFFFFFF;
        foreach (byte b in ihdr)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        crc = ~crc;
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, .. ihdr, (byte)(crc >> 24), (byte)(crc >> 16), (byte)(crc >> 8), (byte)crc];
    }
}
