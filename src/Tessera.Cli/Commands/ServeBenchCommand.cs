using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tessera.Server;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera bench serve</c>: a soak and abuse run against a live <c>tessera serve</c> on loopback.
/// N clients stream chat completions back to back for a fixed time while malformed requests are
/// interleaved at an even rate; the server's own memory comes from its /metrics. Bounded in time
/// (--seconds) and in count (--clients, --malformed). Exit code 1 when any stream failed, any
/// malformed request got other than a 4xx, or the server stopped answering.
/// </summary>
public static partial class ServeBenchCommand
{
    /// <summary>Builds the <c>tessera bench serve</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var url = new Option<string>("--url") { Description = "Base address of a running server (loopback), e.g. http://127.0.0.1:8000/.", Required = true };
        var apiKey = new Option<string?>("--api-key") { Description = "Bearer key, when the server has one." };
        var clients = new Option<int>("--clients") { Description = "Concurrent streaming clients.", DefaultValueFactory = _ => 64 };
        var seconds = new Option<int>("--seconds") { Description = "How long to keep starting streams.", DefaultValueFactory = _ => 60 };
        var malformed = new Option<int>("--malformed") { Description = "Malformed requests spread evenly over the run.", DefaultValueFactory = _ => 1000 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Completion tokens per stream.", DefaultValueFactory = _ => 32 };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("serve", "Soak a running server: N streaming clients for M seconds with malformed requests interleaved; latency, errors and server memory.")
            { url, apiKey, clients, seconds, malformed, maxTokens, json };
        cmd.SetAction(async (p, cancel) =>
        {
            var baseUri = new Uri(p.GetValue(url)!.TrimEnd('/') + "/");
            if (!IPAddress.TryParse(baseUri.Host, out var ip) ? baseUri.Host != "localhost" : !IPAddress.IsLoopback(ip))
                throw new ArgumentException($"bench serve only targets loopback servers, got {baseUri.Host}");
            var r = await RunAsync(baseUri, p.GetValue(apiKey), p.GetValue(clients), TimeSpan.FromSeconds(p.GetValue(seconds)), p.GetValue(malformed), p.GetValue(maxTokens),
                p.GetValue(json) ? null : Console.Error.WriteLine, cancel);
            if (p.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(r, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true }));
            else Print(r);
            return r.Ok ? 0 : 1;
        });
        return cmd;
    }

    /// <summary>What one soak measured (memory figures are the server's, from /metrics, in MB).</summary>
    public sealed record SoakResult(int Clients, double Seconds, long Streams, long StreamErrors, long Refused429, double P50Seconds, double P99Seconds, double MaxSeconds,
        long Tokens, long Malformed, long Malformed4xx, long Malformed5xx, long MalformedOther, long MalformedValid200,
        double RssStartMb, double RssFirstMinuteMb, double RssMaxMb, double RssEndMb, double NativeStartMb, double NativeFirstMinuteMb, double NativeMaxMb, double NativeEndMb,
        bool EndWithin10PercentOfFirstMinute, bool AliveAtEnd, IReadOnlyList<string> FirstErrors,
        double PrefixCacheFirstMinuteMb = 0, double PrefixCacheEndMb = 0, double RssLessCacheFirstMinuteMb = 0, double RssLessCacheMaxMb = 0, double RssLessCacheEndMb = 0,
        double RssEndLevelMb = 0, double NativeEndLevelMb = 0)
    {
        /// <summary>
        /// The end level (mean of the samples in the run's last 30 s, the same width as the first
        /// minute's window) within 10% of the first minute's level, for RSS and for native memory.
        /// A single sample swings with the managed heap between collections; the levels do not.
        /// </summary>
        public bool EndLevelsWithin10Percent => Math.Abs(RssEndLevelMb - RssFirstMinuteMb) <= 0.10 * RssFirstMinuteMb
            && Math.Abs(NativeEndLevelMb - NativeFirstMinuteMb) <= 0.10 * NativeFirstMinuteMb;

        /// <summary>True when the soak passed: no stream errors, no 5xx or unexpected answer to malformed requests, and the server still alive at the end.</summary>
        public bool Ok => StreamErrors == 0 && Malformed5xx == 0 && MalformedOther == 0 && AliveAtEnd;
    }

    /// <summary>Runs a soak against <paramref name="server"/>: <paramref name="clients"/> streaming chat clients for <paramref name="duration"/>, interleaved with <paramref name="malformedCount"/> malformed requests, sampling the server's memory from /metrics.</summary>
    public static async Task<SoakResult> RunAsync(Uri server, string? key, int clients, TimeSpan duration, int malformedCount, int maxTokens,
        Action<string>? log, CancellationToken cancel)
    {
        if (clients < 1 || clients > 4096) throw new ArgumentException($"--clients must be in [1, 4096], got {clients}");
        if (duration <= TimeSpan.Zero || duration > TimeSpan.FromHours(2)) throw new ArgumentException($"--seconds must be in (0, 7200], got {duration.TotalSeconds}");
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients + 8, PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { BaseAddress = server, Timeout = TimeSpan.FromMinutes(5) };
        if (key is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        string model = JsonDocument.Parse(await http.GetStringAsync("v1/models", cancel)).RootElement.GetProperty("data")[0].GetProperty("id").GetString()!;

        var memory = new List<(double T, double Rss, double Native, double Prefix)>();
        var clock = Stopwatch.StartNew();
        async Task Sample()
        {
            var (rss, native, prefix) = await Memory(http, cancel);
            lock (memory) memory.Add((clock.Elapsed.TotalSeconds, rss, native, prefix));
        }
        await Sample();

        var latencies = new List<double>();
        long streams = 0, errors = 0, refused = 0, tokens = 0;
        var firstErrors = new List<string>();
        void Error(string e) { Interlocked.Increment(ref errors); lock (firstErrors) if (firstErrors.Count < 10) firstErrors.Add(e); }
        var deadline = duration;

        async Task Client(int c)
        {
            for (int i = 0; clock.Elapsed < deadline && !cancel.IsCancellationRequested; i++)
            {
                var started = Stopwatch.StartNew();
                string body = JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["model"] = model, ["max_tokens"] = maxTokens, ["stream"] = true, ["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true },
                    ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = $"Client {c} request {i}: tell me about the sea." } },
                });
                try
                {
                    using var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                    using var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cancel);
                    if (resp.StatusCode == HttpStatusCode.TooManyRequests)
                    {
                        Interlocked.Increment(ref refused);
                        await Task.Delay(TimeSpan.FromSeconds(resp.Headers.RetryAfter?.Delta?.TotalSeconds ?? 1), cancel);
                        continue;
                    }
                    if (!resp.IsSuccessStatusCode) { Error($"HTTP {(int)resp.StatusCode}: {await resp.Content.ReadAsStringAsync(cancel)}"); continue; }
                    string text = await resp.Content.ReadAsStringAsync(cancel);
                    if (!text.EndsWith("data: [DONE]\n\n", StringComparison.Ordinal)) { Error("stream ended without [DONE]: " + text[^Math.Min(200, text.Length)..]); continue; }
                    var usage = UsageRegex().Match(text);
                    if (usage.Success) Interlocked.Add(ref tokens, long.Parse(usage.Groups[1].Value, CultureInfo.InvariantCulture));
                    Interlocked.Increment(ref streams);
                    lock (latencies) latencies.Add(started.Elapsed.TotalSeconds);
                }
                catch (OperationCanceledException) when (cancel.IsCancellationRequested) { return; }
                catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException) { Error($"{e.GetType().Name}: {e.Message}"); }
            }
        }

        long bad4xx = 0, bad5xx = 0, badOther = 0, badValid = 0, badSent = 0, nextBad = -1;
        var gen = new MalformedRequests(model, seed: 2026);
        // Four senders, each taking the next request in order: one sender waiting on each answer
        // falls behind the schedule on a busy server (a valid mutation queues behind the streams).
        async Task Abuse()
        {
            while (!cancel.IsCancellationRequested)
            {
                long i = Interlocked.Increment(ref nextBad);
                if (i >= malformedCount) return;
                // Even spacing over the run; if the server is slow, catch up rather than stretch the run.
                var due = duration * ((double)i / Math.Max(1, malformedCount));
                if (due > clock.Elapsed) await Task.Delay(due - clock.Elapsed, cancel);
                MalformedRequest m;
                lock (gen) m = gen.Next();
                var content = new ByteArrayContent(m.Body);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                Interlocked.Increment(ref badSent);
                try
                {
                    using var resp = await http.PostAsync(m.Path, content, cancel);
                    int s = (int)resp.StatusCode;
                    if (s is >= 400 and < 500) Interlocked.Increment(ref bad4xx);
                    else if (s >= 500) { Interlocked.Increment(ref bad5xx); Error($"malformed {m.Kind} got {s}: {Encoding.UTF8.GetString(m.Body)[..Math.Min(120, m.Body.Length)]}"); }
                    else if (s == 200 && MalformedRequests.MayBeValid(m))
                    {
                        // The mutation stayed a valid request (temperature 0, a flipped byte inside the text):
                        // not malformed, so it does not count toward the malformed quota; another is sent in its place.
                        Interlocked.Increment(ref badValid);
                        Interlocked.Decrement(ref nextBad);
                    }
                    else { Interlocked.Increment(ref badOther); Error($"malformed {m.Kind} got {s}"); }
                    await resp.Content.ReadAsByteArrayAsync(cancel);
                }
                catch (Exception e) when (e is HttpRequestException or IOException) { Interlocked.Increment(ref badOther); Error($"malformed {m.Kind}: {e.Message}"); }
            }
        }

        async Task Monitor()
        {
            while (clock.Elapsed < deadline && !cancel.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(5), cancel);
                await Sample();
                log?.Invoke($"{clock.Elapsed.TotalSeconds,6:F0} s | {Interlocked.Read(ref streams):N0} streams | {Interlocked.Read(ref errors)} errors | {Interlocked.Read(ref refused)} 429 | malformed {badSent:N0} | RSS {memory[^1].Rss:F0} MB | native {memory[^1].Native:F0} MB | prefix cache {memory[^1].Prefix:F0} MB");
            }
        }

        var tasks = Enumerable.Range(0, clients).Select(Client).Concat(Enumerable.Range(0, 4).Select(_ => Abuse())).Append(Monitor()).ToArray();
        await Task.WhenAll(tasks);
        double elapsed = clock.Elapsed.TotalSeconds;
        await Sample();
        bool alive;
        try { alive = (await http.GetAsync("health", cancel)).IsSuccessStatusCode; } catch (HttpRequestException) { alive = false; }

        latencies.Sort();
        double Q(double q) => latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(q * latencies.Count) - 1)];
        // The first minute's level: the mean of the samples taken between 30 s and 60 s (warm-up done), else the first sample.
        var firstMinute = memory.Where(m => m.T is >= 30 and <= 60).ToList();
        if (firstMinute.Count == 0) firstMinute = [memory[0]];
        double rss1 = firstMinute.Average(m => m.Rss), nat1 = firstMinute.Average(m => m.Native);
        // The end level: the samples of the last 30 s of the run (the same window width as the first minute's).
        var lastWindow = memory.Where(m => m.T >= elapsed - 30).ToList();
        if (lastWindow.Count == 0) lastWindow = [memory[^1]];
        return new SoakResult(clients, elapsed, streams, errors, refused, Q(0.5), Q(0.99), latencies.Count == 0 ? double.NaN : latencies[^1], tokens,
            badSent, bad4xx, bad5xx, badOther, badValid,
            memory[0].Rss, rss1, memory.Max(m => m.Rss), memory[^1].Rss, memory[0].Native, nat1, memory.Max(m => m.Native), memory[^1].Native,
            Math.Abs(memory[^1].Rss - rss1) <= 0.10 * rss1, alive, firstErrors,
            firstMinute.Average(m => m.Prefix), memory[^1].Prefix, firstMinute.Average(m => m.Rss - m.Prefix), memory.Max(m => m.Rss - m.Prefix), memory[^1].Rss - memory[^1].Prefix,
            lastWindow.Average(m => m.Rss), lastWindow.Average(m => m.Native));
    }

    /// <summary>The server's resident and native memory and its prefix cache's blocks (MB; 0 without one) from its Prometheus /metrics.</summary>
    static async Task<(double Rss, double Native, double Prefix)> Memory(HttpClient http, CancellationToken cancel)
    {
        string text = await http.GetStringAsync("metrics", cancel);
        double Read(string name)
        {
            var m = Regex.Match(text, "^" + name + @"(?:\{[^}]*\})? ([0-9.eE+]+)", RegexOptions.Multiline);
            return m.Success ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) / (1 << 20) : double.NaN;
        }
        double prefix = Read("tessera_engine_prefix_cache_bytes");
        return (Read("tessera_process_resident_memory_bytes"), Read("tessera_process_native_memory_bytes"), double.IsNaN(prefix) ? 0 : prefix);
    }

    static void Print(SoakResult r)
    {
        Console.WriteLine($"soak: {r.Clients} streaming clients for {r.Seconds:F0} s");
        Console.WriteLine($"  streams completed      {r.Streams:N0} ({r.Tokens:N0} tokens, {r.Tokens / r.Seconds:N0} tokens/s)");
        Console.WriteLine($"  stream errors          {r.StreamErrors}");
        Console.WriteLine($"  refused with 429       {r.Refused429:N0}");
        Console.WriteLine($"  latency p50 / p99 / max {r.P50Seconds:F2} / {r.P99Seconds:F2} / {r.MaxSeconds:F2} s");
        Console.WriteLine($"  malformed requests     {r.Malformed4xx + r.Malformed5xx + r.MalformedOther:N0}: {r.Malformed4xx:N0} 4xx, {r.Malformed5xx} 5xx, {r.MalformedOther} other (plus {r.MalformedValid200} mutations that stayed valid, answered 200, sent beside them; {r.Malformed:N0} sent in all)");
        Console.WriteLine($"  server RSS MB          start {r.RssStartMb:F0} | first minute {r.RssFirstMinuteMb:F0} | max {r.RssMaxMb:F0} | end {r.RssEndMb:F0} (end within 10% of the first minute: {(r.EndWithin10PercentOfFirstMinute ? "yes" : "no")})");
        Console.WriteLine($"  server native MB       start {r.NativeStartMb:F0} | first minute {r.NativeFirstMinuteMb:F0} | max {r.NativeMaxMb:F0} | end {r.NativeEndMb:F0} (end within 10% of the first minute: {(Math.Abs(r.NativeEndMb - r.NativeFirstMinuteMb) <= 0.10 * r.NativeFirstMinuteMb ? "yes" : "no")})");
        // The prefix cache is a bounded cache (--prefix-cache-mb) that fills as prompts arrive; RSS without its blocks shows what else grows.
        static string Pct(double end, double first)
        {
            // Rounded first: a custom "+0.0;-0.0" format printed "-+0.0%" for a small negative change.
            double p = Math.Round((end - first) / first * 100, 1);
            return $"{(p >= 0 ? "+" : "-")}{Math.Abs(p):0.0}%";
        }
        Console.WriteLine($"  end levels (last 30 s) RSS {r.RssEndLevelMb:F0} MB ({Pct(r.RssEndLevelMb, r.RssFirstMinuteMb)}) | native {r.NativeEndLevelMb:F0} MB ({Pct(r.NativeEndLevelMb, r.NativeFirstMinuteMb)}) against the first minute's (within 10%: {(r.EndLevelsWithin10Percent ? "yes" : "no")})");
        Console.WriteLine($"  prefix-cache blocks MB first minute {r.PrefixCacheFirstMinuteMb:F0} | end {r.PrefixCacheEndMb:F0}");
        Console.WriteLine($"  RSS less the cache MB  first minute {r.RssLessCacheFirstMinuteMb:F0} | max {r.RssLessCacheMaxMb:F0} | end {r.RssLessCacheEndMb:F0} (end within 10% of the first minute: {(Math.Abs(r.RssLessCacheEndMb - r.RssLessCacheFirstMinuteMb) <= 0.10 * r.RssLessCacheFirstMinuteMb ? "yes" : "no")})");
        Console.WriteLine($"  alive at the end       {(r.AliveAtEnd ? "yes" : "NO")}");
        foreach (var e in r.FirstErrors) Console.WriteLine($"  error: {e}");
    }

    [GeneratedRegex("\"completion_tokens\":([0-9]+)")]
    private static partial Regex UsageRegex();
}
