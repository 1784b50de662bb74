using Microsoft.AspNetCore.Http;

namespace Tessera.Server;

/// <summary>The chat web page at <c>/</c>: one static HTML file with its script inline, embedded in the assembly.</summary>
public static class ChatPage
{
    const string ResourceName = "Tessera.Server.ChatPage.html";

    static readonly Lazy<byte[]> Html = new(() =>
    {
        using var s = typeof(ChatPage).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"embedded resource {ResourceName} is missing from the build");
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    });

    /// <summary>Sends the page.</summary>
    public static async Task SendAsync(HttpResponse response)
    {
        var html = Html.Value;
        response.ContentType = "text/html; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.ContentLength = html.Length;
        await response.Body.WriteAsync(html);
    }
}
