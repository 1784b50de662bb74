using System.Diagnostics;
using System.Diagnostics.Metrics;
using Tessera.Inference;

namespace Tessera.Server;

/// <summary>
/// The server's own instruments, on the meter <see cref="MeterName"/>; OpenTelemetry exports them
/// (with ASP.NET Core's request-duration histogram, which carries route and status code) at
/// <c>GET /metrics</c> in Prometheus text format. Counters are monotonic, so rates such as
/// tokens per second come from the scraper (<c>rate(tessera_server_tokens_total[1m])</c>).
/// </summary>
public sealed class ServerMetrics : IDisposable
{
    /// <summary>The meter name to subscribe to.</summary>
    public const string MeterName = "Tessera.Server";

    // Generation is counted where it happens (TextGeneration), which knows no server instance: a
    // process-wide meter holds those instruments; each server adds its own gauges and counters.
    static readonly Meter Shared = new(MeterName);
    static readonly Counter<long> tokens = Shared.CreateCounter<long>("tessera.server.tokens", "{token}", "Completion tokens generated.");
    static readonly Histogram<double> firstToken = Shared.CreateHistogram<double>("tessera.server.time_to_first_token", "s", "Seconds from the start of a generation to its first token.");

    readonly Meter meter;
    readonly Counter<long> errors, rejected;

    static int instances;

    /// <summary>
    /// A meter name of its own for one server's gauges and counters. A metrics pipeline subscribes by
    /// meter name, so with one shared name two servers in one process (tests, a cascade) would
    /// export each other's queue gauges.
    /// </summary>
    public static string NewInstanceMeterName() => $"{MeterName}.Instance{Interlocked.Increment(ref instances)}";

    /// <summary>
    /// Creates the instruments on a meter named <paramref name="meterName"/> (from
    /// <see cref="NewInstanceMeterName"/>); the gauges read <paramref name="gate"/> and the engine when scraped.
    /// </summary>
    public ServerMetrics(AdmissionGate gate, IGenerationEngine engine, string meterName)
    {
        meter = new Meter(meterName);
        errors = meter.CreateCounter<long>("tessera.server.errors", "{request}", "Requests answered with an error, by status code.");
        rejected = meter.CreateCounter<long>("tessera.server.rejected", "{request}", "Model requests refused with 429 because the queue was full.");
        meter.CreateObservableGauge("tessera.server.queue.depth", () => gate.Inside, "{request}", "Model requests admitted and not finished (running or waiting).");
        meter.CreateObservableGauge("tessera.server.queue.capacity", () => gate.Capacity, "{request}", "The admission cap (--max-queue).");
        if (engine is BatchingEngine b)
        {
            meter.CreateObservableGauge("tessera.engine.active_sequences", () => b.ActiveSequences, "{sequence}", "Sequences holding a KV-cache slot.");
            meter.CreateObservableGauge("tessera.engine.waiting_sequences", () => b.Waiting, "{sequence}", "Sequences waiting for a KV-cache slot.");
            meter.CreateObservableGauge("tessera.engine.prefix_cache", () => b.Prefixes?.Stats.BytesUsed ?? 0, "By", "Bytes of KV blocks the prefix cache holds (bounded by --prefix-cache-mb).");
        }
        meter.CreateObservableGauge("tessera.process.resident_memory", () => Process.GetCurrentProcess().WorkingSet64, "By", "Resident set size of the server process.");
        meter.CreateObservableGauge("tessera.process.managed_memory", () => GC.GetGCMemoryInfo().TotalCommittedBytes, "By", "Memory committed by the managed heap.");
        // What the managed heap's swings come from: bytes allocated since start and collections by generation.
        meter.CreateObservableCounter("tessera.process.managed_allocated", () => GC.GetTotalAllocatedBytes(), "By", "Bytes allocated on the managed heap since the process started.");
        meter.CreateObservableCounter("tessera.process.gc_collections", () => new[]
        {
            new Measurement<long>(GC.CollectionCount(0), new KeyValuePair<string, object?>("generation", "0")),
            new Measurement<long>(GC.CollectionCount(1), new KeyValuePair<string, object?>("generation", "1")),
            new Measurement<long>(GC.CollectionCount(2), new KeyValuePair<string, object?>("generation", "2")),
        }, "{collection}", "Garbage collections since the process started, by generation (a collection of generation n also counts for every lower one).");
        // Weights, KV cache and scratch live in NativeMemory, invisible to the GC: what is resident
        // beyond the managed heap is their upper bound (it also counts the runtime's own code and stacks).
        meter.CreateObservableGauge("tessera.process.native_memory", () => Math.Max(0, Process.GetCurrentProcess().WorkingSet64 - GC.GetGCMemoryInfo().TotalCommittedBytes),
            "By", "Resident memory outside the managed heap (native weights, KV cache, runtime).");
        // The C library's heap, where the runtime, the JIT and native buffers allocate (glibc only).
        if (NativeHeap.IsAvailable)
        {
            meter.CreateObservableGauge("tessera.process.malloc_in_use", () => NativeHeap.Read()?.InUseBytes ?? 0, "By", "Bytes allocated from the C library's heap and not freed (glibc mallinfo2).");
            meter.CreateObservableGauge("tessera.process.malloc_free", () => NativeHeap.Read()?.FreeBytes ?? 0, "By", "Bytes free inside the C library's arenas, resident until trimmed or reused.");
        }
    }

    /// <summary>Counts generated tokens.</summary>
    public static void Tokens(int n) { if (n > 0) tokens.Add(n); }
    /// <summary>Counts one error response.</summary>
    public void Error(int status) => errors.Add(1, new KeyValuePair<string, object?>("http.response.status_code", status));
    /// <summary>Counts one 429.</summary>
    public void Rejected() => rejected.Add(1);
    /// <summary>Records the wait before the first token.</summary>
    public static void FirstToken(TimeSpan wait) => firstToken.Record(wait.TotalSeconds);

    /// <summary>Disposes the meter, which stops the instruments reporting.</summary>
    public void Dispose() => meter.Dispose();
}
