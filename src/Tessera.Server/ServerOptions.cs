namespace Tessera.Server;

/// <summary>
/// Where and how the server listens, and the limits it enforces. The defaults suit one user on
/// loopback; a server that leaves loopback must be given an API key (or told <see cref="Insecure"/>).
/// </summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind; loopback by default so nothing outside the machine can reach it unless asked.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 picks a free one (see <see cref="TesseraServer.Address"/>).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>Log each request and server warnings to the console.</summary>
    public bool Log { get; init; }

    /// <summary>
    /// When set, every request but <c>GET /health</c> and the chat page itself must carry
    /// <c>Authorization: Bearer KEY</c> (compared in constant time); others get 401.
    /// </summary>
    public string? ApiKey { get; init; }
    /// <summary>Allows a non-loopback <see cref="Host"/> without an <see cref="ApiKey"/> (anyone who reaches the port can use the model).</summary>
    public bool Insecure { get; init; }
    /// <summary>Origins allowed to call the API from a browser page served elsewhere; empty (the default) sends no CORS headers at all.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = [];

    /// <summary>
    /// Most model requests (completions, chat, embeddings) admitted at once, running or waiting for
    /// an engine slot; one more gets 429 with <c>Retry-After</c> instead of queueing without bound.
    /// </summary>
    public int MaxQueue { get; init; } = 128;
    /// <summary>Largest request body in bytes (413 above it).</summary>
    public long MaxBodyBytes { get; init; } = JsonRequest.MaxBodyBytes;
    /// <summary>Most completion tokens one request may ask for (and the default budget's ceiling); null: the model's context.</summary>
    public int? MaxTokensPerRequest { get; init; }
    /// <summary>Most open TCP connections; Kestrel refuses further ones.</summary>
    public long MaxConnections { get; init; } = 1024;
    /// <summary>Time a client has to send its request headers (slow-header clients are cut off after it).</summary>
    public TimeSpan HeadersTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Slowest request-body upload tolerated, in bytes per second after a 5 s grace period.</summary>
    public double MinBodyBytesPerSecond { get; init; } = 240;
    /// <summary>
    /// How often the server hands the C library heap's free pages back to the kernel
    /// (<see cref="NativeHeap.Trim"/>); <see cref="TimeSpan.Zero"/> turns it off. Without it a
    /// long-running server's resident memory creeps up as glibc arenas fragment.
    /// </summary>
    public TimeSpan NativeHeapTrimInterval { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>An ∞-gram store to serve beside the model (<see cref="NGramEndpoint"/>); null = none.</summary>
    public Data.NGram.NGramStore? NGram { get; init; }

    /// <summary>Rejects contradictory or unsafe settings with one message naming the option.</summary>
    public ServerOptions Validate(bool loopback)
    {
        if (Port is < 0 or > 65535) throw new ArgumentException($"port must be in [0, 65535], got {Port}");
        if (MaxQueue < 1) throw new ArgumentException($"max queue must be at least 1, got {MaxQueue}");
        if (MaxBodyBytes < 1024) throw new ArgumentException($"max body must be at least 1024 bytes, got {MaxBodyBytes}");
        if (MaxTokensPerRequest is < 1) throw new ArgumentException($"max tokens per request must be at least 1, got {MaxTokensPerRequest}");
        if (NativeHeapTrimInterval < TimeSpan.Zero) throw new ArgumentException($"native heap trim interval must be ≥ 0, got {NativeHeapTrimInterval}");
        if (MaxConnections < 1) throw new ArgumentException($"max connections must be at least 1, got {MaxConnections}");
        if (ApiKey is { } key && (key.Length < 8 || key.Any(char.IsWhiteSpace)))
            throw new ArgumentException("the API key must be at least 8 characters without spaces");
        if (!loopback && ApiKey is null && !Insecure)
            throw new ArgumentException($"host {Host} is reachable from other machines: pass --api-key KEY (clients send 'Authorization: Bearer KEY'), or --insecure to serve without one");
        return this;
    }
}
