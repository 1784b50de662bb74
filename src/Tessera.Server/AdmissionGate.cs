namespace Tessera.Server;

/// <summary>
/// Bounds the model requests in the server at once (running or waiting for an engine slot). A
/// request past the cap is refused at the door with 429 and <c>Retry-After</c>, before its body is
/// read, so a flood costs a counter increment rather than memory.
/// </summary>
public sealed class AdmissionGate(int capacity)
{
    int inside;

    /// <summary>The cap.</summary>
    public int Capacity { get; } = capacity;
    /// <summary>Requests admitted and not yet finished (the queue depth /metrics reports).</summary>
    public int Inside => Volatile.Read(ref inside);
    /// <summary>Seconds a refused client is told to wait.</summary>
    public const int RetryAfterSeconds = 1;

    /// <summary>Admits one request, or returns false when the server is full.</summary>
    public bool TryEnter()
    {
        if (Interlocked.Increment(ref inside) <= Capacity) return true;
        Interlocked.Decrement(ref inside);
        return false;
    }

    /// <summary>Marks an admitted request as finished.</summary>
    public void Leave() => Interlocked.Decrement(ref inside);

    /// <summary>The 429 for a full server.</summary>
    public ApiException Full() => new(429,
        $"The server is busy: {Capacity} requests are already running or queued. Retry after {RetryAfterSeconds} s.",
        type: "rate_limit_error", code: "server_busy");
}
