using System.Text.Json;
using TextMessage = Tessera.Text.ChatMessage;

namespace Tessera.Server.Tests;

/// <summary>The chat page in a real (headless) browser: it loads, sends a message, and the reply streams in.</summary>
[Collection(ServerCollection.Name)]
public class ChatPageTests(ServerFixture f)
{
    [ChromiumFact]
    public async Task ThePageStreamsTheModelsReplyIntoTheConversation()
    {
        var expected = await TestModel.GreedyChat(f.Reference, [new TextMessage("user", "Hello from the browser")], 25);
        Assert.True(expected.Text.Length > 2, "the test model should say something for this prompt");

        await using var browser = await HeadlessChromium.LaunchAsync(TimeSpan.FromSeconds(20));
        await browser.NavigateAsync(f.Server.Address, TimeSpan.FromSeconds(10));
        await browser.WaitForAsync("document.getElementById('status').textContent === 'ready'", TimeSpan.FromSeconds(10));
        Assert.Contains(ServerFixture.ModelId, (await browser.EvaluateAsync("document.getElementById('model').textContent")).GetString());

        // Greedy and a fixed budget, so the reply is known; then type the message and press Send.
        await browser.EvaluateAsync("document.getElementById('temperature').value = '0'; document.getElementById('max-tokens').value = '25'");
        await browser.EvaluateAsync("document.getElementById('input').focus()");
        await browser.InsertTextAsync("Hello from the browser");
        await browser.EvaluateAsync("document.getElementById('send').click()");
        await browser.WaitForAsync("document.querySelector('.msg.assistant')?.dataset.done === 'true'", TimeSpan.FromSeconds(20));

        var reply = await browser.EvaluateAsync("""
            (() => { const m = document.querySelector('.msg.assistant');
                     return { text: m.textContent, chunks: Number(m.dataset.chunks), finish: m.dataset.finish,
                              user: document.querySelector('.msg.user').textContent, errors: document.querySelectorAll('.msg.error').length,
                              status: document.getElementById('status').textContent }; })()
            """);
        File.WriteAllBytes(Path.Combine(Path.GetTempPath(), "tessera-chat-page.png"), await browser.ScreenshotAsync());
        Assert.Equal(0, reply.GetProperty("errors").GetInt32());
        Assert.Equal("Hello from the browser", reply.GetProperty("user").GetString());
        Assert.Equal(expected.Text, reply.GetProperty("text").GetString());
        Assert.True(reply.GetProperty("chunks").GetInt32() > 1, $"the reply should arrive in several streamed chunks: {reply}");
        Assert.Equal(expected.Finish == Inference.FinishReason.Stop ? "stop" : "length", reply.GetProperty("finish").GetString());
        Assert.Contains($"{expected.CompletionTokens} completion tokens", reply.GetProperty("status").GetString());   // usage from include_usage
    }
}
