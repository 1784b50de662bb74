using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Tessera.Server;

/// <summary>
/// Bearer API-key check. Both sides are hashed to fixed-length digests and compared with
/// <see cref="CryptographicOperations.FixedTimeEquals"/>, so neither the key's content nor its
/// length leaks through response timing.
/// </summary>
public sealed class ApiKeyCheck
{
    readonly byte[] expected;

    /// <summary>A check for <paramref name="key"/>.</summary>
    public ApiKeyCheck(string key) => expected = SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>Paths anyone may GET: the liveness probe and the (static) chat page, which asks for the key itself.</summary>
    public static bool IsOpen(HttpRequest request)
        => HttpMethods.IsGet(request.Method) && (request.Path == "/health" || request.Path == "/");

    /// <summary>True when the request carries <c>Authorization: Bearer KEY</c> with the right key.</summary>
    public bool Allows(HttpRequest request)
    {
        string? header = request.Headers.Authorization;
        const string scheme = "Bearer ";
        if (header is null || !header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        return Matches(header.AsSpan(scheme.Length).Trim());
    }

    /// <summary>Constant-time comparison of a presented key with the expected one.</summary>
    public bool Matches(ReadOnlySpan<char> presented)
    {
        Span<byte> digest = stackalloc byte[32];
        int max = Encoding.UTF8.GetMaxByteCount(presented.Length);
        byte[] bytes = new byte[max];
        int n = Encoding.UTF8.GetBytes(presented, bytes);
        SHA256.HashData(bytes.AsSpan(0, n), digest);
        return CryptographicOperations.FixedTimeEquals(digest, expected);
    }

    /// <summary>The 401 for a missing or wrong key.</summary>
    public static ApiException Unauthorized(HttpRequest request) => new(401,
        request.Headers.Authorization.Count == 0
            ? "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'."
            : "Incorrect API key provided.",
        code: "invalid_api_key");
}
