using System.Text.Json;
using System.Text.Json.Nodes;
using StbImageWriteSharp;
using Tessera.Vision;

namespace Tessera.Server.Tests;

/// <summary>
/// The chat page with images, in headless Chromium against the <see cref="VisionFixture"/> model
/// (trained in the fixture to name an image's colour): an image pasted from the clipboard and one
/// attached through the file picker reach the chat endpoint as image_url data: URIs, the page shows
/// them in the conversation, and the streamed reply is the training forward's greedy answer.
/// </summary>
public class ChatPageImageTests(VisionFixture f) : IClassFixture<VisionFixture>
{
    /// <summary>Where the screenshot of the pasted-image conversation is written (docs/multimodal-chat-page.png is a copy).</summary>
    public static readonly string ScreenshotPath = Path.Combine(Path.GetTempPath(), "tessera-chat-page-image.png");

    static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    async Task<HeadlessChromium> OpenPage()
    {
        var browser = await HeadlessChromium.LaunchAsync(Wait);
        await browser.NavigateAsync(f.Server.Address, TimeSpan.FromSeconds(10));
        await browser.WaitForAsync("document.getElementById('status').textContent === 'ready'", TimeSpan.FromSeconds(10));
        await browser.EvaluateAsync("document.getElementById('temperature').value = '0'; document.getElementById('max-tokens').value = '8'");
        return browser;
    }

    /// <summary>Dispatches a paste of one file (bytes, media type) on the message box, as Ctrl+V of a copied image does.</summary>
    static Task Paste(HeadlessChromium browser, byte[] data, string type, string name) => browser.EvaluateAsync($$"""
        (() => { const bytes = Uint8Array.from(atob("{{Convert.ToBase64String(data)}}"), c => c.charCodeAt(0));
                 const dt = new DataTransfer();
                 dt.items.add(new File([bytes], "{{name}}", { type: "{{type}}" }));
                 document.getElementById('input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
                 return true; })()
        """);

    static async Task<JsonElement> SendAndWait(HeadlessChromium browser, string text)
    {
        await browser.EvaluateAsync("document.getElementById('input').focus()");
        await browser.InsertTextAsync(text);
        await browser.EvaluateAsync("document.getElementById('send').click()");
        await browser.WaitForAsync("document.querySelector('.msg.assistant')?.dataset.done === 'true'", Wait);
        return await browser.EvaluateAsync("""
            (() => { const m = document.querySelector('.msg.assistant'), u = document.querySelector('.msg.user');
                     const img = u.querySelector('img');
                     return { text: m.textContent, finish: m.dataset.finish, user: u.textContent,
                              image: img ? img.src : '', shown: img ? img.naturalWidth : 0,
                              pending: document.querySelectorAll('#attachments img').length,
                              errors: [...document.querySelectorAll('.msg.error')].map(e => e.textContent).join(' | '),
                              status: document.getElementById('status').textContent }; })()
            """);
    }

    [ChromiumFact]
    public async Task PastedAndAttachedImagesAreAnsweredAsTheTrainingForwardAnswers()
    {
        var rng = new Random(300);

        // 1. Paste a PNG (a red 48×48 image; the server resizes it to the model's 16×16).
        var red = ColourModel.Image(0, 48, 48, rng);
        string expectedRed = f.GreedyReply(red);
        Assert.Equal("red", expectedRed);
        await using (var browser = await OpenPage())
        {
            byte[] png = ColourModel.Png(red);
            await Paste(browser, png, "image/png", "red.png");
            await browser.WaitForAsync("document.querySelectorAll('#attachments img').length === 1", Wait);
            var r = await SendAndWait(browser, ColourModel.Question);
            File.WriteAllBytes(ScreenshotPath, await browser.ScreenshotAsync());
            Assert.Equal("", r.GetProperty("errors").GetString());
            Assert.Equal(expectedRed, r.GetProperty("text").GetString());
            Assert.Equal("stop", r.GetProperty("finish").GetString());
            Assert.Equal(ColourModel.Question, r.GetProperty("user").GetString());
            Assert.Equal("data:image/png;base64," + Convert.ToBase64String(png), r.GetProperty("image").GetString());
            Assert.Equal(48, r.GetProperty("shown").GetInt32());       // the image decoded and is on the page
            Assert.Equal(0, r.GetProperty("pending").GetInt32());      // sent: the attachment strip is cleared
            // Usage: the prompt counted the image's patch rows.
            Assert.Contains($"{ColourModel.PromptRows().Length} prompt", r.GetProperty("status").GetString());

            // A pasted GIF is refused by the page with a message; nothing is attached.
            await Paste(browser, "GIF89a"u8.ToArray(), "image/gif", "anim.gif");
            await browser.WaitForAsync("document.querySelectorAll('.msg.error').length === 1", Wait);
            Assert.Contains("only PNG and JPEG", (await browser.EvaluateAsync("document.querySelector('.msg.error').textContent")).GetString());
            Assert.Equal(0, (await browser.EvaluateAsync("document.querySelectorAll('#attachments img').length")).GetInt32());
        }

        // 2. Attach a JPEG through the file picker (DevTools sets the input's files, as a user's choice does).
        var green = ColourModel.Image(1, 40, 40, rng);
        byte[] jpeg;
        using (var ms = new MemoryStream())
        {
            new ImageWriter().WriteJpg(green.Rgb, green.Width, green.Height, ColorComponents.RedGreenBlue, ms, 95);
            jpeg = ms.ToArray();
        }
        string expectedGreen = f.GreedyReply(ImageDecoder.Decode(jpeg, "green.jpg"));   // the reference sees the decoded JPEG, as the server does
        Assert.Equal("green", expectedGreen);
        string path = Path.Combine(Path.GetTempPath(), $"tessera-green-{Guid.NewGuid():N}.jpg");
        File.WriteAllBytes(path, jpeg);
        try
        {
            await using var browser = await OpenPage();
            var doc = await browser.SendAsync("DOM.getDocument");
            var input = await browser.SendAsync("DOM.querySelector", new JsonObject { ["nodeId"] = (int)doc["root"]!["nodeId"]!, ["selector"] = "#file" });
            await browser.SendAsync("DOM.setFileInputFiles", new JsonObject { ["files"] = new JsonArray(path), ["nodeId"] = (int)input["nodeId"]! });
            await browser.WaitForAsync("document.querySelectorAll('#attachments img').length === 1", Wait);
            var r = await SendAndWait(browser, ColourModel.Question);
            Assert.Equal("", r.GetProperty("errors").GetString());
            Assert.Equal(expectedGreen, r.GetProperty("text").GetString());
            Assert.Equal("data:image/jpeg;base64," + Convert.ToBase64String(jpeg), r.GetProperty("image").GetString());
        }
        finally { File.Delete(path); }
    }
}
