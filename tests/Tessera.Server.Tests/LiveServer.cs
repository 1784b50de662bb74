using System.ClientModel;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace Tessera.Server.Tests;

/// <summary>Talking to a <see cref="TesseraServer"/> a test started: the official client without retries, and raw POSTs.</summary>
static class LiveServer
{
    /// <summary>An OpenAI chat client for <paramref name="model"/> on <paramref name="s"/>, with retries off so a 4xx surfaces at once.</summary>
    public static ChatClient Client(TesseraServer s, string model)
        => new(model, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(s.Address, "v1/"), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) });

    /// <summary>POSTs a JSON body; the status, the parsed body (default when not JSON) and the response (headers).</summary>
    public static async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> Post(TesseraServer s, string path, string body)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var r = await http.PostAsync(new Uri(s.Address, path), new StringContent(body, Encoding.UTF8, "application/json"));
        string text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, text.StartsWith('{') ? JsonDocument.Parse(text).RootElement.Clone() : default, r);
    }
}
