using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Spectre.Console;
using Tessera.Data;
using Tessera.Data.NGram;
using Tessera.Server;
using Tessera.Text;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera bench ngram</c>: builds an ∞-gram index over the embedded corpus repeated to a token
/// target, then measures build time, bytes per token, per-query latency, and batched vs
/// one-query-per-round-trip throughput in process and over HTTP, with Stupid Backoff alongside.
/// </summary>
public static class NGramBenchCommand
{
    /// <summary>Builds the <c>tessera bench ngram</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var tokens = new Option<long>("--tokens") { Description = "Tokens to index (the embedded corpus is repeated to reach it).", DefaultValueFactory = _ => 100_000_000 };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer (folder, file or `bytes`).", Required = true };
        var output = new Option<string>("--out") { Description = "Scratch folder for the corpus and the index (deleted at the end unless --keep).", DefaultValueFactory = _ => "runs/bench-ngram" };
        var keep = new Option<bool>("--keep") { Description = "Keep the index after the run." };
        var queries = new Option<int>("--queries") { Description = "Queries timed per query type.", DefaultValueFactory = _ => 300 };
        var sequences = new Option<int>("--sequences") { Description = "1,024-token sequences for the batched comparison.", DefaultValueFactory = _ => 8 };
        var shardTokens = new Option<int>("--shard-tokens") { Description = "Tokens per index shard.", DefaultValueFactory = _ => 1 << 24 };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("ngram", "∞-gram store: build time, bytes/token, p50/p99 per query type, batched vs per-query throughput (in process and HTTP), Stupid Backoff.")
            { tokens, tokenizer, output, keep, queries, sequences, shardTokens, json };
        cmd.SetAction(async (p, cancel) =>
        {
            bool quiet = p.GetValue(json);
            void Say(string s) { if (!quiet) Console.Error.WriteLine(s); }
            string dir = p.GetValue(output)!;
            var tok = p.GetValue(tokenizer) == "bytes" ? TokenizerFiles.Load("bytes")
                : Directory.Exists(p.GetValue(tokenizer)) ? RunSetup.LoadRunTokenizer(p.GetValue(tokenizer)!) : TokenizerFiles.Load(p.GetValue(tokenizer)!);
            var docs = EmbeddedCorpus.Read(Path.Combine(dir, "corpus"));
            int bos = tok.SpecialTokens.TryGetId(ChatTemplate.Bos, out int b) ? b : -1;
            var encoded = new int[docs.Count][];
            Tessera.Kernels.WorkerPool.Shared.For(docs.Count, docs.Count, (first, end) =>
            {
                for (int i = first; i < end; i++) encoded[i] = [.. (bos >= 0 ? [bos] : Array.Empty<int>()), .. tok.Encode(docs[i].Text)];
            });
            long once = encoded.Sum(d => (long)d.Length);
            long target = p.GetValue(tokens);
            int repeats = (int)Math.Max(1, (target + once - 1) / once);
            Say($"corpus: {docs.Count} documents, {once:N0} tokens with {tok.Name}; repeated ×{repeats} → {once * repeats:N0} tokens");
            IEnumerable<int[]> Repeated() { for (int r = 0; r < repeats; r++) foreach (var d in encoded) yield return d; }

            string indexDir = Path.Combine(dir, "index");
            var sw = Stopwatch.StartNew();
            var manifest = NGramBuilder.Build(Repeated(), TokenizerIdentity.Of(tok), indexDir, new NGramBuildOptions { ShardTokens = p.GetValue(shardTokens), Overwrite = true }, Say);
            double buildSeconds = sw.Elapsed.TotalSeconds;
            sw.Restart();
            using var store = NGramStore.Open(indexDir);
            double openSeconds = sw.Elapsed.TotalSeconds;
            double bytesPerToken = (double)manifest.Bytes / manifest.Tokens;
            Say($"built in {buildSeconds:F1} s, {bytesPerToken:F3} bytes/token; opened (SHA-256 verified) in {openSeconds:F1} s");

            // Query workload: n-grams and contexts cut from the corpus at random places.
            var rng = new Random(1234);
            var flat = encoded.SelectMany(d => d).ToArray();
            int[] Cut(int len) { int s = rng.Next(0, flat.Length - len - 1); return flat[s..(s + len)]; }
            int Q = p.GetValue(queries);
            var rows = new List<LatencyRow>();
            LatencyRow Time(string name, Func<int, Action> make)
            {
                var ms = new double[Q];
                make(0)();   // warm-up
                for (int i = 0; i < Q; i++)
                {
                    var run = make(i);
                    long t0 = Stopwatch.GetTimestamp();
                    run();
                    ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
                Array.Sort(ms);
                var row = new LatencyRow(name, ms[Q / 2], ms[Math.Min(Q - 1, (int)(Q * 0.99))], ms.Average());
                Say($"{name,-34} p50 {row.P50Ms,9:F3} ms   p99 {row.P99Ms,9:F3} ms");
                rows.Add(row);
                return row;
            }
            Time("count (1–8 tokens)", i => { var g = Cut(1 + i % 8); return () => store.Count(g); });
            Time("next tokens, 3-token context", _ => { var g = Cut(3); return () => store.NextTokens(g); });
            Time("∞-gram next tokens, 32-token ctx", _ => { var g = Cut(32); return () => store.InfinityNextTokens(g); });
            Time("∞-gram probability, 32-token ctx", _ => { var g = Cut(33); return () => store.Probability(g[..32], g[32]); });
            Time("documents (5-gram, 10 hits)", _ => { var g = Cut(5); return () => store.Documents(g, 10); });
            Time("AND of two 4-grams", i => { var a = Cut(4); var b = Cut(4); return () => store.DocumentsMatching([a, b], all: true, 10_000, out _); });
            Time("OR of two 4-grams", i => { var a = Cut(4); var b = Cut(4); return () => store.DocumentsMatching([a, b], all: false, 10_000, out _); });
            Time("Stupid Backoff 5-gram score", _ => { var g = Cut(5); return () => StupidBackoff.Score(store, g[..4], g[4]); });

            // Batched vs one query per position: whole 1,024-token sequences. The per-query side sends
            // each position's full prefix as its context (what a client without the batch API must do).
            int S = p.GetValue(sequences);
            var seqs = Enumerable.Range(0, S).Select(_ => Cut(1024)).ToArray();
            const int PerQueryPositions = 64;   // positions per sequence timed one by one (spread over the sequence)
            double Rate(Action run, long positions) { run(); var t = Stopwatch.StartNew(); run(); return positions / t.Elapsed.TotalSeconds; }   // first run warms up
            var thr = new List<ThroughputRow>();
            double batchedInf = Rate(() => { foreach (var s in seqs) NGramBatch.Infinity(store, s); }, S * 1024L);
            double singleInf = Rate(() => { foreach (var s in seqs) for (int k = 0; k < PerQueryPositions; k++) { int t = k * 1024 / PerQueryPositions; store.Probability(s[..t], s[t]); } }, S * (long)PerQueryPositions);
            double batchedSb = Rate(() => { foreach (var s in seqs) NGramBatch.StupidBackoff(store, s); }, S * 1024L);
            double singleSb = Rate(() => { foreach (var s in seqs) for (int k = 0; k < PerQueryPositions; k++) { int t = k * 1024 / PerQueryPositions; StupidBackoff.Score(store, s[..t], s[t]); } }, S * (long)PerQueryPositions);
            thr.Add(new ThroughputRow("∞-gram probability", "in process", batchedInf, singleInf));
            // Held-out-like text: every 8th token replaced by a random corpus token, so matches stay
            // short (suffix lengths of a few tokens, like the held-out split) instead of running on.
            var noisy = seqs.Select(s => s.Select((x, i) => i % 8 == 7 ? flat[rng.Next(flat.Length)] : x).ToArray()).ToArray();
            double batchedNoisy = Rate(() => { foreach (var s in noisy) NGramBatch.Infinity(store, s); }, S * 1024L);
            double singleNoisy = Rate(() => { foreach (var s in noisy) for (int k = 0; k < PerQueryPositions; k++) { int t = k * 1024 / PerQueryPositions; store.Probability(s[..t], s[t]); } }, S * (long)PerQueryPositions);
            thr.Add(new ThroughputRow("∞-gram probability, 1 token in 8 replaced", "in process", batchedNoisy, singleNoisy));
            thr.Add(new ThroughputRow("Stupid Backoff 5-gram", "in process", batchedSb, singleSb));

            var (app, address) = await NGramEndpoint.StartAsync(store, new ServerOptions { Port = 0 }, cancel);
            await using (app)
            {
                using var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(5) };
                async Task<double> HttpRate(Func<Task> run, long positions) { await run(); var t = Stopwatch.StartNew(); await run(); return positions / t.Elapsed.TotalSeconds; }
                async Task Post(string path, object body)
                {
                    using var r = await http.PostAsJsonAsync(path, body, cancel);
                    if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"{path}: HTTP {(int)r.StatusCode} {await r.Content.ReadAsStringAsync(cancel)}");
                    await r.Content.ReadAsByteArrayAsync(cancel);
                }
                foreach (var (name, kind, single, set) in new[] { ("∞-gram probability", "infinity", "probability", seqs),
                             ("∞-gram probability, 1 token in 8 replaced", "infinity", "probability", noisy), ("Stupid Backoff 5-gram", "stupid_backoff", "stupid_backoff", seqs) })
                {
                    double batched = await HttpRate(async () => { foreach (var s in set) await Post("v1/ngram/batch", new Dictionary<string, object> { ["query"] = kind, ["sequences"] = new[] { s } }); }, S * 1024L);
                    double perQuery = await HttpRate(async () =>
                    {
                        foreach (var s in set)
                            for (int k = 0; k < PerQueryPositions; k++)
                            {
                                int t = k * 1024 / PerQueryPositions;
                                await Post("v1/ngram/query", new Dictionary<string, object> { ["query"] = single, ["ids"] = s[..t], ["token"] = s[t] });
                            }
                    }, S * (long)PerQueryPositions);
                    thr.Add(new ThroughputRow(name, "HTTP (loopback)", batched, perQuery));
                }
            }
            foreach (var r in thr) Say($"{r.Query,-42} {r.Transport,-16} batched {r.BatchedPositionsPerSecond,12:N0} pos/s   per query {r.PerQueryPositionsPerSecond,10:N0} pos/s   ×{r.Speedup:F1}");

            var result = new
            {
                tokens = manifest.Tokens, corpus_tokens = once, repeats, documents = manifest.Documents, shards = manifest.Shards.Count, index_bytes = manifest.Bytes,
                bytes_per_token = bytesPerToken, build_seconds = buildSeconds, open_verify_seconds = openSeconds, threads = Kernels.WorkerPool.Shared.ThreadCount,
                tokenizer = tok.Name, latency = rows, throughput = thr, sequence_tokens = 1024, sequences = S, per_query_positions_per_sequence = PerQueryPositions,
            };
            if (!p.GetValue(keep)) Directory.Delete(indexDir, recursive: true);
            if (quiet) { Console.WriteLine(JsonSerializer.Serialize(result, NGramCommand.Json)); return 0; }
            var t1 = new Table().Title($"∞-gram store: {manifest.Tokens:N0} tokens (embedded corpus ×{repeats}), {manifest.Shards.Count} shards")
                .AddColumns("figure", "value");
            t1.AddRow("build time", $"{buildSeconds:F1} s ({Kernels.WorkerPool.Shared.ThreadCount} threads)");
            t1.AddRow("bytes per token (tokens + suffix array + document starts)", bytesPerToken.ToString("F3", CultureInfo.InvariantCulture));
            t1.AddRow("open + SHA-256 verify", $"{openSeconds:F1} s");
            AnsiConsole.Write(t1);
            var t2 = new Table().Title("latency per query").AddColumns("query", "p50 ms", "p99 ms", "mean ms");
            foreach (var r in rows) t2.AddRow(r.Query, r.P50Ms.ToString("F3", CultureInfo.InvariantCulture), r.P99Ms.ToString("F3", CultureInfo.InvariantCulture), r.MeanMs.ToString("F3", CultureInfo.InvariantCulture));
            AnsiConsole.Write(t2);
            var t3 = new Table().Title("every position of 1,024-token sequences: batched vs one query per position").AddColumns("query", "transport", "batched pos/s", "per-query pos/s", "speed-up");
            foreach (var r in thr) t3.AddRow(r.Query, r.Transport, r.BatchedPositionsPerSecond.ToString("N0", CultureInfo.InvariantCulture), r.PerQueryPositionsPerSecond.ToString("N0", CultureInfo.InvariantCulture), $"×{r.Speedup:F1}");
            AnsiConsole.Write(t3);
            return 0;
        });
        return cmd;
    }

    sealed record LatencyRow(string Query, double P50Ms, double P99Ms, double MeanMs);

    sealed record ThroughputRow(string Query, string Transport, double BatchedPositionsPerSecond, double PerQueryPositionsPerSecond)
    {
        public double Speedup => BatchedPositionsPerSecond / PerQueryPositionsPerSecond;
    }
}
